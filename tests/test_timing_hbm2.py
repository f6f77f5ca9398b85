"""Device timings of HBM2 (hbm2_2gbps): a command is not ready one cycle before its constraint and
is ready at it, for every row of the preset's constraint table and for hand-written cases."""
import pytest

from timing_cases import BASE_CYCLE, Probe, preset

PRESETS = ["hbm2_2gbps"]


# --- hand-written cases: paths are (pseudo_channel, bank_group, bank) -------------------------------

@pytest.fixture
def spec():
    return preset("hbm2_2gbps")


@pytest.fixture
def T(spec):
    return spec.timing


B0 = (0, 0, 0)
B0_SAME_BG = (0, 0, 1)
B0_OTHER_BG = (0, 1, 0)
OTHER_PC = (1, 0, 0)


def test_activate_to_read_and_write(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("RD", B0) == t + T["nRCD"]         # 14
    assert p.ready("WR", B0) == t + T["nRCD_WR"]      # 12


def test_row_and_column_buses_are_separate(spec, T):
    """A column command may issue in the cycle of an ACT; ACT holds the row bus two clocks."""
    p = Probe(spec)
    t = p.open(B0_OTHER_BG, OTHER_PC)
    p.issue("ACT", B0, t)
    assert p.ready("RD", B0_OTHER_BG) <= t      # nothing binds it: ready in the ACT's cycle
    assert spec.commands[spec.command_index("ACT")].bus_cycles == 2
    assert p.ready("PRE", OTHER_PC) == t + 2
    assert p.ready("ACT", OTHER_PC) == t + 2
    assert p.ready("ACT", (0, 1, 1)) == t + max(T["nRRD_S"], 2)


def test_column_timings_per_pseudo_channel(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG, OTHER_PC)
    p.issue("RD", B0, t)
    assert p.ready("RD", B0_SAME_BG) == t + max(T["nBL"], T["nCCD_L"])     # 4
    assert p.ready("RD", B0_OTHER_BG) == t + max(T["nBL"], T["nCCD_S"])    # 2
    assert p.ready("RD", OTHER_PC) == t + 1         # own data bus; only the column bus is shared
    assert p.ready("WR", B0_OTHER_BG) == t + T["nCL"] + T["nBL"] + 2 - T["nCWL"]   # 13
    assert p.ready("WR", OTHER_PC) == t + 1


def test_write_to_read(spec, T):
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG)
    p.issue("WR", B0, t)
    assert p.ready("RD", B0_SAME_BG) == t + T["nCWL"] + T["nBL"] + T["nWTR_L"]
    assert p.ready("RD", B0_OTHER_BG) == t + T["nCWL"] + T["nBL"] + T["nWTR_S"]


def test_four_activate_window_per_pseudo_channel(spec, T):
    p = Probe(spec)
    banks = [(0, g, 0) for g in range(4)]
    times = [p.issue_when_ready("ACT", b, BASE_CYCLE) for b in banks]
    step = max(T["nRRD_S"], 2)
    assert times == [BASE_CYCLE + k * step for k in range(4)]
    assert p.ready("ACT", (0, 0, 1)) == max(times[0] + T["nFAW"], times[-1] + step)
    assert p.ready("ACT", OTHER_PC) == times[-1] + 2


def test_all_bank_refresh_covers_the_channel(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", OTHER_PC, BASE_CYCLE)
    assert p.ready("REFab", ()) == t + T["nRC"]
    t = p.issue("REFab", (), t + 10 * T["nRC"])
    assert p.ready("ACT", B0) == t + T["nRFC"]
    assert p.ready("ACT", OTHER_PC) == t + T["nRFC"]
    assert p.ready("REFpb", B0) == t + T["nRFC"]


def test_per_bank_refresh(spec, T):
    p = Probe(spec)
    t = p.issue("ACT", B0_OTHER_BG, BASE_CYCLE)
    assert p.ready("REFpb", B0) == t + T["nRRD_S"]
    t = p.issue("REFpb", B0, t + 10 * T["nRC"])
    assert p.ready("ACT", B0) == t + T["nRFCpb"]
    assert p.ready("ACT", B0_SAME_BG) == t + T["nRREFD"]
    assert p.ready("REFpb", B0_SAME_BG) == t + T["nRREFD"]
    assert p.ready("ACT", OTHER_PC) == t + 1
    assert p.ready("REFab", ()) == t + T["nRFCpb"]


def test_channels_are_independent(spec, T):
    p = Probe(spec, channel=3)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("RD", B0) == t + T["nRCD"]
    assert p.ready("RD", B0, channel=2) == 0
    assert p.ready("ACT", B0, channel=4) == 0
