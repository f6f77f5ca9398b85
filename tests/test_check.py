"""The independent command-log checker: legal logs pass, each planted violation is caught by its rule,
and random logs agree with a slow, obviously-correct reference written here."""
import importlib.util
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pimdram.check import (
    CheckResult,
    NoCommandLogError,
    check_command_log,
    check_stats_file,
    spec_from_resolved,
)
from pimdram.config.memory import load_memory
from pimdram.errors import PimdramError

DDR4 = load_memory("dramsim3_ddr4_8gb_x8_3200")
HBM2 = load_memory("dramsim3_hbm2_8gb_x128")
HBM2_SHARED_BUS = load_memory("dramsim3_hbm2_8gb_x128", {"command_bus.separate_row_column": False})


class Log:
    """A command log built by hand: add(cycle, name, *address, row=, column=)."""

    def __init__(self, spec):
        self.spec = spec
        self.rows = []

    def add(self, cycle, name, *address, row=-1, column=-1):
        addr = list(address) + [-1] * (len(self.spec.levels) - len(address))
        self.rows.append((cycle, self.spec.command_index(name), addr, row, column))
        return self

    def columns(self):
        levels = self.spec.levels
        out = {"cycle": np.array([r[0] for r in self.rows], dtype=np.int64),
               "command": np.array([r[1] for r in self.rows], dtype=np.uint8)}
        for i, lv in enumerate(levels):
            out[lv] = np.array([r[2][i] for r in self.rows], dtype=np.int32)
        out["row"] = np.array([r[3] for r in self.rows], dtype=np.int32)
        out["column"] = np.array([r[4] for r in self.rows], dtype=np.int32)
        return out

    def check(self, **kw):
        return check_command_log(self.spec, self.columns(), **kw)


def n(spec, name):
    return spec.timing[name]


def only(result, rule, index, expression=None):
    """The result has violations of `rule` only, and its first is command #index."""
    assert not result.ok
    assert result.rules_broken() == [rule], str(result)
    v = result.violations[0]
    assert v.index == index, str(result)
    if expression is not None:
        assert expression in v.constraint, str(result)
    return v


# --- legal hand-built logs -------------------------------------------------------------------

def ddr4_legal():
    T = DDR4.timing
    log = Log(DDR4)
    log.add(0, "ACT", 0, 0, 0, 0, row=10)
    log.add(4, "ACT", 0, 0, 1, 0, row=20)                 # nRRD_S to another bank group
    log.add(22, "RD", 0, 0, 0, 0, row=10, column=0)       # nRCD
    log.add(26, "RD", 0, 0, 1, 0, row=20, column=1)       # max(nBL, nCCD_S) across bank groups
    log.add(34, "RD", 0, 0, 0, 0, row=10, column=2)
    log.add(46, "WR", 0, 0, 0, 0, row=10, column=3)       # RD -> WR: nCL + nBL - nCWL + nRTRS = 11 (one cycle to spare)
    log.add(70, "RD", 0, 0, 1, 0, row=20, column=4)       # WR -> RD other bank group: nCWL + nBL + nWTR_S
    log.add(90, "PRE", 0, 0, 0, 0)                        # WR -> PRE: nCWL + nBL + nWR
    log.add(91, "PRE", 0, 0, 1, 0)
    log.add(113, "REFab", 0, 0)                           # PRE -> REFab: nRP
    log.add(114, "ACT", 0, 1, 0, 0, row=5)                # the other rank is not refreshing
    log.add(136, "RDA", 0, 1, 0, 0, row=5, column=7)
    log.add(188, "ACT", 0, 1, 0, 0, row=7)                # ACT -> ACT nRC (RDA -> ACT is 38)
    log.add(210, "WRA", 0, 1, 0, 0, row=7, column=1)
    log.add(113 + T["nRFC"], "ACT", 0, 0, 0, 0, row=11)   # REFab -> ACT: nRFC
    log.add(113 + T["nRFC"] + T["nRCD"], "RD", 0, 0, 0, 0, row=11, column=0)
    return log


def test_ddr4_hand_built_legal_log_passes():
    result = ddr4_legal().check()
    assert result.ok, str(result)
    assert bool(result) and result.n_commands == 16 and result.n_violations == 0
    assert result.violations == [] and result.n_warnings == 0


