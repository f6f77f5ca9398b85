"""The checker on PIM command logs: multi-bank and same-bank commands, MACs needing open rows,
the second (PIM) row buffer; a clean engine log passes and planted violations are caught."""
import numpy as np

from pim_programs import PimRun, gemv_program
from pimdram.check import check_command_log
from pimdram.config.memory import load_memory
from pimdram.replay import CommandLogExpander


def expanded(run):
    return {k: np.array(v).copy() for k, v in CommandLogExpander(run.engine, run.spec)(run.raw).items()}


def check(run, log):
    return check_command_log(run.spec, log)


def index_of(run, log, name, nth=0):
    c = run.spec.command_index(name)
    return int(np.flatnonzero(log["command"] == c)[nth])


def test_a_mac_too_early_breaks_the_all_bank_spacing():
    spec = load_memory("attacc-bank")
    run = PimRun("attacc-bank", gemv_program(spec, "MACAB", n_macs=4))
    log = expanded(run)
    assert check(run, log).ok
    i = index_of(run, log, "MACAB", 2)
    log["cycle"][i] -= 1
    result = check(run, log)
    assert not result.ok and result.violations_by_rule["timing"] >= 1
    assert any("MACAB -> MACAB at channel" in str(v) and "nCCD_AB = 6" in str(v) for v in result.violations)


def test_a_mac_after_the_precharge_finds_its_banks_closed():
    spec = load_memory("attacc-bank")
    run = PimRun("attacc-bank", gemv_program(spec, "MACAB", n_macs=2))
    log = expanded(run)
    pre = index_of(run, log, "PREAB")
    mac = index_of(run, log, "MACAB", 1)
    # move the last MAC behind the precharge
    for col in log:
        log[col] = np.concatenate([np.delete(log[col], mac)[:pre], log[col][mac:mac + 1], np.delete(log[col], mac)[pre:]])
    log["cycle"][pre] = log["cycle"][pre - 1] + 50
    result = check(run, log)
    assert result.violations_by_rule["bank_state"] >= 1
    assert any("access to a closed bank" in str(v) for v in result.violations)


def test_same_bank_commands_hold_only_their_banks():
    spec = load_memory("attacc-bankgroup")
    run = PimRun("attacc-bankgroup", gemv_program(spec, "MACSB", n_macs=3, select=1),
                 accesses=[dict(bank=(0, 0, 0, 0), row=4), dict(bank=(0, 0, 3, 1), row=4)])
    log = expanded(run)
    assert check(run, log).ok
    acts = np.flatnonzero(log["command"] == spec.command_index("ACTSB"))
    assert log["bank"][acts[0]] == 1 and log["bank_group"][acts[0]] == -1
    # a second ACTSB of bank 1 before the PRESB is an activate on open banks
    i = acts[0]
    extra = {k: np.insert(v, i + 1, v[i]) for k, v in log.items()}
    extra["cycle"][i + 1] = extra["cycle"][i] + 100
    extra["cycle"][i + 2:] += 200
    result = check(run, extra)
    assert any(v.rule == "bank_state" and "activate on an open bank" in str(v) for v in result.violations)
    # a bank outside the selection is not touched: an ACTSB of bank 2 there is fine timing-wise
    # only after nRC of its own banks, which ACTSB of bank 1 did not raise
    other = {k: np.insert(v, i + 1, v[i]) for k, v in log.items()}
    other["bank"][i + 1] = 2
    other["cycle"][i + 1] = other["cycle"][i] + spec.timing["nRRD_L"]
    other["cycle"][i + 2:] += 200
    result = check(run, other)
    assert not any(v.index == i + 1 and v.rule == "bank_state" for v in result.violations)


def test_the_pim_row_buffer_is_tracked_apart_from_the_normal_one():
    program = [(0, "G_ACT", (pc, bg), 0, 5, 0) for pc in range(2) for bg in range(4)]
    program += [(0, "COMP", (), 0, 5, 1), (0, "PIM_PRE", (), 0, 0, 0)]
    run = PimRun("neupims", program, accesses=[dict(bank=(0, 0, 0), row=9)])
    log = expanded(run)
    assert check(run, log).ok            # the normal ACT while the PIM row is open is legal
    # drop the PIM precharge, then activate the PIM row again: illegal in the PIM row buffer
    pre = index_of(run, log, "PIM_PRE")
    act = index_of(run, log, "G_ACT")
    for col in log:
        log[col] = log[col].copy()
    log["command"][pre] = run.spec.command_index("G_ACT")
    log["bank_group"][pre], log["pseudo_channel"][pre] = log["bank_group"][act], log["pseudo_channel"][act]
    log["row"][pre] = 6
    result = check(run, log)
    assert any("(PIM row buffer)" in str(v) and "activate on an open bank" in str(v) for v in result.violations)


