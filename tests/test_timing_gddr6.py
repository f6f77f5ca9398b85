"""Device timings of GDDR6 (gddr6_14gbps): a command is not ready one cycle before its constraint
and is ready at it, for every row of the preset's constraint table and for hand-written cases."""
import pytest

from timing_cases import BASE_CYCLE, Probe, preset

PRESETS = ["gddr6_14gbps"]


# --- hand-written cases: paths are (bank_group, bank) ------------------------------------------------

@pytest.fixture
def spec():
    return preset("gddr6_14gbps")


@pytest.fixture
def T(spec):
    return spec.timing


B0 = (0, 0)
B0_SAME_BG = (0, 1)
B0_OTHER_BG = (1, 0)


def test_activate_to_read_and_write(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("RD", B0) == t + T["nRCD"]          # 27
    assert p.ready("WR", B0) == t + T["nRCD_WR"]       # 16
    assert p.ready("ACT", B0_SAME_BG) == t + T["nRRD_L"]
    assert p.ready("ACT", B0_OTHER_BG) == t + T["nRRD_S"]
    assert p.ready("REFpb", B0_OTHER_BG) == t + T["nRRD_L"]


def test_column_timings(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG)
    p.issue("RD", B0, t)
    assert p.ready("RD", B0_SAME_BG) == t + max(T["nBL"], T["nCCD_L"])
    assert p.ready("RD", B0_OTHER_BG) == t + max(T["nBL"], T["nCCD_S"])
    assert p.ready("WR", B0_OTHER_BG) == t + T["nCL"] + T["nBL"] + 4 - T["nCWL"]
    assert p.ready("PRE", B0) == t + T["nRTP"]
    t2 = p.issue("WR", B0_SAME_BG, t + 1000)
    assert p.ready("RD", B0) == t2 + T["nCWL"] + T["nBL"] + T["nWTR_L"]
    assert p.ready("RD", B0_OTHER_BG) == t2 + T["nCWL"] + T["nBL"] + T["nWTR_S"]


def test_one_command_bus(spec, T):
    assert not spec.separate_row_column_bus
    p = Probe(spec)
    t = p.open(B0_OTHER_BG)
    p.issue("ACT", B0, t)
    assert p.ready("RD", B0_OTHER_BG) == t + 1


def test_four_activate_window_per_channel(spec, T):
    p = Probe(spec)
    times = [p.issue_when_ready("ACT", (g, 0), BASE_CYCLE) for g in range(4)]
    assert times == [BASE_CYCLE + k * T["nRRD_S"] for k in range(4)]
    assert p.ready("ACT", (0, 1)) == max(times[0] + T["nFAW"], times[-1] + T["nRRD_S"])
    assert p.ready("ACT", (0, 1), channel=0) == 0      # the other channel of the device


def test_refresh(spec, T):
    p = Probe(spec)
    t = p.issue("REFab", (), BASE_CYCLE)
    assert p.ready("ACT", B0) == t + T["nRFC"]
    t = p.issue("REFpb", B0, t + T["nRFC"])
    assert p.ready("ACT", B0) == t + T["nRFCpb"]
    assert p.ready("ACT", B0_OTHER_BG) == t + T["nRREFD"]
    assert p.ready("REFpb", B0_SAME_BG) == t + T["nRREFD"]
    assert p.ready("REFab", ()) == t + T["nRFCpb"]
