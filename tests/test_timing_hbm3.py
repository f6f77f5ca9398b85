"""Device timings of HBM3 at both speed bins (hbm3_5.2gbps, hbm3_6.4gbps): a command is not ready
one cycle before its constraint and is ready at it, for every row of each preset's constraint
table and for hand-written cases."""
import pytest

from timing_cases import BASE_CYCLE, Probe, preset

PRESETS = ["hbm3_5.2gbps", "hbm3_6.4gbps"]


# --- hand-written cases: paths are (pseudo_channel, sid, bank_group, bank) ------------------------

@pytest.fixture(params=PRESETS)
def spec(request):
    return preset(request.param)


B0 = (0, 0, 0, 0)
B0_SAME_BG = (0, 0, 0, 1)
B0_OTHER_BG = (0, 0, 1, 0)
OTHER_SID = (0, 1, 0, 0)
OTHER_PC = (1, 0, 0, 0)


def rtp(T):
    """Read to precharge of the same bank: nRTP_L where the bin splits it (5.2 Gbps), else nRTP."""
    return T["nRTP_L"] if "nRTP_L" in T else T["nRTP"]


def test_activate_to_read_and_write(spec):
    T = spec.timing
    p = Probe(spec)
    t = p.issue("ACT", B0, BASE_CYCLE)
    assert p.ready("RD", B0) == t + T["nRCD"]
    assert p.ready("WR", B0) == t + T["nRCD_WR"]
    assert p.ready("PRE", B0) == t + T["nRAS"]
    assert p.ready("ACT", B0) == t + T["nRC"]
    assert p.ready("ACT", B0_SAME_BG) == t + max(T["nRRD_L"], 2)
    assert p.ready("ACT", B0_OTHER_BG) == t + max(T["nRRD_S"], 2)   # ACT holds the row bus 2 clocks
    assert p.ready("ACT", OTHER_PC) == t + 2


def test_read_to_read_across_sids(spec):
    """6.4 Gbps adds the SID switch nCCD_R; 5.2 Gbps (AttAcc's table) has none, the pseudo-channel
    nCCD_S row covers both SIDs."""
    T = spec.timing
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG, OTHER_SID, OTHER_PC)
    p.issue("RD", B0, t)
    assert p.ready("RD", B0_SAME_BG) == t + max(T["nBL"], T["nCCD_L"])
    assert p.ready("RD", B0_OTHER_BG) == t + max(T["nBL"], T["nCCD_S"])
    sid_switch = max(T["nBL"], T["nCCD_R"]) if "nCCD_R" in T else 0
    assert p.ready("RD", OTHER_SID) == t + max(T["nBL"], T["nCCD_S"], sid_switch)
    assert p.ready("RD", OTHER_PC) == t + 1


def test_read_write_turnarounds(spec):
    T = spec.timing
    p = Probe(spec)
    t = p.open(B0, B0_SAME_BG, B0_OTHER_BG)
    p.issue("RD", B0, t)
    assert p.ready("WR", B0_OTHER_BG) == t + max(T["nRTW"], T["nCL"] + T["nBL"] + 2 - T["nCWL"])
    assert p.ready("PRE", B0) == t + rtp(T)
    t2 = p.issue("WR", B0_SAME_BG, t + 1000)
    assert p.ready("RD", B0) == t2 + T["nCWL"] + T["nBL"] + T["nWTR_L"]
    assert p.ready("RD", B0_OTHER_BG) == t2 + T["nCWL"] + T["nBL"] + T["nWTR_S"]
    assert p.ready("PRE", B0_SAME_BG) == t2 + T["nCWL"] + T["nBL"] + T["nWR"]


def test_precharge_to_precharge(spec):
    T = spec.timing
    p = Probe(spec)
    t = p.open(B0, B0_OTHER_BG, OTHER_PC)
    p.issue("PRE", B0, t)
    assert p.ready("PRE", B0_OTHER_BG) == t + max(T.get("nPPD", 1), 1)
    assert p.ready("PRE", OTHER_PC) == t + 1
    assert p.ready("ACT", B0) == t + T["nRP"]


def test_refresh(spec):
    T = spec.timing
    p = Probe(spec)
    t = p.issue("REFab", (), BASE_CYCLE)
    assert p.ready("ACT", B0) == t + T["nRFC"]
    assert p.ready("ACT", OTHER_PC) == t + T["nRFC"]
    rfc_pb = T["nRFCsb"] if "nRFCsb" in T else T["nRFCpb"]
    t = p.issue("REFpb", B0, t + T["nRFC"])
    assert p.ready("ACT", B0) == t + rfc_pb
    assert p.ready("REFpb", B0_OTHER_BG) == t + T["nRREFD"]
    assert p.ready("ACT", OTHER_SID) == t + T["nRREFD"]
    assert p.ready("ACT", OTHER_PC) == t + 1
    assert p.ready("REFab", ()) == t + rfc_pb


def test_four_activate_window_per_pseudo_channel(spec):
    T = spec.timing
    p = Probe(spec)
    banks = [(0, 0, g, 0) for g in range(4)]
    times = [p.issue_when_ready("ACT", b, BASE_CYCLE) for b in banks]
    step = max(T["nRRD_S"], 2)
    assert times == [BASE_CYCLE + k * step for k in range(4)]
    assert p.ready("ACT", OTHER_SID) == max(times[0] + T["nFAW"], times[-1] + step)
    assert p.ready("ACT", OTHER_PC) == times[-1] + 2


def test_channels_are_independent(spec):
    p = Probe(spec, channel=15)
    t = p.issue("REFab", (), BASE_CYCLE)
    assert p.ready("ACT", B0) == t + spec.timing["nRFC"]
    assert p.ready("ACT", B0, channel=14) == 0