def test_hbm2_hand_built_legal_log_passes():
    log = Log(HBM2)
    for ch in (0, 1):                                     # channels are independent: same cycles
        log.add(0, "ACT", ch, 0, 0, 0, row=1)
    for ch in (0, 1):
        log.add(4, "ACT", ch, 0, 1, 0, row=2)             # nRRD_S
    for ch in (0, 1):
        log.add(14, "RD", ch, 0, 0, 0, row=1, column=0)   # nRCD
    log.add(14, "ACT", 0, 0, 2, 0, row=3)                 # row bus and column bus in one cycle
    log.add(18, "RD", 0, 0, 1, 0, row=2, column=1)
    log.add(20, "RD", 0, 0, 0, 0, row=1, column=2)        # max(nBL, nCCD_L) after 14 in bg 0
    log.add(34, "PRE", 0, 0, 0, 0)                        # nRAS
    log.add(48, "ACT", 0, 0, 0, 0, row=9)                 # nRP after PRE and nRC after ACT
    result = log.check()
    assert result.ok, str(result)


# --- planted violations, one rule at a time ---------------------------------------------------

def act_then(spec, name, delay, column=0):
    return Log(spec).add(0, "ACT", 0, 0, 0, 0, row=3).add(delay, name, 0, 0, 0, 0, row=3, column=column)


def test_act_to_read_one_cycle_before_nrcd_is_caught():
    v = only(act_then(DDR4, "RD", n(DDR4, "nRCD") - 1).check(), "timing", 1, "nRCD")
    assert (v.earlier_index, v.earlier_cycle, v.earlier_command) == (0, 0, "ACT")
    assert v.command == "RD" and v.cycle == n(DDR4, "nRCD") - 1
    assert "got 21" in v.constraint and "22" in v.constraint


def test_act_to_read_at_exactly_nrcd_is_legal():
    assert act_then(DDR4, "RD", n(DDR4, "nRCD")).check().ok


def faw_log(fifth_at):
    log = Log(DDR4)
    for i, bg in enumerate(range(4)):                      # four ACTs nRRD_S apart, one per bank group
        log.add(4 * i, "ACT", 0, 0, bg, 0, row=1)
    log.add(fifth_at, "ACT", 0, 0, 0, 1, row=1)            # nRRD_L from #0 and nRRD_S from #3 are met
    return log


def test_fifth_activate_inside_tfaw_is_caught():
    v = only(faw_log(n(DDR4, "nFAW") - 1).check(), "timing", 4, "window 4")
    assert v.earlier_index == 0 and "nFAW" in v.constraint


def test_fifth_activate_at_exactly_tfaw_is_legal():
    assert faw_log(n(DDR4, "nFAW")).check().ok


def test_trrd_l_applies_within_a_bank_group_and_trrd_s_across():
    same = Log(DDR4).add(0, "ACT", 0, 0, 0, 0, row=1).add(n(DDR4, "nRRD_S"), "ACT", 0, 0, 0, 1, row=1)
    only(same.check(), "timing", 1, "nRRD_L")
    other = Log(DDR4).add(0, "ACT", 0, 0, 0, 0, row=1).add(n(DDR4, "nRRD_S"), "ACT", 0, 0, 1, 0, row=1)
    assert other.check().ok
    too_soon = Log(DDR4).add(0, "ACT", 0, 0, 0, 0, row=1).add(n(DDR4, "nRRD_S") - 1, "ACT", 0, 0, 1, 0, row=1)
    only(too_soon.check(), "timing", 1, "nRRD_S")


def rank_switch(gap):
    log = Log(DDR4)
    log.add(0, "ACT", 0, 0, 0, 0, row=1)
    log.add(4, "ACT", 0, 1, 0, 0, row=1)
    log.add(22, "RD", 0, 0, 0, 0, row=1, column=0)
    log.add(22 + gap, "RD", 0, 1, 0, 0, row=1, column=0)
    return log


def test_rank_to_rank_read_turnaround_is_a_sibling_row():
    bound = n(DDR4, "nBL") + n(DDR4, "nRTRS")
    v = only(rank_switch(bound - 1).check(), "timing", 3, "sibling")
    assert v.earlier_index == 2 and "nBL + nRTRS" in v.constraint
    assert rank_switch(bound).check().ok
    # the same gap within one rank (different bank groups) needs only max(nBL, nCCD_S)
    same_rank = Log(DDR4).add(0, "ACT", 0, 0, 0, 0, row=1).add(4, "ACT", 0, 0, 1, 0, row=1)
    same_rank.add(22, "RD", 0, 0, 0, 0, row=1, column=0).add(26, "RD", 0, 0, 1, 0, row=1, column=0)
    assert same_rank.check().ok


