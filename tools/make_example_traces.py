#!/usr/bin/env python3
"""Write the small example request traces shipped in traces/ (deterministic: same bytes every run).

    python3 tools/make_example_traces.py [OUTDIR]      (default: the repository's traces/)

example_hbm2.dramsim3  20,000 requests in DRAMsim3 format ("0x... READ|WRITE <cycle>"): segments
                       of streaming reads (a weight matrix), streaming writes (an output buffer),
                       random reads (a KV-cache gather) and random read/write mixes, over 4 MiB,
                       with arrival cycles that model a host offering up to one request per cycle.
example.ramulator      4,096 Ramulator 2 load/store lines ("LD|ST 0x..."): a blocked copy with
                       random lookups in between, over 1 MiB.

The files carry no comments so that DRAMsim3 and Ramulator 2 themselves read them too. Only the
standard library is used, and only integer arithmetic and random.Random, whose sequences Python
keeps stable across versions and machines.
"""
import itertools
import random
import sys
from pathlib import Path

LINE_BYTES = 64

# example_hbm2.dramsim3: address regions (byte offsets) inside a 4 MiB footprint.
WEIGHTS = (0x000000, 0x200000)      # 2 MiB streamed by reads
OUTPUT = (0x200000, 0x280000)       # 512 KiB streamed by writes
KV_CACHE = (0x280000, 0x400000)     # 1.5 MiB gathered at random
DRAMSIM3_REQUESTS = 20_000
SEGMENT_REQUESTS = (200, 800)       # length range of one access-pattern segment

# example.ramulator
RAMULATOR_REQUESTS = 4096
COPY_SOURCE, COPY_DESTINATION, LOOKUP_TABLE = 0x00000, 0x40000, (0x80000, 0x100000)


def random_line(rng, region):
    low, high = region
    return low + rng.randrange((high - low) // LINE_BYTES) * LINE_BYTES


class Stream:
    """A sequential walk over a region, wrapping at its end, that resumes where it stopped."""

    def __init__(self, region):
        self.region = region
        self.next = region[0]

    def take(self):
        address = self.next
        self.next += LINE_BYTES
        if self.next >= self.region[1]:
            self.next = self.region[0]
        return address


def dramsim3_requests(rng):
    """(address, is_write, arrival cycle) of the HBM2 example, in arrival order."""
    weights, output = Stream(WEIGHTS), Stream(OUTPUT)
    cycle = 0
    made = 0
    while made < DRAMSIM3_REQUESTS:
        kind = rng.choice(("stream_read", "stream_read", "stream_write", "random_read", "random_mix"))
        length = min(rng.randint(*SEGMENT_REQUESTS), DRAMSIM3_REQUESTS - made)
        for _ in range(length):
            if kind == "stream_read":
                address, write, gap = weights.take(), False, 1
            elif kind == "stream_write":
                address, write, gap = output.take(), True, 1
            elif kind == "random_read":
                address, write, gap = random_line(rng, KV_CACHE), False, rng.randint(1, 4)
            else:
                address, write, gap = random_line(rng, KV_CACHE), rng.random() < 0.4, rng.randint(1, 8)
            yield address, write, cycle
            cycle += gap
        made += length
        cycle += rng.randint(0, 200)   # a pause between phases (compute on the host)


def ramulator_requests(rng):
    """(address, is_write) of the Ramulator example: copy 8-line blocks, a few lookups between."""
    copied = 0
    while True:
        for _ in range(8):
            offset = (copied * LINE_BYTES) % (COPY_DESTINATION - COPY_SOURCE)
            yield COPY_SOURCE + offset, False
            yield COPY_DESTINATION + offset, True
            copied += 1
        for _ in range(rng.randint(0, 6)):
            yield random_line(rng, LOOKUP_TABLE), False


def write_lines(path, lines):
    with open(path, "w", newline="\n") as f:
        f.writelines(lines)
    print(path)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "traces"
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / "example_hbm2.dramsim3",
                (f"0x{address:x} {'WRITE' if write else 'READ'} {cycle}\n"
                 for address, write, cycle in dramsim3_requests(random.Random(2024))))
    write_lines(out / "example.ramulator",
                (f"{'ST' if write else 'LD'} 0x{address:x}\n"
                 for address, write in itertools.islice(ramulator_requests(random.Random(2025)),
                                                          RAMULATOR_REQUESTS)))


if __name__ == "__main__":
    main()
