"""Bank selections of PIM commands (`banks: same` / `banks: LEVEL`): one bank, chosen per issue, in
every node of a level under the command's node. The config, the engine's timing and bank
holding, the command log and the checker, on a small broadcast design (the same bank in both
pseudo-channels of an HBM3 channel) whose MAC spacings differ per level so that each shows."""
import numpy as np
import pytest

from pim_programs import PimRun
from pimdram.check import check_command_log
from pimdram.config.memory import load_memory
from pimdram.errors import ConfigError
from pimdram.replay import CommandLogExpander

DESIGN = """
name: test-broadcast
base: hbm3_5.2gbps
commands:
  ACTPB: {kind: activate, scope: channel, banks: pseudo_channel, bus: row, bus_cycles: 2}
  MACPB: {kind: mac, scope: channel, banks: pseudo_channel, bus: column, unit: gemv}
  PREPB: {kind: precharge, scope: channel, banks: pseudo_channel, bus: row}
constraints:
  - {level: channel, from: MACPB, to: MACPB, latency: 2}
  - {level: sid, from: MACPB, to: MACPB, latency: 3}
  - {level: bank_group, from: MACPB, to: MACPB, latency: 5}
  - {level: bank, from: ACTPB, to: MACPB, latency: nRCD}
  - {level: bank, from: MACPB, to: PREPB, latency: nRTP_L}
  - {level: bank, from: PREPB, to: ACTPB, latency: nRP}
  - {level: bank, from: ACTPB, to: [PRE, PREA, PREPB], latency: nRAS}
  - {level: bank, from: PREPB, to: ACT, latency: nRP}
pim:
  units:
    gemv: {kind: mac, level: pseudo_channel, lanes: 16}
"""


@pytest.fixture
def design(tmp_path):
    path = tmp_path / "test-broadcast.yaml"
    path.write_text(DESIGN)
    return str(path)


def k_of(sid, bank_group, bank):
    """The bank choice of (SID, bank group, bank) in a pseudo-channel: 2 x 4 x 4 = 32 banks."""
    return (sid * 4 + bank_group) * 4 + bank


# ACTPB for four banks, then MACPBs on them in this order (choice, row 7)
BANKS = [k_of(0, 0, 0), k_of(0, 0, 1), k_of(0, 1, 0), k_of(1, 0, 0)]
MAC_ORDER = [k_of(0, 0, 0), k_of(0, 0, 1), k_of(0, 1, 0), k_of(1, 0, 0), k_of(0, 0, 0)]


def program():
    prog = [(0, "ACTPB", (), k, 7, 0) for k in BANKS]
    prog += [(0, "MACPB", (), k, 7, 1) for k in MAC_ORDER]
    prog += [(0, "PREPB", (), k, 0, 0) for k in BANKS]
    return prog


def test_the_selection_level_sets_period_and_banks_covered(design):
    spec = load_memory(design)
    mac = spec.commands[spec.command_index("MACPB")]
    assert spec.selection_level(mac) == spec.levels.index("pseudo_channel")
    assert spec.selection_period(mac) == 32 and spec.banks_covered(mac) == 2
    same = load_memory("attacc-bankgroup")
    macsb = same.commands[same.command_index("MACSB")]
    assert same.selection_period(macsb) == 4 and same.banks_covered(macsb) == 16
    bank = load_memory("attacc-bank")
    assert bank.selection_period(bank.commands[bank.command_index("MACAB")]) == 0


@pytest.mark.parametrize("change, message", [
    ("MACPB: {kind: mac, scope: channel, banks: pseudo_channel", "MACPB: {kind: mac, scope: pseudo_channel, banks: pseudo_channel"),
    ("MACPB: {kind: mac, scope: channel, banks: pseudo_channel", "MACPB: {kind: mac, scope: channel, banks: bank"),
    ("MACPB: {kind: mac, scope: channel, banks: pseudo_channel", "MACPB: {kind: mac, scope: channel, banks: rank"),
])
def test_a_selection_level_must_lie_between_scope_and_bank(tmp_path, change, message):
    old, new = change, message
    path = tmp_path / "bad.yaml"
    path.write_text(DESIGN.replace(old, new))
    with pytest.raises(ConfigError, match=r"commands\.MACPB\.banks: "):
        load_memory(str(path))