def test_sibling_row_looks_past_commands_in_the_own_node():
    # rank 1 reads, then rank 0 reads, then rank 0 writes: the most recent read is in the write's
    # own rank, the binding one (RD -> WR sibling, nCL + nBL - nCWL + nRTRS = 11) is before it
    spec = load_memory("dramsim3_ddr4_8gb_x8_3200")
    rd, wr = spec.command_index("RD"), spec.command_index("WR")
    for r in spec.constraints:                       # leave only the sibling RD -> WR row
        if (r.from_cmd, r.to_cmd, r.sibling) == (rd, wr, False):
            r.latency = 0

    def log(write_at):
        out = Log(spec).add(0, "ACT", 0, 0, 0, 0, row=1).add(4, "ACT", 0, 1, 0, 0, row=1)
        out.add(26, "RD", 0, 1, 0, 0, row=1, column=0).add(31, "RD", 0, 0, 0, 0, row=1, column=0)
        return out.add(write_at, "WR", 0, 0, 0, 0, row=1, column=0)
    assert log(37).check().ok
    v = only(log(36).check(), "timing", 4, "sibling")
    assert v.earlier_index == 2 and v.earlier_cycle == 26


def test_read_to_a_closed_bank_is_caught():
    log = Log(DDR4).add(0, "ACT", 0, 0, 0, 0, row=3).add(30, "RD", 0, 0, 0, 1, row=3, column=0)
    v = only(log.check(), "bank_state", 1, "closed bank")
    assert "bank 1" in v.constraint


def test_read_after_precharge_is_to_a_closed_bank():
    log = Log(DDR4).add(0, "ACT", 0, 0, 0, 0, row=3).add(60, "PRE", 0, 0, 0, 0)
    log.add(200, "RD", 0, 0, 0, 0, row=3, column=0)
    v = only(log.check(), "bank_state", 2, "closed bank")
    assert v.earlier_command == "PRE"


def test_read_to_the_wrong_row_is_caught():
    v = only(act_then(DDR4, "RD", 30).add(30 + 100, "WR", 0, 0, 0, 0, row=4, column=0).check(),
             "bank_state", 2, "row 3 open")
    assert "row 4" in v.constraint and v.earlier_command == "ACT"


def test_activate_on_an_open_bank_is_caught():
    log = Log(DDR4).add(0, "ACT", 0, 0, 0, 0, row=3).add(200, "ACT", 0, 0, 0, 0, row=4)
    only(log.check(), "bank_state", 1, "activate on an open bank")


def test_auto_precharge_closes_the_bank():
    log = act_then(DDR4, "RDA", 22).add(200, "ACT", 0, 0, 0, 0, row=4)
    assert log.check().ok
    log = act_then(DDR4, "RDA", 22).add(200, "RD", 0, 0, 0, 0, row=3, column=0)
    only(log.check(), "bank_state", 2, "closed bank")


def test_refresh_with_an_open_bank_is_caught():
    log = Log(DDR4).add(0, "ACT", 0, 0, 3, 2, row=3).add(500, "REFab", 0, 0)
    v = only(log.check(), "bank_state", 1, "refresh with an open bank")
    assert "bank_group 3, bank 2" in v.constraint
    # the other rank's refresh is not affected
    assert Log(DDR4).add(0, "ACT", 0, 0, 3, 2, row=3).add(1, "REFab", 0, 1).check().ok


def test_all_bank_refresh_is_reached_by_bank_level_rows():
    def log(refresh_at, rank=0):
        out = Log(DDR4).add(0, "ACT", 0, 0, 3, 2, row=3).add(22, "RDA", 0, 0, 3, 2, row=3, column=0)
        return out.add(refresh_at, "REFab", 0, rank)
    ready = 22 + n(DDR4, "nRTP") + n(DDR4, "nRP")        # the bank row RDA -> REFab: 22 + 12 + 22
    only(log(ready - 1).check(), "timing", 2, "nRTP + nRP")
    assert log(ready).check().ok
    assert log(23, rank=1).check().ok                     # other rank: bank rows do not reach it


