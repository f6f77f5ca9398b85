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