def test_mac_spacing_follows_the_rows_of_the_chosen_bank_in_every_pseudo_channel(design):
    run = PimRun(design, program())
    t = run.spec.timing
    acts = run.cycles("ACTPB")
    assert acts == [0, 2, 4, 6]                     # the row bus, 2 cycles each
    # by hand: the first MAC nRCD after its activate; the second in the same bank group 5 after
    # it; the third in SID 0 3 after the second; the fourth (SID 1) nRCD after its activate (6),
    # also 2 after the third (channel); the fifth in bank group (0, 0): 5 after the second,
    # 3 after the third (SID 0), 2 after the fourth
    first = acts[0] + t["nRCD"]                     # 19
    second = first + 5                              # 24
    third = second + 3                              # 27
    fourth = max(acts[3] + t["nRCD"], third + 2)    # 29
    fifth = max(second + 5, third + 3, fourth + 2)  # 31
    assert run.cycles("MACPB") == [first, second, third, fourth, fifth]
    # the precharges: nRTP_L after the bank's last MAC and nRAS after its activate
    pres = run.cycles("PREPB")
    assert pres[0] == max(fifth + t["nRTP_L"], acts[0] + t["nRAS"]) == 45
    run.check()


def test_the_log_names_the_chosen_bank_below_the_selection_level(design):
    run = PimRun(design, program())
    log = CommandLogExpander(run.engine, run.spec)(run.raw)
    macs = np.flatnonzero(log["command"] == run.spec.command_index("MACPB"))
    got = [(int(log["pseudo_channel"][i]), int(log["sid"][i]), int(log["bank_group"][i]), int(log["bank"][i]))
           for i in macs]
    assert got == [(-1, 0, 0, 0), (-1, 0, 0, 1), (-1, 0, 1, 0), (-1, 1, 0, 0), (-1, 0, 0, 0)]


def test_a_broadcast_activate_holds_its_bank_in_both_pseudo_channels(design):
    # normal reads in pseudo-channel 1: one to a bank the broadcast holds, one to a bank it does not
    held = dict(bank=(1, 0, 0, 0), row=3, arrival=10)
    free = dict(bank=(1, 0, 0, 2), row=3, arrival=10)
    run = PimRun(design, program(), accesses=[held, free])
    reads = run.cycles("RD")
    pres = run.cycles("PREPB")
    assert len(reads) == 2
    assert min(reads) < run.cycles("MACPB")[-1]     # the free bank is read during the GEMV
    assert max(reads) > pres[0]                     # the held one only after its precharge
    run.check()


# --- the checker ---------------------------------------------------------------------------

def expanded(run):
    return {k: np.array(v).copy() for k, v in CommandLogExpander(run.engine, run.spec)(run.raw).items()}


def nth(run, log, name, n):
    return int(np.flatnonzero(log["command"] == run.spec.command_index(name))[n])


def test_the_checker_accepts_the_broadcast_log(design):
    run = PimRun(design, program())
    assert check_command_log(run.spec, expanded(run)).ok


@pytest.mark.parametrize("mac, rule", [(2, "MACPB -> MACPB at sid: 3 cycles"),
                                       (1, "MACPB -> MACPB at bank_group: 5 cycles"),
                                       (3, "MACPB -> MACPB at channel: 2 cycles")])
def test_a_mac_one_cycle_early_breaks_the_row_of_its_level(design, mac, rule):
    run = PimRun(design, program())
    log = expanded(run)
    i = nth(run, log, "MACPB", mac)
    log["cycle"][i] -= 1
    result = check_command_log(run.spec, log)
    broken = [str(v) for v in result.violations if v.rule == "timing"]
    assert any(rule in v for v in broken), broken
    assert all(rule in v for v in broken), broken      # and no other row


def test_a_normal_activate_in_the_other_pseudo_channel_finds_the_bank_open(design):
    run = PimRun(design, program())
    log = expanded(run)
    i = nth(run, log, "MACPB", 0)
    act = run.spec.command_index("ACT")
    # an ACT of (pseudo-channel 1, SID 0, bank group 0, bank 0) between the broadcast ACTPB and PREPB
    extra = {k: np.insert(v, i, v[i]) for k, v in log.items()}
    extra["command"][i] = act
    extra["pseudo_channel"][i], extra["sid"][i], extra["bank_group"][i], extra["bank"][i] = 1, 0, 0, 0
    result = check_command_log(run.spec, extra)
    assert any(v.rule == "bank_state" and "activate on an open bank" in str(v)
               and "pseudo_channel 1" in str(v) for v in result.violations), str(result)
    # the same ACT on a bank the broadcast did not choose is fine as far as bank state goes
    extra["bank"][i] = 3
    result = check_command_log(run.spec, extra)
    assert not any(v.rule == "bank_state" for v in result.violations), str(result)


def test_a_broadcast_naming_one_pseudo_channel_breaks_the_address_rule(design):
    run = PimRun(design, program())
    log = expanded(run)
    i = nth(run, log, "MACPB", 0)
    log["pseudo_channel"][i] = 1
    result = check_command_log(run.spec, log)
    assert result.violations_by_rule["address"] == 1
    assert "pseudo_channel must be -1 below the command's scope (channel) down to its selection level" \
        in str(result.violations[0])