def test_refresh_to_activate_nrfc():
    log = Log(DDR4).add(0, "REFab", 0, 0).add(n(DDR4, "nRFC") - 1, "ACT", 0, 0, 1, 1, row=0)
    only(log.check(), "timing", 1, "nRFC")


def bus_log(spec):
    log = Log(spec).add(0, "ACT", 0, 0, 0, 0, row=1)
    return log.add(14, "RD", 0, 0, 0, 0, row=1, column=0).add(14, "ACT", 0, 0, 1, 0, row=2)


def test_one_cycle_two_commands_share_a_bus_only_when_buses_are_separate():
    assert bus_log(HBM2).check().ok
    v = only(bus_log(HBM2_SHARED_BUS).check(), "command_bus", 2, "command bus of channel 0")
    assert v.earlier_index == 1


def test_two_row_commands_in_one_cycle_collide_even_with_separate_buses():
    log = Log(HBM2).add(0, "ACT", 0, 0, 0, 0, row=1).add(0, "ACT", 1, 0, 0, 0, row=1)
    assert log.check().ok                                  # other channel, other bus
    log.add(4, "ACT", 0, 0, 1, 0, row=1).add(4, "PRE", 0, 0, 2, 0)      # ACT and PRE: both row commands
    only(log.check(), "command_bus", 3, "row command bus")


def test_multi_cycle_bus_occupancy_reaches_past_the_next_command():
    spec = load_memory("dramsim3_ddr4_8gb_x8_3200")
    spec.commands[spec.command_index("ACT")].bus_cycles = 4
    log = Log(spec).add(0, "ACT", 0, 0, 0, 0, row=1).add(1, "PRE", 0, 1, 0, 0)   # overlaps ACT
    log.add(3, "PRE", 0, 1, 1, 0)                         # still inside ACT's 4 cycles
    result = log.check()
    assert result.violations_by_rule["command_bus"] == 2
    assert [v.earlier_index for v in result.violations] == [0, 0]


def test_bad_addresses_and_order_are_reported():
    log = Log(DDR4).add(0, "ACT", 0, 2, 0, 0, row=1)       # rank 2 of 2
    log.add(1, "REFab", 0, 0, 1)                           # bank group given below the scope
    log.add(0, "PRE", 0, 0, 0, 0)                          # cycle goes back
    log.add(5, "ACT", 0, 1, 0, 0, row=DDR4.rows)           # row out of range
    result = log.check()
    assert result.violations_by_rule["address"] == 3
    assert result.violations_by_rule["order"] == 1
    assert [v.rule for v in result.violations] == ["address", "address", "order", "address"]
    assert "must be -1" in result.violations[1].constraint


def test_missing_column_is_an_error():
    cols = act_then(DDR4, "RD", 22).columns()
    del cols["bank_group"]
    with pytest.raises(PimdramError, match="bank_group"):
        check_command_log(DDR4, cols)


def test_examples_are_the_first_in_log_order_and_counts_are_complete():
    log = Log(DDR4)
    for i in range(30):                                    # 30 reads of a closed bank
        log.add(i * 10, "RD", 0, 0, i % 4, 0, row=1, column=0)
    result = log.check(max_examples=5)
    assert result.n_violations == 30 and len(result.violations) == 5
    assert [v.index for v in result.violations] == [0, 1, 2, 3, 4]


def test_refresh_gaps_are_warnings_not_violations():
    interval = DDR4.refresh.interval
    log = Log(DDR4).add(0, "REFab", 0, 0).add(0 + 1, "REFab", 0, 1)
    log.add(9 * interval, "REFab", 0, 0).add(9 * interval + 1, "REFab", 0, 1)    # exactly 9 intervals
    result = log.check()
    assert result.ok and result.n_warnings == 0
    log.add(15 * interval, "REFab", 0, 1).add(20 * interval, "REFab", 0, 1)   # rank 0: 11 intervals without
    result = log.check()
    assert result.ok and result.n_warnings == 1
    assert "rank=0" in result.warnings[0].node
    assert log.check(refresh=False).n_warnings == 0
    assert log.check(refresh_slack=12).n_warnings == 0


# --- a slow reference: the rules read literally, command by command ---------------------------

def nodes_at(spec, addr, scope, level):
    """Every node (address tuple down to `level`) a command at `addr` with `scope` touches."""
    if level <= scope:
        return {tuple(addr[:level + 1])}
    below = [range(spec.counts[L]) for L in range(scope + 1, level + 1)]
    return {tuple(addr[:scope + 1]) + rest for rest in itertools.product(*below)}


