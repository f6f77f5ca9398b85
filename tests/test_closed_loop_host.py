"""The example host of tools/closed_loop_host.py: cores chasing pointers through pimdram.MemorySystem,
each load sent when the one it depends on has returned."""
import importlib.util
from pathlib import Path

from pimdram.config.memory import load_memory
from timing_cases import encode_address

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("closed_loop_host", ROOT / "tools" / "closed_loop_host.py")
host = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(host)

NO_REFRESH = {"controller.refresh": "none"}


def test_one_chain_through_one_bank_pays_every_conflict_in_turn():
    # ddr4_3200, every load to another row of bank 0: the first finds the bank closed (ACT at 1,
    # RD at 1 + nRCD 22, data nCL 22 + nBL 4 later: 49). Each next one is sent when the previous
    # returns and must wait for PRE at ACT + nRAS 52 (after its RD + nRTP 12), ACT nRP 22 later
    # (= previous ACT + nRC 74), RD nRCD later, data 26 later: 74 cycles after the previous load.
    spec = load_memory("ddr4_3200", NO_REFRESH)
    rows = lambda chain, i, previous: int(encode_address(spec, 0, (0, 0, 0), row=i + 1))   # noqa: E731
    r = host.run("ddr4_3200", cores=1, chains=1, loads=5, overrides=NO_REFRESH, addresses=rows)
    assert r.latencies == [49, 74, 74, 74, 74]
    assert r.cycles == 49 + 4 * 74
    assert [(cycle, prev) for _, cycle, prev in r.sends] == [(0, -1), (49, 49), (123, 123), (197, 197), (271, 271)]


def test_two_chains_in_two_bank_groups_overlap_four_cycles_apart():
    # the same, chain 1 in bank group 1: both first loads are seen at 1; chain 1's ACT waits
    # nRRD_S 4 (ACT at 5, RD at 27, done at 53). From then on each chain pays its own conflicts,
    # 74 cycles per load as above, its ACTs 4 cycles behind chain 0's (nFAW 34 never binds: two
    # ACTs per 70 cycles)
    spec = load_memory("ddr4_3200", NO_REFRESH)
    rows = lambda chain, i, previous: int(encode_address(spec, 0, (0, chain, 0), row=i + 1))   # noqa: E731
    r = host.run("ddr4_3200", cores=1, chains=2, loads=5, overrides=NO_REFRESH, addresses=rows)
    sends = [(chain, cycle) for chain, cycle, _ in r.sends]
    assert sends == [(0, 0), (1, 0), (0, 49), (1, 53), (0, 123), (1, 127), (0, 197), (1, 201), (0, 271), (1, 275)]
    assert r.latencies == [49, 53] + [74] * 8
    assert r.cycles == 53 + 4 * 74 and r.max_in_flight == [2]


def test_many_cores_keep_their_dependences_and_their_outstanding_limit():
    r = host.run("hbm2_2gbps", cores=4, chains=3, loads=60, seed=7)
    assert r.loads == len(r.latencies) == 4 * 3 * 60 and r.per_core_loads == [180] * 4
    assert max(r.max_in_flight) == 3                        # never more loads in flight than chains
    assert all(sent >= previous for _, sent, previous in r.sends)   # a load never precedes its pointer
    assert r.stats["requests"] == r.loads and r.stats["reads"] == 2 * r.loads   # 64 B lines, 32 B accesses
    assert r.stats["cycles"] == r.cycles


def test_a_host_clock_twice_the_memory_clock_counts_twice_the_cycles():
    r = host.run("ddr4_3200", cores=1, chains=2, loads=20, host_ghz=3.2)     # tCK 0.625 ns: 1.6 GHz
    assert r.host_cycles == 2 * r.cycles
