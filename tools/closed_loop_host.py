#!/usr/bin/env python3
"""An example host simulator around pimdram.MemorySystem: cores that chase pointers.

Each core runs `chains` independent pointer-chasing chains (a linked-list walk, a hash-table probe
sequence): a chain's next load address is known only when its previous load has returned, so at
most `chains` loads per core are in flight and the request stream depends on the memory's
latencies. No trace can express this: the arrival cycles are the simulation's own output.

    python tools/closed_loop_host.py --memory ddr4_3200 --cores 4 --chains 8 --loads 2000
    python tools/closed_loop_host.py --memory hbm3_6.4gbps --cores 16 --chains 4 --host-ghz 2.0

The loop is the one a gem5- or SST-style host runs: send what is ready (a refused request is
offered again next cycle), tick, take the completed requests in one batch and react to them.
"""
import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    from pimdram import MemorySystem
except ImportError:         # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pimdram import MemorySystem

LINE = 64
MASK64 = (1 << 64) - 1


def next_address(address, footprint):
    """The next node of a chain: a fixed pseudo-random function of the current address (splitmix64),
    a cache line within `footprint` bytes."""
    z = (address + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z % (footprint // LINE)) * LINE


@dataclass
class Chain:
    core: int
    address: int
    left: int                       # loads still to issue
    sent_at: int = -1               # memory cycle the current load was accepted
    ready_at: int = 0               # memory cycle the next load may be sent (its data is known)
    latencies: list = field(default_factory=list)


@dataclass
class Result:
    cycles: int                     # memory cycles until the last load returned
    host_cycles: int
    loads: int
    latencies: list                 # per load, from acceptance to completion (memory cycles)
    per_core_loads: list
    sends: list                     # (chain, cycle sent, cycle the previous load of the chain completed)
    max_in_flight: list             # per core, the most loads it had in flight at once
    stats: dict


def run(memory="ddr4_3200", *, cores=2, chains=4, loads=100, footprint=1 << 30, seed=1, overrides=None,
        host_ghz=None, addresses=None):
    """Run the cores until each chain has done `loads` loads; returns a Result. `addresses(chain,
    i, previous)` replaces the pointer chase (tests use it to pin the pattern)."""
    ms = MemorySystem(memory, overrides, host_clock_ghz=host_ghz)
    all_chains = []
    for c in range(cores):
        for k in range(chains):
            start = next_address((seed << 20) + c * chains + k, footprint)
            all_chains.append(Chain(c, start if addresses is None else addresses(len(all_chains), 0, None), loads))
    in_flight = [0] * cores
    max_in_flight = [0] * cores
    sends, latencies = [], []
    done = 0
    total = len(all_chains) * loads
    previous_done = [-1] * len(all_chains)
    with ms:
        while done < total:
            # send every load whose address is known; a refused one is offered again next cycle
            for i, ch in enumerate(all_chains):
                if ch.left and ch.sent_at < 0 and ch.ready_at <= ms.cycle:
                    if ms.send(ch.address, tag=i):
                        ch.sent_at = ms.cycle
                        ch.left -= 1
                        in_flight[ch.core] += 1
                        max_in_flight[ch.core] = max(max_in_flight[ch.core], in_flight[ch.core])
                        sends.append((i, ms.cycle, previous_done[i]))
            ms.tick()
            completed = ms.completed()
            for tag, cycle, latency in zip(completed.tag.tolist(), completed.cycle.tolist(),
                                           completed.latency.tolist()):
                ch = all_chains[tag]
                ch.latencies.append(latency)
                latencies.append(latency)
                in_flight[ch.core] -= 1
                done += 1
                previous_done[tag] = cycle
                # the loaded data is the next pointer: the chain can go on from this cycle
                n = loads - ch.left
                ch.address = (next_address(ch.address, footprint) if addresses is None
                              else addresses(tag, n, ch.address))
                ch.sent_at = -1
                ch.ready_at = cycle
        ms.drain()
        stats = ms.stats()
        cycles, host_cycles = ms.cycle, ms.host_cycle
    per_core = [sum(len(ch.latencies) for ch in all_chains if ch.core == c) for c in range(cores)]
    return Result(cycles, host_cycles, total, latencies, per_core, sends, max_in_flight, stats)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory", default="ddr4_3200", help="preset name, YAML, DRAMsim3 .ini or Ramulator 2 YAML")
    ap.add_argument("--cores", type=int, default=4)
    ap.add_argument("--chains", type=int, default=8, help="independent pointer chases per core")
    ap.add_argument("--loads", type=int, default=1000, help="loads per chain")
    ap.add_argument("--footprint", type=int, default=1 << 30, help="bytes the chains walk over")
    ap.add_argument("--host-ghz", type=float, default=None, help="host clock (default: the memory's)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    r = run(args.memory, cores=args.cores, chains=args.chains, loads=args.loads, footprint=args.footprint,
            seed=args.seed, host_ghz=args.host_ghz)
    mean = sum(r.latencies) / len(r.latencies)
    seconds = r.stats["simulated_seconds"]
    print(f"{r.loads} dependent loads ({args.cores} cores x {args.chains} chains) on {args.memory}: "
          f"{r.cycles:,} memory cycles ({seconds * 1e6:.1f} us, {r.host_cycles:,} host cycles)")
    print(f"  mean load latency {mean:.1f} cycles, {r.loads / seconds / 1e6:.1f} M loads/s, "
          f"{r.stats['bandwidth'] / 1e9:.2f} GB/s of {r.stats['peak_bandwidth'] / 1e9:.1f} GB/s, "
          f"row hits {100 * (r.stats['row_hit_rate'] or 0):.1f}% of accesses")


if __name__ == "__main__":
    main()