def timing_bound(spec, history, cmd, addr):
    """Per constraint row, the earliest cycle `cmd` at `addr` may issue after `history`."""
    sy = spec.commands[cmd].scope
    bounds = []
    for r in spec.constraints:
        if r.to_cmd != cmd:
            continue
        sx = spec.commands[r.from_cmd].scope
        L = r.level
        earlier = [h for h in history if h[1] == r.from_cmd]
        if r.sibling:
            if sx < L or sy < L:
                continue
            mine = tuple(addr[:L + 1])
            xs = [h for h in earlier if tuple(h[2][:L]) == mine[:L] and tuple(h[2][:L + 1]) != mine]
            if len(xs) >= r.window:
                bounds.append((xs[-r.window][0] + r.latency, r))
            continue
        per_node = []
        for node in nodes_at(spec, addr, sy, L):
            xs = [h for h in earlier if node in nodes_at(spec, h[2], sx, L)]
            if len(xs) >= r.window:
                per_node.append(xs[-r.window][0] + r.latency)
        if per_node:
            bounds.append((max(per_node), r))
    return bounds


def bus_bound(spec, history, cmd, addr):
    bus = spec.commands[cmd].bus if spec.separate_row_column_bus else 0
    ends = [h[0] + spec.commands[h[1]].bus_cycles for h in history
            if h[2][0] == addr[0] and (spec.commands[h[1]].bus if spec.separate_row_column_bus else 0) == bus]
    return max(ends, default=0)


def reference_violations(spec, rows):
    """(index, rule) for every rule row each command of `rows` breaks, by the literal rules."""
    out = []
    state = {}
    bank = len(spec.levels) - 1
    for i, (cycle, cmd, addr, row) in enumerate(rows):
        history = rows[:i]
        c = spec.commands[cmd]
        if i and cycle < rows[i - 1][0]:
            out.append((i, "order"))
        for bound, _ in timing_bound(spec, [(h[0], h[1], h[2]) for h in history], cmd, addr):
            if cycle < bound:
                out.append((i, "timing"))
        if cycle < bus_bound(spec, [(h[0], h[1], h[2]) for h in history], cmd, addr):
            out.append((i, "command_bus"))
        banks = sorted(nodes_at(spec, addr, c.scope, bank))
        before = [state.get(b) for b in banks]
        problems = set()
        if c.kind == "activate" and any(s is not None for s in before):
            problems.add("open")
        if c.kind in ("read", "write", "read_precharge", "write_precharge"):
            if any(s is None for s in before):
                problems.add("closed")
            if any(s is not None and s != row for s in before):
                problems.add("row")
        if c.kind == "refresh" and any(s is not None for s in before):
            problems.add("open")
        out.extend((i, "bank_state") for _ in problems)
        for b in banks:
            if c.kind == "activate":
                state[b] = row
            elif c.kind in ("precharge", "read_precharge", "write_precharge", "refresh"):
                state[b] = None
    return out


def to_columns(spec, rows):
    log = Log(spec)
    for cycle, cmd, addr, row in rows:
        c = spec.commands[cmd]
        column = 0 if c.kind in ("read", "write", "read_precharge", "write_precharge") else -1
        log.add(cycle, c.name, *addr[:c.scope + 1], row=row, column=column)
    return log