# --- AttAcc's broadcast and same-bank rules, on logs of real programs --------------------------

def attacc_log(design, L, d, **overrides):
    """The expanded log of one head on `design` (refresh off), and the spec."""
    from pimdram.lower import run_attention
    run = run_attention(design, 1, L, d, command_log=True, overrides={"controller.refresh": "none", **overrides})
    log = {k: np.array(v).copy() for k, v in CommandLogExpander(run["engine"], run["spec"])(run["log"]).items()}
    return run["spec"], log


def nth_of(spec, log, name, n):
    return int(np.flatnonzero(log["command"] == spec.command_index(name))[n])


def broken(spec, log):
    result = check_command_log(spec, log)
    return [str(v) for v in result.violations if v.rule == "timing"]


def test_a_head_on_each_attacc_design_checks_clean():
    for design in ("attacc-bank", "attacc-bankgroup", "attacc-buffer"):
        spec, log = attacc_log(design, 640, 64)
        assert check_command_log(spec, log).ok


def test_planted_violations_of_the_broadcast_rules_are_caught():
    # L = 64, d = 16: 32 MACPB, one per bank of a pseudo-channel, 2 apart (round robin over the
    # SID x bank-group units: the 9th MACPB is back in the first MAC's bank group, 16 cycles on;
    # the banks' precharges, held to nRAS, go between the MACs, not in a heap: at most a cycle
    # lost where a move and a row command share a gap)
    spec, log = attacc_log("attacc-buffer", 64, 16)
    macs = np.flatnonzero(log["command"] == spec.command_index("MACPB"))
    gaps = np.diff(log["cycle"][macs[:32]])
    assert list(gaps[:8]) == [2] * 8 and gaps.max() <= 3 and gaps.sum() <= 2 * 31 + 2
    # channel: nBL
    bad = {k: v.copy() for k, v in log.items()}
    bad["cycle"][macs[5]] -= 1
    assert any("MACPB -> MACPB at channel: nBL = 2 cycles" in v for v in broken(spec, bad))
    # bank group: nCCD_L (move the 9th MAC to 3 cycles after the first, between them in the log)
    bad = {k: v.copy() for k, v in log.items()}
    i = macs[8]
    order = np.r_[np.arange(macs[1]), [i], np.delete(np.arange(len(log["cycle"])), i)[macs[1]:]]
    bad = {k: v[order] for k, v in bad.items()}
    bad["cycle"][macs[1]] = log["cycle"][macs[0]] + 3
    got = broken(spec, bad)
    assert any("MACPB -> MACPB at bank_group: nCCD_L = 4 cycles, got 3" in v for v in got), got
    # bank: nRCD after the broadcast activate, in both pseudo-channels
    bad = {k: v.copy() for k, v in log.items()}
    first_act = nth_of(spec, log, "ACTPB", 0)
    bad["cycle"][macs[0]] = log["cycle"][first_act] + spec.timing["nRCD"] - 1
    assert any("ACTPB -> MACPB at bank: nRCD = 19 cycles" in v for v in broken(spec, bad))


def test_planted_violations_of_same_bank_and_move_rules_are_caught():
    # attacc-bankgroup: MACSB nCCD_SB = 6 apart under the power limit
    spec, log = attacc_log("attacc-bankgroup", 640, 64)
    macs = np.flatnonzero(log["command"] == spec.command_index("MACSB"))
    assert list(np.diff(log["cycle"][macs[:8]])) == [6] * 7
    bad = {k: v.copy() for k, v in log.items()}
    bad["cycle"][macs[4]] -= 1
    assert any("MACSB -> MACSB at channel: nCCD_SB = 6 cycles" in v for v in broken(spec, bad))
    # the moves: WRGB of one head all go to one bank group, nCCD_L apart
    wrgb = np.flatnonzero(log["command"] == spec.command_index("WRGB"))
    assert list(np.diff(log["cycle"][wrgb])) == [4] * (len(wrgb) - 1)
    bad = {k: v.copy() for k, v in log.items()}
    bad["cycle"][wrgb[1]] -= 1
    assert any("WRGB -> WRGB at bank_group: nCCD_L = 4 cycles" in v for v in broken(spec, bad))
