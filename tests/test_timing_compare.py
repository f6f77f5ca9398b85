"""Device timings of the cross-simulator presets (configs/compare: DRAMsim3's DDR4 and HBM2): a
command is not ready one cycle before its constraint and is ready at it, for every row of each
preset's constraint table and for hand-written cases."""
import pytest

from timing_cases import BASE_CYCLE, Probe, preset

PRESETS = ["dramsim3_ddr4_8gb_x8_3200", "dramsim3_hbm2_8gb_x128"]


# --- hand-written cases: paths are (rank, bank_group, bank) -----------------------------------------

@pytest.fixture(params=PRESETS)
def spec(request):
    return preset(request.param)


B0 = (0, 0, 0)
B0_SAME_BG = (0, 0, 1)
B0_OTHER_BG = (0, 1, 0)


def test_dramsim3_row_timings(spec):
    T = spec.timing
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("RD", B0) == t + T["nRCD"]
    assert p.ready("WR", B0) == t + T["nRCD"]           # DRAMsim3 has one tRCD for reads and writes
    assert p.ready("ACT", B0_SAME_BG) == t + T["nRRD_L"]
    assert p.ready("ACT", B0_OTHER_BG) == t + T["nRRD_S"]
    t = p.issue("RDA", B0, t + T["nRCD"])
    # DRAMsim3's read-to-activate with auto-precharge counts the burst: nBL + nRTP + nRP
    assert p.ready("ACT", B0) == max(t + T["nBL"] + T["nRTP"] + T["nRP"], BASE_CYCLE + T["nRC"])


def test_dramsim3_column_timings(spec):
    T = spec.timing
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG)
    p.issue("RD", B0, t)
    assert p.ready("RD", B0_SAME_BG) == t + max(T["nBL"], T["nCCD_L"])
    assert p.ready("RD", B0_OTHER_BG) == t + max(T["nBL"], T["nCCD_S"])
    # DRAMsim3: read_to_write = RL + BL/2 - WL + tRTRS
    assert p.ready("WR", B0_OTHER_BG) == t + T["nCL"] + T["nBL"] - T["nCWL"] + T["nRTRS"]


def test_dramsim3_ddr4_rank_switch():
    spec = preset("dramsim3_ddr4_8gb_x8_3200")
    T = spec.timing
    other_rank = (1, 0, 0)
    p = Probe(spec)
    t = p.open(B0, other_rank)
    p.issue("WR", B0, t)
    assert p.ready("WR", other_rank) == t + T["nBL"]      # DRAMsim3: write_to_write_o = BL/2
    # max(0, nCWL + nBL + nRTRS - nCL) is 0 here: only the one command bus separates them
    assert p.ready("RD", other_rank) == t + max(1, T["nCWL"] + T["nBL"] + T["nRTRS"] - T["nCL"])