def generate_legal(spec, draw_choice, n_commands, channels, ranks, groups, banks):
    """Issue commands one at a time, each at the earliest cycle the reference rules allow.

    Returns rows (cycle, command, full address, row) and, per command, the cycle its timing rows
    alone required (None if none applied)."""
    bank = len(spec.levels) - 1
    names = spec.command_names
    state = {}
    rows, timing_required = [], []
    refresh = [i for i, c in enumerate(spec.commands) if c.kind == "refresh"][0]
    rank_level = spec.commands[refresh].scope
    for _ in range(n_commands):
        ch = draw_choice(channels)
        if draw_choice(range(12)) == 0:
            addr = (ch, draw_choice(ranks)) + (-1,) * (len(spec.levels) - 2)
            open_banks = [b for b in state if state[b] is not None and b[:rank_level + 1] == addr[:rank_level + 1]]
            if open_banks:
                cmd, addr, row = names.index("PRE"), open_banks[0], -1
            else:
                cmd, row = refresh, -1
        else:
            addr = (ch, draw_choice(ranks), draw_choice(groups), draw_choice(banks))
            open_row = state.get(addr)
            if open_row is None:
                cmd, row = (names.index("ACT"), draw_choice(range(3))) if draw_choice(range(5)) else (names.index("PRE"), -1)
            else:
                cmd = names.index(draw_choice(["RD", "RD", "WR", "RDA", "WRA", "PRE"]))
                row = -1 if names[cmd] == "PRE" else open_row
        history = [(h[0], h[1], h[2]) for h in rows]
        bounds = timing_bound(spec, history, cmd, addr)
        t_timing = max((b for b, _ in bounds), default=None)
        cycle = max([rows[-1][0] if rows else 0, bus_bound(spec, history, cmd, addr)]
                    + ([t_timing] if t_timing is not None else []))
        rows.append((cycle, cmd, addr, row))
        timing_required.append(t_timing)
        kind = spec.commands[cmd].kind
        for b in nodes_at(spec, addr, spec.commands[cmd].scope, bank):
            if kind == "activate":
                state[b] = row
            elif kind in ("precharge", "read_precharge", "write_precharge", "refresh"):
                state[b] = None
    return rows, timing_required


SETUPS = {
    "ddr4": (DDR4, dict(channels=[0], ranks=[0, 1], groups=[0, 1], banks=[0, 1])),
    "hbm2": (HBM2, dict(channels=[0, 1], ranks=[0], groups=[0, 1, 2], banks=[0, 1])),
    "hbm2_shared_bus": (HBM2_SHARED_BUS, dict(channels=[0], ranks=[0], groups=[0, 1], banks=[0, 1])),
}

