"""Device timings of DDR4 (ddr4_3200): a command is not ready one cycle before its constraint and
is ready at it, for every row of the preset's constraint table and for hand-written cases."""
import pytest

from pimdram.config.memory import load_memory
from timing_cases import BASE_CYCLE, Probe, check_row, check_window_row, preset

PRESETS = ["ddr4_3200"]


# --- hand-written cases: DDR4-3200AA, paths are (rank, bank_group, bank) --------------------------

@pytest.fixture
def spec():
    return preset("ddr4_3200")


@pytest.fixture
def T(spec):
    return spec.timing


B0 = (0, 0, 0)          # rank 0, bank group 0, bank 0
B0_SAME_BG = (0, 0, 1)
B0_OTHER_BG = (0, 1, 0)
OTHER_RANK = (1, 0, 0)


def test_activate_to_read_same_bank_is_nRCD(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("RD", B0) == t + T["nRCD"]          # 22 at DDR4-3200AA
    assert p.ready("WR", B0) == t + T["nRCD"]
    assert p.ready("RDA", B0) == t + T["nRCD"]


def test_read_to_read_bank_groups(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG)
    p.issue("RD", B0, t)
    assert p.ready("RD", B0) == t + max(T["nBL"], T["nCCD_L"])          # 8
    assert p.ready("RD", B0_SAME_BG) == t + max(T["nBL"], T["nCCD_L"])  # 8
    assert p.ready("RD", B0_OTHER_BG) == t + max(T["nBL"], T["nCCD_S"])  # 4


def test_write_to_read_turnaround(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG)
    p.issue("WR", B0, t)
    assert p.ready("RD", B0_SAME_BG) == t + T["nCWL"] + T["nBL"] + T["nWTR_L"]    # 32
    assert p.ready("RD", B0_OTHER_BG) == t + T["nCWL"] + T["nBL"] + T["nWTR_S"]   # 24


def test_read_to_write_turnaround(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_OTHER_BG)
    p.issue("RD", B0, t)
    assert p.ready("WR", B0_OTHER_BG) == t + T["nCL"] + T["nBL"] + 2 - T["nCWL"]   # 12


def test_rank_switch(spec, T):
    p = Probe(spec)
    t = p.open(B0, OTHER_RANK)
    p.issue("RD", B0, t)
    assert p.ready("RD", OTHER_RANK) == t + T["nBL"] + T["nRTRS"]                      # 6
    assert p.ready("WR", OTHER_RANK) == t + T["nCL"] + T["nBL"] + T["nRTRS"] - T["nCWL"]  # 12
    p2 = Probe(spec)
    t = p2.open(B0, OTHER_RANK)
    p2.issue("WR", B0, t)
    assert p2.ready("WR", OTHER_RANK) == t + T["nBL"] + T["nRTRS"]
    assert p2.ready("RD", OTHER_RANK) == t + max(1, T["nCWL"] + T["nBL"] + T["nRTRS"] - T["nCL"])


def test_activate_to_activate(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("ACT", B0) == t + T["nRC"]             # 74
    assert p.ready("ACT", B0_SAME_BG) == t + T["nRRD_L"]  # 8
    assert p.ready("ACT", B0_OTHER_BG) == t + T["nRRD_S"]  # 4
    assert p.ready("ACT", OTHER_RANK) == t + 1            # only the shared command bus


def test_row_cycle(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("PRE", B0) == t + T["nRAS"]             # 52
    assert p.ready("PREA", (0,)) == t + T["nRAS"]          # the bank row reaches the rank's PREA
    assert p.ready("PREA", (1,)) == t + 1
    t = p.issue("PRE", B0, t + T["nRAS"])
    assert p.ready("ACT", B0) == max(t + T["nRP"], BASE_CYCLE + T["nRC"])


def test_column_to_precharge(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_OTHER_BG)
    p.issue("RD", B0, t)
    assert p.ready("PRE", B0) == t + T["nRTP"]             # 12
    p.issue("WR", B0_OTHER_BG, t + 100)
    assert p.ready("PRE", B0_OTHER_BG) == t + 100 + T["nCWL"] + T["nBL"] + T["nWR"]   # 44


def test_auto_precharge_to_activate(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_OTHER_BG)
    p.issue("RDA", B0, t)
    assert p.ready("ACT", B0) == t + T["nRTP"] + T["nRP"]
    p.issue("WRA", B0_OTHER_BG, t + 200)
    assert p.ready("ACT", B0_OTHER_BG) == t + 200 + T["nCWL"] + T["nBL"] + T["nWR"] + T["nRP"]


def test_four_activate_window(spec, T):
    """Four ACTs nRRD_S apart in four bank groups; the fifth waits for first + nFAW (34), which
    is later than the nRRD_S chain (16): not ready at first + nFAW - 1, ready at it."""
    p = Probe(spec)
    banks = [(0, g, 0) for g in range(4)]
    t0 = p.issue("ACT", banks[0], BASE_CYCLE)
    for k, b in enumerate(banks[1:], start=1):
        assert p.ready("ACT", b) == t0 + k * T["nRRD_S"]
        p.issue("ACT", b, t0 + k * T["nRRD_S"])
    assert T["nFAW"] > 4 * T["nRRD_S"]
    assert p.ready("ACT", (0, 0, 1)) == t0 + T["nFAW"]
    assert p.ready("ACT", (1, 0, 0)) == t0 + 3 * T["nRRD_S"] + 1   # the other rank has its own window


def test_all_bank_refresh(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("REFab", (0,)) == t + T["nRC"]
    t = p.issue("PRE", B0, t + T["nRAS"])
    assert p.ready("REFab", (0,)) == max(t + T["nRP"], BASE_CYCLE + T["nRC"])
    t = p.issue("REFab", (0,), BASE_CYCLE + T["nRC"])
    assert p.ready("ACT", B0_OTHER_BG) == t + T["nRFC"]       # 560
    assert p.ready("REFab", (0,)) == t + T["nRFC"]
    assert p.ready("ACT", OTHER_RANK) == t + 1                # the other rank is not refreshing


def test_one_command_bus(spec, T):
    """DDR4 has one C/A bus: a column command cannot share a cycle with a row command."""
    p = Probe(spec)
    t = p.open(OTHER_RANK)
    p.issue("ACT", B0, t)
    assert p.ready("RD", OTHER_RANK) == t + 1


# --- the suite catches a planted error -------------------------------------------------------

def test_planted_latency_error_is_caught(spec):
    """An engine built with nRCD one cycle longer must fail the ACT->RD row check."""
    wrong = load_memory("ddr4_3200", {"timing.nRCD": spec.timing["nRCD"] + 1})
    i = next(i for i, r in enumerate(spec.constraints)
             if spec.command_names[r.from_cmd] == "ACT" and spec.command_names[r.to_cmd] == "RD")
    with pytest.raises(AssertionError, match="ready at"):
        check_row(spec, i, engine_spec=wrong)


def test_planted_window_error_is_caught(spec):
    wrong = load_memory("ddr4_3200", {"timing.nFAW": spec.timing["nFAW"] - 1})
    i = next(i for i, r in enumerate(spec.constraints) if r.window > 1)
    with pytest.raises(AssertionError):
        check_window_row(spec, i, engine_spec=wrong)