# PIMDRAM_CHECK_EXAMPLES=500 for a longer search
slow_settings = settings(max_examples=int(os.environ.get("PIMDRAM_CHECK_EXAMPLES", 25)), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("setup", sorted(SETUPS))
@slow_settings
@given(data=st.data(), n_commands=st.integers(5, 45))
def test_random_legal_logs_pass_and_one_cycle_early_is_caught(setup, data, n_commands):
    spec, where = SETUPS[setup]
    choice = lambda options: data.draw(st.sampled_from(list(options)))  # noqa: E731
    rows, required = generate_legal(spec, choice, n_commands, **where)
    result = to_columns(spec, rows).check(refresh=False)
    assert result.ok, str(result)
    assert reference_violations(spec, rows) == []

    bound = [i for i, t in enumerate(required) if t is not None and t == rows[i][0] and t > 0]
    if not bound:
        return
    i = data.draw(st.sampled_from(bound))
    cycle, cmd, addr, row = rows[i]
    early = rows[:i] + [(cycle - 1, cmd, addr, row)] + rows[i + 1:]
    result = to_columns(spec, early).check(refresh=False)
    assert not result.ok
    assert {v.index for v in result.violations} == {i}, str(result)
    assert any(v.rule == "timing" and v.index == i for v in result.violations), str(result)


@pytest.mark.parametrize("setup", sorted(SETUPS))
@slow_settings
@given(data=st.data(), n_commands=st.integers(5, 35))
def test_perturbed_logs_agree_with_the_reference_rule_by_rule(setup, data, n_commands):
    spec, where = SETUPS[setup]
    choice = lambda options: data.draw(st.sampled_from(list(options)))  # noqa: E731
    rows, _ = generate_legal(spec, choice, n_commands, **where)
    # move some commands earlier (keeping cycles sorted) and swap some rows' bank or row
    shifts = data.draw(st.lists(st.integers(0, 40), min_size=len(rows), max_size=len(rows)))
    cycles = sorted(max(0, r[0] - s) for r, s in zip(rows, shifts))
    rows = [(c, cmd, addr, row) for c, (_, cmd, addr, row) in zip(cycles, rows)]
    for _ in range(data.draw(st.integers(0, 3))):
        j = data.draw(st.integers(0, len(rows) - 1))
        c, cmd, addr, row = rows[j]
        if spec.commands[cmd].scope == len(spec.levels) - 1:
            addr = addr[:-1] + (1 - addr[-1],)
        rows[j] = (c, cmd, addr, row if row < 0 else row + 1)
    expected = reference_violations(spec, rows)
    result = to_columns(spec, rows).check(refresh=False, max_examples=1000)
    got = {rule: result.violations_by_rule[rule] for rule in ("order", "timing", "bank_state", "command_bus")}
    want = {rule: sum(1 for _, r in expected if r == rule) for rule in got}
    assert got == want, str(result)
    assert sorted({i for i, _ in expected}) == sorted({v.index for v in result.violations})


# --- the spec stored in a stats file ---------------------------------------------------------

@pytest.mark.parametrize("spec", [DDR4, HBM2], ids=["ddr4", "hbm2"])
def test_spec_from_resolved_round_trips(spec):
    d = yaml.safe_load(spec.to_yaml())
    rebuilt = spec_from_resolved(d)
    assert rebuilt.to_dict() == spec.to_dict()
    assert spec_from_resolved({"memory": d}).levels == spec.levels


def test_spec_from_resolved_names_what_is_missing():
    d = DDR4.to_dict()
    del d["constraints"]
    with pytest.raises(PimdramError, match="constraints"):
        spec_from_resolved(d)


def write_stats_file(path, spec, log, with_log=True):
    from pimdram.stats import StatsWriter, standard_table

    attrs = {"config": spec.to_yaml(), "trace-sha256": "0" * 64, "trace-path": "test.trace",
             "seed": 0, "command-names": spec.command_names, "levels": spec.levels}
    with StatsWriter(path, attrs) as w:
        if with_log:
            w.write_table("command_log", standard_table("command_log", log.columns(),
                                                        command_names=spec.command_names,
                                                        levels=spec.levels))
    return path


needs_stats = pytest.mark.skipif(importlib.util.find_spec("pimdram.stats") is None,
                                 reason="pimdram.stats (the stats writer) is not there yet")


@needs_stats
def test_check_stats_file(tmp_path):
    good = write_stats_file(tmp_path / "good.h5", DDR4, ddr4_legal())
    assert check_stats_file(good).ok
    bad = write_stats_file(tmp_path / "bad.h5", DDR4, act_then(DDR4, "RD", 21))
    result = check_stats_file(bad)
    assert isinstance(result, CheckResult) and result.violations_by_rule["timing"] == 1


@needs_stats
def test_cli_check(tmp_path):
    from pimdram.cli import cli

    runner = CliRunner()
    good = write_stats_file(tmp_path / "good.h5", DDR4, ddr4_legal())
    res = runner.invoke(cli, ["check", str(good)])
    assert res.exit_code == 0, res.output
    assert "16 commands checked, 0 violations" in res.output

    bad = write_stats_file(tmp_path / "bad.h5", DDR4, act_then(DDR4, "RD", 21))
    res = runner.invoke(cli, ["check", str(bad)])
    assert res.exit_code == 1, res.output
    assert "2 commands checked, 1 violations" in res.output
    assert "cycle 21: RD [channel=0 rank=0 bank_group=0 bank=0] timing: ACT -> RD at bank: 22 cycles" in res.output

    empty = write_stats_file(tmp_path / "nolog.h5", DDR4, None, with_log=False)
    res = runner.invoke(cli, ["check", str(empty)])
    assert res.exit_code == 1
    assert "--command-log" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    with pytest.raises(NoCommandLogError):
        check_stats_file(empty)

    res = runner.invoke(cli, ["check", str(tmp_path / "absent.h5")])
    assert res.exit_code == 1 and "no such file" in res.output


# --- the engine's own output -------------------------------------------------------------------

TRACES = Path(__file__).resolve().parents[1] / "traces"
needs_replay = pytest.mark.skipif(importlib.util.find_spec("pimdram.replay") is None
                                  or not (TRACES / "example_hbm2.dramsim3").exists(),
                                  reason="pimdram.replay or the example trace is not there yet")


@needs_replay
@pytest.mark.parametrize("memory", ["dramsim3_hbm2_8gb_x128", "dramsim3_ddr4_8gb_x8_3200"])
def test_engine_command_log_is_legal(tmp_path, memory):
    from pimdram.replay import replay_requests

    out = tmp_path / "run.h5"
    replay_requests(TRACES / "example_hbm2.dramsim3", memory, out, command_log=True)
    result = check_stats_file(out)
    assert result.ok, str(result)
    assert result.n_commands > 20000


def test_checker_shares_no_code_with_the_engine():
    import ast
    import pimdram.check

    tree = ast.parse(Path(pimdram.check.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert imported <= {"dataclasses", "heapq", "math", "typing", "numpy", ".config.memory", ".errors", ".stats",
                        ".stats.errors"}, imported
