"""Re-verifies a command log against a memory standard's rules, with code that shares nothing with the engine.

This is the proof that a run's commands were legal (DESIGN.md, decision 6): it reads the
resolved MemorySpec as plain data, tracks bank state itself and checks every command of the log,
exactly (nothing is sampled), with vectorised numpy. It imports nothing from the engine
(`cext/`, `pimdram._engine`) or from `pimdram.replay`.

The log
    A dict of equal-length columns in issue order: `cycle` (int64, non-decreasing), `command`
    (index into `spec.commands`), one int32 column per level of `spec.levels` (the command's
    node: -1 for the levels below its scope), `row` and `column` (int32, -1 when none).
    Banks are taken to be closed before the first command.

The rules, each reported under its own name
    address      the command index exists; the address columns name a node: in range at and
                 above the command's scope, -1 below it; activates, reads and writes carry a
                 row in range; reads and writes a column in range. A command that breaks this
                 rule takes no further part in the check (its node is unknown).
    order        cycles never decrease along the log.
    timing       every row of `spec.constraints` (see below).
    bank_state   the checker's own open-row tracking: an activate needs every bank of its
                 scope closed and opens `row` in them; a read/write (with or without
                 auto-precharge) needs every bank of its scope open on its `row`; a precharge
                 closes every bank of its scope (closing a closed bank is legal); a read or
                 write with auto-precharge closes its banks after the access; a refresh needs
                 every bank of its scope closed. A PIM multiply-accumulate (kind mac) needs
                 its banks open on its `row`, like a read. Commands of any other kind take
                 part in the timing and bus rules only.
                 PIM designs: a command with a bank selection (`banks: same`, the same bank
                 in every bank group; `banks: LEVEL`, the same bank in every node of LEVEL)
                 acts, in every node of that selection level under its node, on the bank its
                 address columns below the selection level name (they are -1 from below its
                 scope down to the selection level), for timing rows below its scope too;
                 with `row_buffer: pim` it opens, uses and closes the banks' second (PIM) row
                 buffer, tracked apart from the normal one; a refresh needs both closed.
    command_bus  per channel, a command occupies its bus (`row` or `column`, one shared bus if
                 `spec.separate_row_column_bus` is false) for `bus_cycles` cycles from its
                 issue cycle; two commands never overlap on one bus.

Timing rows
    The nodes a command touches at level L are: the one ancestor at L named by its address
    columns if L is at or above its scope; every node at L under its scope node if L is deeper.
    A row (L, X -> Y, latency, window w), not sibling, requires of every Y command at cycle t:
    for every earlier (in log order) X command whose L-nodes intersect Y's, t - t_X >= latency
    (w = 1); for w > 1, in each L-node of Y, the w-th most recent earlier X touching that node
    has t - t_X >= latency (tFAW, w = 4: a fifth activate comes no sooner than nFAW after the
    first of the four before it). A sibling row applies, only if X's and Y's scopes are at or
    below L, between commands whose L-nodes differ but share their parent node (rank-to-rank
    turnarounds). Channels are independent: every node key includes the channel.

    Because cycles are non-decreasing, the most recent earlier X is also the latest in time, so
    checking it (or the w-th most recent) is checking them all.

Refresh (warnings, not violations)
    With `refresh=True`, every node at the refresh level of `spec.refresh` (in every channel the
    log mentions) must receive a refresh (a refresh-kind command whose scope node contains it)
    at least once in every `refresh_slack * interval` cycles of the log's span, from its first
    to its last command (DDR-style postponement allows 8 pending refreshes: slack 9). Gaps
    longer than that are reported as `RefreshWarning`s: whether a controller may postpone more
    is a policy, not a timing rule.

Counting
    `n_violations` counts one per command and rule row broken (a command that breaks two timing
    rows counts twice; a multi-bank command that breaks the bank state in several banks counts
    once). `violations` holds the first `max_examples` in log order.

`check_stats_file(path)` does the same for a stats file's `command_log`, reconstructing the
MemorySpec from the resolved config stored in the file (`spec_from_resolved`).
"""
import heapq
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .config.memory import (
    BUSES,
    Command,
    Constraint,
    Controller,
    MemorySpec,
    Refresh,
)
from .errors import FileFormatError, PimdramError

RULES = ("address", "order", "timing", "bank_state", "command_bus")

# The kinds whose bank-state effect the checker knows.
_ACTIVATE, _PRECHARGE, _READ, _WRITE, _READ_PRE, _WRITE_PRE, _REFRESH, _MAC = range(8)
_KIND_CODES = {"activate": _ACTIVATE, "precharge": _PRECHARGE, "read": _READ, "write": _WRITE,
               "read_precharge": _READ_PRE, "write_precharge": _WRITE_PRE, "refresh": _REFRESH,
               "mac": _MAC}
_OTHER = 255
_COLUMN_KINDS = (_READ, _WRITE, _READ_PRE, _WRITE_PRE)
_ROW_USERS = _COLUMN_KINDS + (_MAC,)     # need their banks open on their row
_CLOSED = -1


class NoCommandLogError(PimdramError):
    """A stats file has no command log to check."""


@dataclass(frozen=True)
class Violation:
    """One command that breaks one rule."""
    index: int                  # row of the log
    cycle: int
    command: str
    node: str                   # e.g. "channel=0 rank=1 bank_group=2 bank=3"
    rule: str                   # one of RULES
    constraint: str             # the rule broken, with its expression and the values involved
    earlier_index: Optional[int] = None     # the earlier command that binds, if any
    earlier_cycle: Optional[int] = None
    earlier_command: Optional[str] = None

    def __str__(self):
        text = f"#{self.index} cycle {self.cycle} {self.command} [{self.node}] {self.rule}: {self.constraint}"
        if self.earlier_index is not None:
            text += f" (after {self.earlier_command} #{self.earlier_index} at cycle {self.earlier_cycle})"
        return text


@dataclass(frozen=True)
class RefreshWarning:
    """A refresh node went longer than the allowed gap without a refresh."""
    node: str
    gap_start: int      # cycle of the previous refresh (or the start of the log)
    gap_end: int        # cycle of the next refresh (or the end of the log)
    limit: int          # refresh_slack * interval

    def __str__(self):
        return (f"[{self.node}] no refresh from cycle {self.gap_start} to {self.gap_end} "
                f"({self.gap_end - self.gap_start} cycles > {self.limit})")


@dataclass
class CheckResult:
    """What `check_command_log` found. True (ok) when no rule is broken; warnings do not count."""
    n_commands: int
    n_violations: int
    violations: List[Violation]
    violations_by_rule: Dict[str, int]
    n_warnings: int = 0
    warnings: List[RefreshWarning] = field(default_factory=list)

    @property
    def ok(self):
        return self.n_violations == 0

    def __bool__(self):
        return self.ok

    def rules_broken(self):
        """Names of the rules with at least one violation."""
        return [r for r, n in self.violations_by_rule.items() if n]

    def __str__(self):
        lines = [f"{self.n_commands} commands checked, {self.n_violations} violations"
                 + (f", {self.n_warnings} refresh warnings" if self.n_warnings else "")]
        lines += [f"  {v}" for v in self.violations]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --- the log, prepared ---------------------------------------------------------------------

class _Log:
    """The log's columns as arrays, the node key of every command at every level, and the
    map from checked positions back to log rows (commands with a bad address are left out).

    Streaming: the rows before `first_new` are carried from earlier chunks (all valid, already
    checked): they take part as earlier commands only. `global_index` gives every row's index
    in the whole log."""

    def __init__(self, spec, log, first_new=0, global_index=None):
        self.spec = spec
        self.levels = list(spec.levels)
        self.counts = [int(c) for c in spec.counts]
        self.n_total = _log_length(spec, log)
        self.first_new = int(first_new)
        self.global_index = (np.arange(self.n_total, dtype=np.int64) if global_index is None
                             else np.asarray(global_index, dtype=np.int64))
        self.all_cycle = np.asarray(log["cycle"], dtype=np.int64)
        self.all_command = np.asarray(log["command"], dtype=np.int64)
        self.all_addr = [np.asarray(log[lv], dtype=np.int64) for lv in self.levels]
        self.all_row = np.asarray(log["row"], dtype=np.int64)
        self.all_column = np.asarray(log["column"], dtype=np.int64)
        n_cmd = len(spec.commands)
        self.scopes = np.array([c.scope for c in spec.commands], dtype=np.int64)
        self.kinds = np.array([_KIND_CODES.get(c.kind, _OTHER) for c in spec.commands], dtype=np.int64)
        # the selection level of each command (-1: every bank under its node)
        self.sel_level = np.array([-1 if spec.selection_level(c) is None else spec.selection_level(c)
                                   for c in spec.commands] or [-1], dtype=np.int64)
        self.n_cmd = n_cmd

    def validate_addresses(self, out):
        """Report address violations; keep the valid commands for the other rules."""
        spec = self.spec
        cmd = self.all_command
        ok_cmd = (cmd >= 0) & (cmd < self.n_cmd)
        safe = np.where(ok_cmd, cmd, 0)
        scope = self.scopes[safe]
        kind = self.kinds[safe]
        sel = self.sel_level[safe]
        bank = len(self.levels) - 1
        problem = np.zeros(self.n_total, dtype=np.int64)  # 0 = fine, else a reason code
        for L, (a, count) in enumerate(zip(self.all_addr, self.counts)):
            above = (L <= scope) | ((sel >= 0) & (L > sel))   # a selecting command names its bank below
            bad = np.where(above, (a < 0) | (a >= count), a != -1)
            problem = np.where((problem == 0) & bad, 1 + L, problem)
        needs_row = (kind == _ACTIVATE) | np.isin(kind, _ROW_USERS)
        bad_row = needs_row & ((self.all_row < 0) | (self.all_row >= spec.rows))
        problem = np.where((problem == 0) & bad_row, 100, problem)
        bad_col = np.isin(kind, _COLUMN_KINDS) & ((self.all_column < 0) | (self.all_column >= spec.columns))
        problem = np.where((problem == 0) & bad_col, 101, problem)
        problem = np.where(~ok_cmd, 200, problem)
        bad = np.flatnonzero(problem)

        def describe(i):
            code = int(problem[i])
            c = int(cmd[i])
            name = spec.commands[c].name if 0 <= c < self.n_cmd else f"command {c}"
            node = " ".join(f"{lv}={int(a[i])}" for lv, a in zip(self.levels, self.all_addr))
            if code == 200:
                what = f"command index {c} is not one of the {self.n_cmd} commands"
            elif code == 100:
                what = f"row {int(self.all_row[i])} outside 0..{spec.rows - 1}"
            elif code == 101:
                what = f"column {int(self.all_column[i])} outside 0..{spec.columns - 1}"
            else:
                L = code - 1
                s = spec.commands[c].scope
                R = int(self.sel_level[c])
                if L <= s or (R >= 0 and L > R):
                    what = (f"{self.levels[L]} {int(self.all_addr[L][i])} outside 0..{self.counts[L] - 1}")
                else:
                    down_to = f" down to its selection level ({self.levels[R]})" if R >= 0 else ""
                    what = (f"{self.levels[L]} must be -1 below the command's scope "
                            f"({self.levels[s]}){down_to}, got {int(self.all_addr[L][i])}")
            return Violation(int(self.global_index[i]), int(self.all_cycle[i]), name, node, "address", what)

        out.add("address", bad, describe)
        keep = np.flatnonzero(problem == 0)
        self.orig = keep
        self.cycle = self.all_cycle[keep]
        self.command = self.all_command[keep]
        self.addr = [a[keep] for a in self.all_addr]
        self.row = self.all_row[keep]
        self.column = self.all_column[keep]
        self.n = len(keep)
        self.scope = self.scopes[self.command] if self.n else np.zeros(0, np.int64)
        # keys[L][i]: flat index of command i's ancestor at level L (-1 where L is below its scope)
        keys = []
        k = self.addr[0].copy()
        keys.append(k)
        for L in range(1, len(self.levels)):
            k = np.where(self.scope >= L, k * self.counts[L] + self.addr[L], -1)
            keys.append(k)
        self.keys = keys
        self.positions = {c: np.flatnonzero(self.command == c) for c in range(self.n_cmd)}
        # the commands whose rules are checked: not the carried ones (kept rows keep their order,
        # and carried rows are all valid, so first_new is a kept position too)
        self.new_positions = {c: p[p >= self.first_new] for c, p in self.positions.items()}

    def nodes_below(self, level):
        """Number of nodes at `level` under one node of each level above or at it."""
        return [int(np.prod(self.counts[s + 1:level + 1], dtype=np.int64)) for s in range(level + 1)]

    def node_text(self, pos):
        c = int(self.command[pos])
        s = self.spec.commands[c].scope
        text = " ".join(f"{self.levels[L]}={int(self.addr[L][pos])}" for L in range(s + 1))
        R = int(self.sel_level[c])
        if R >= 0:
            chosen = " ".join(f"{self.levels[L]}={int(self.addr[L][pos])}" for L in range(R + 1, len(self.levels)))
            text += f" (the same bank, {chosen}, in every {self.levels[R]})"
        return text

    def violation(self, pos, rule, text, earlier=None):
        c = int(self.command[pos])
        kw = {}
        if earlier is not None and earlier >= 0:
            kw = dict(earlier_index=int(self.global_index[self.orig[earlier]]), earlier_cycle=int(self.cycle[earlier]),
                      earlier_command=self.spec.commands[int(self.command[earlier])].name)
        return Violation(int(self.global_index[self.orig[pos]]), int(self.cycle[pos]), self.spec.commands[c].name,
                         self.node_text(pos), rule, text, **kw)


class _Collector:
    """Counts violations per rule and keeps the first few of each batch (enough to find the
    first `max_examples` overall)."""

    def __init__(self, log, max_examples):
        self.log = log
        self.max_examples = max(0, int(max_examples))
        self.counts = {r: 0 for r in RULES}
        self.examples = []

    def add(self, rule, positions, describe):
        positions = np.unique(np.asarray(positions, dtype=np.int64))
        self.counts[rule] += len(positions)
        for p in positions[: self.max_examples]:
            self.examples.append(describe(int(p)))

    def first(self):
        order = sorted(self.examples, key=lambda v: (v.index, RULES.index(v.rule)))
        return order[: self.max_examples]


# --- rules -----------------------------------------------------------------------------------

def _check_order(log, out, previous=None):
    """On every new row (a command with a bad address still has a cycle); `previous`: (index,
    cycle, command) of the row before the first new one, from the chunk before."""
    first = log.first_new
    cycle = log.all_cycle[first:]
    command = log.all_command[first:]
    index = log.global_index[first:]
    if previous is not None:
        cycle = np.concatenate([[previous[1]], cycle])
        command = np.concatenate([[previous[2]], command])
        index = np.concatenate([[previous[0]], index])
    if len(cycle) < 2:
        return
    bad = np.flatnonzero(np.diff(cycle) < 0) + 1
    shift = first - (1 if previous is not None else 0)       # row in `log` of position i here

    def describe(i):
        c = int(command[i])
        name = log.spec.commands[c].name if 0 <= c < log.n_cmd else f"command {c}"
        prev = int(command[i - 1])
        prev_name = log.spec.commands[prev].name if 0 <= prev < log.n_cmd else f"command {prev}"
        row = i + shift
        node = " ".join(f"{lv}={int(a[row])}" for lv, a in zip(log.levels, log.all_addr) if a[row] >= 0)
        return Violation(int(index[i]), int(cycle[i]), name, node, "order",
                         f"cycle {int(cycle[i])} is before the previous command's cycle {int(cycle[i - 1])}",
                         int(index[i - 1]), int(cycle[i - 1]), prev_name)

    out.add("order", bad, describe)


def _sorted_events(key, pos, n):
    """Composite (key, position) values, sorted; position is recoverable as value % (n + 1)."""
    comp = key * (n + 1) + pos
    comp.sort(kind="stable")
    return comp


def _expand(log, pos, scope, level, sel_level=-1):
    """Each command at `pos` (all of one command type, scope `scope`) as (position, key) pairs,
    one per node it touches at `level`: its ancestor there, or every node at `level` under its
    node. A command with a bank selection (`sel_level` >= 0) touches, at levels below the
    selection level, only the node on its chosen bank's path (its address columns below the
    selection level) in each node of the selection level under its node."""
    if scope >= level:
        return pos, log.keys[level][pos]
    if sel_level < 0 or level <= sel_level:
        per = log.nodes_below(level)[scope]
        base = log.keys[scope][pos] * per
        offsets = np.arange(per, dtype=np.int64)
    else:
        n_sel = log.nodes_below(sel_level)[scope]            # selection-level nodes under the node
        per_sel = log.nodes_below(level)[sel_level]          # level-nodes under one of them
        chosen = np.zeros(len(pos), dtype=np.int64)          # the chosen path, as an index under one
        for L in range(sel_level + 1, level + 1):
            chosen = chosen * log.counts[L] + log.addr[L][pos]
        base = log.keys[scope][pos] * n_sel * per_sel + chosen
        offsets = np.arange(n_sel, dtype=np.int64) * per_sel
    keys = (base[:, None] + offsets[None, :]).ravel()
    return np.repeat(pos, len(offsets)), keys


def _constraint_text(spec, r):
    names = spec.command_names
    where = spec.levels[r.level] + (" sibling" if r.sibling else "")
    win = f", window {r.window}" if r.window > 1 else ""
    expr = r.text.strip() if r.text else ""
    if expr and expr != str(r.latency):
        lat = f"{expr} = {r.latency}"
    else:
        lat = str(r.latency)
    return f"{names[r.from_cmd]} -> {names[r.to_cmd]} at {where}{win}: {lat} cycles"


def _check_timing(log, out, row_done=lambda: None):
    spec = log.spec
    n = log.n
    cache = {}

    def sorted_x(tag, x, pos, keys):
        if (tag, x) not in cache:
            cache[(tag, x)] = _sorted_events(keys, pos, n)
        return cache[(tag, x)]

    for r in spec.constraints:
        row_done()
        x, y, L, w = r.from_cmd, r.to_cmd, r.level, r.window
        xpos, ypos = log.positions[x], log.new_positions[y]
        if len(xpos) == 0 or len(ypos) == 0:
            continue
        sx, sy = spec.commands[x].scope, spec.commands[y].scope
        if r.sibling:
            if sx < L or sy < L:
                continue    # a sibling row relates commands at or below its level only
            if w == 1:
                earlier = _latest_sibling(log, L, xpos, ypos, cache, x)
            else:
                earlier = _window_sibling_slow(log, L, xpos, ypos, w)
            yp = ypos
        elif w == 1 and not (0 <= log.sel_level[x] < L or 0 <= log.sel_level[y] < L):
            m = min(L, sx, sy)
            comp = sorted_x(("m", m), x, xpos, log.keys[m][xpos])
            ykey = log.keys[m][ypos]
            earlier = _wth_before(comp, ykey, ypos, 1, n)
            yp = ypos
        else:
            epos, ekey = _expand(log, xpos, sx, L, log.sel_level[x])
            comp = sorted_x(("L", L), x, epos, ekey)
            yp, ykey = _expand(log, ypos, sy, L, log.sel_level[y])
            earlier = _wth_before(comp, ykey, yp, w, n)
        has = earlier >= 0
        gap = np.where(has, log.cycle[yp] - log.cycle[np.where(has, earlier, 0)], 0)
        bad_mask = has & (gap < r.latency)
        bad = yp[bad_mask]
        bad_earlier = earlier[bad_mask]
        # a multi-node Y may fail in several nodes: report the first, count once
        bad, first = np.unique(bad, return_index=True)
        bad_earlier = bad_earlier[first]
        text = _constraint_text(spec, r)
        lookup = dict(zip(bad[: out.max_examples].tolist(), bad_earlier[: out.max_examples].tolist()))

        def describe(p, lookup=lookup, text=text):
            e = lookup[p]
            got = int(log.cycle[p] - log.cycle[e])
            return log.violation(p, "timing", f"{text}, got {got}", earlier=e)

        out.add("timing", bad, describe)


def _wth_before(comp, ykey, ypos, w, n):
    """Position of the w-th most recent event in `comp` with key `ykey` before `ypos`, or -1."""
    target = ykey * (n + 1) + ypos
    idx = np.searchsorted(comp, target, side="left") - w
    ok = idx >= 0
    cand = comp[np.where(ok, idx, 0)]
    ok &= (cand // (n + 1)) == ykey
    return np.where(ok, cand % (n + 1), -1)


def _latest_sibling(log, L, xpos, ypos, cache, x):
    """For each Y, the latest earlier X under the same parent (level L-1) but in another L-node."""
    n = log.n
    key = ("sib", L)
    if (key, x) not in cache:
        parent = log.keys[L - 1][xpos]
        comp = _sorted_events(parent, xpos, n)
        spos = comp % (n + 1)
        spar = comp // (n + 1)
        snode = log.keys[L][spos]
        new_run = np.ones(len(comp), dtype=bool)
        new_run[1:] = (spar[1:] != spar[:-1]) | (snode[1:] != snode[:-1])
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(comp)), 0))
        cache[(key, x)] = (comp, spos, spar, snode, run_start)
    comp, spos, spar, snode, run_start = cache[(key, x)]
    ypar = log.keys[L - 1][ypos]
    ynode = log.keys[L][ypos]
    p = np.searchsorted(comp, ypar * (n + 1) + ypos, side="left") - 1
    ok = p >= 0
    p = np.where(ok, p, 0)
    ok &= spar[p] == ypar
    same = snode[p] == ynode
    q = np.where(same, run_start[p] - 1, p)      # skip back over X's in Y's own L-node
    ok &= q >= 0
    q = np.where(q >= 0, q, 0)
    ok &= spar[q] == ypar                          # (a different run in one parent: another node)
    return np.where(ok, spos[q], -1)


def _window_sibling_slow(log, L, xpos, ypos, w):
    """Sibling rows with a window (no standard has one yet): an exact per-command loop."""
    xs = set(xpos.tolist())
    events = np.union1d(xpos, ypos)
    history = {}       # parent key -> list of (position, L-node key) of earlier X's
    ys = set(ypos.tolist())
    out = {}
    parent_key, node_key = log.keys[L - 1], log.keys[L]
    for p in events.tolist():
        par, nd = int(parent_key[p]), int(node_key[p])
        if p in ys:
            others = [q for q, k in history.get(par, ()) if k != nd]
            out[p] = others[-w] if len(others) >= w else -1
        if p in xs:
            history.setdefault(par, []).append((p, nd))
    return np.array([out[p] for p in ypos.tolist()], dtype=np.int64)


def _check_bank_state(log, out):
    """Open-row tracking per bank; PIM designs with a second row buffer (row_buffer: pim) get a
    second, separate stream for it (refresh needs both closed)."""
    spec = log.spec
    buffers = ["normal"] + (["pim"] if any(c.row_buffer == "pim" for c in spec.commands) else [])
    for rb in buffers:
        cmds = [c for c in range(log.n_cmd) if log.kinds[c] != _OTHER
                and (spec.commands[c].row_buffer == rb or log.kinds[c] == _REFRESH)]
        _bank_state_stream(log, out, cmds, "" if rb == "normal" else " (PIM row buffer)")


def _bank_state_stream(log, out, cmds, label):
    spec = log.spec
    bank = len(spec.levels) - 1
    pos_parts, bank_parts = [], []
    for c in cmds:
        pos = log.positions[c]
        if len(pos) == 0:
            continue
        epos, ebank = _expand(log, pos, spec.commands[c].scope, bank, log.sel_level[c])
        pos_parts.append(epos)
        bank_parts.append(ebank)
    if not pos_parts:
        return
    epos = np.concatenate(pos_parts)
    ebank = np.concatenate(bank_parts)
    order = np.lexsort((epos, ebank))
    epos, ebank = epos[order], ebank[order]
    kind = log.kinds[log.command[epos]]
    row = log.row[epos]
    m = len(epos)
    ar = np.arange(m)
    setter = np.isin(kind, (_ACTIVATE, _PRECHARGE, _READ_PRE, _WRITE_PRE, _REFRESH))
    state_after = np.where(kind == _ACTIVATE, row, _CLOSED)
    last_setter = np.maximum.accumulate(np.where(setter, ar, -1))
    prev_setter = np.empty(m, dtype=np.int64)
    prev_setter[0] = -1
    prev_setter[1:] = last_setter[:-1]
    new_bank = np.ones(m, dtype=bool)
    new_bank[1:] = ebank[1:] != ebank[:-1]
    bank_start = np.maximum.accumulate(np.where(new_bank, ar, 0))
    has_prev = prev_setter >= bank_start
    ps = np.where(has_prev, prev_setter, 0)
    before = np.where(has_prev, state_after[ps], _CLOSED)
    opener = np.where(has_prev, epos[ps], -1)

    is_col = np.isin(kind, _ROW_USERS)
    new = epos >= log.first_new
    bad_act = new & (kind == _ACTIVATE) & (before != _CLOSED)
    bad_closed = new & is_col & (before == _CLOSED)
    bad_row = new & is_col & (before != _CLOSED) & (before != row)
    bad_ref = new & (kind == _REFRESH) & (before != _CLOSED)
    bank_names = _bank_namer(spec)

    for mask, what in ((bad_act, "activate on an open bank"),
                       (bad_closed, "access to a closed bank"),
                       (bad_row, "access to a row that is not open"),
                       (bad_ref, "refresh with an open bank")):
        sel = np.flatnonzero(mask)
        if len(sel) == 0:
            continue
        # one violation per command (a multi-bank command reports its first bad bank)
        cmds_bad, first = np.unique(epos[sel], return_index=True)
        sel = sel[first]
        lookup = dict(zip(cmds_bad[: out.max_examples].tolist(), sel[: out.max_examples].tolist()))

        def describe(p, lookup=lookup, what=what):
            e = lookup[p]
            b = bank_names(int(ebank[e])) + label
            if before[e] == _CLOSED:
                text = f"{what}: {b} is closed"
                return log.violation(p, "bank_state", text, earlier=int(opener[e]))
            text = f"{what}: {b} has row {int(before[e])} open"
            if kind[e] in _ROW_USERS:
                text += f", command is for row {int(row[e])}"
            return log.violation(p, "bank_state", text,
                                 earlier=int(opener[e]))

        out.add("bank_state", cmds_bad, describe)


def _bank_namer(spec):
    counts = [int(c) for c in spec.counts]

    def name(flat):
        parts = []
        for lv, c in zip(reversed(spec.levels), reversed(counts)):
            parts.append(f"{lv} {flat % c}")
            flat //= c
        return "bank [" + ", ".join(reversed(parts)) + "]"
    return name


def _check_command_bus(log, out):
    spec = log.spec
    n = log.n
    if n == 0:
        return
    bus_of = np.array([c.bus if spec.separate_row_column_bus else 0 for c in spec.commands], dtype=np.int64)
    span_of = np.array([c.bus_cycles for c in spec.commands], dtype=np.int64)
    group = log.addr[0] * 2 + bus_of[log.command]
    order = np.argsort(group, kind="stable")
    g = group[order]
    t = log.cycle[order]
    end = t + span_of[log.command[order]]
    big = int(max(end.max(), t.max()) - min(0, int(t.min()))) + 1
    shift = (g - g.min()) * big
    running = np.maximum.accumulate(end + shift)
    prior = np.empty(n, dtype=np.int64)
    prior[0] = np.iinfo(np.int64).min
    prior[1:] = running[:-1]
    same_group = np.zeros(n, dtype=bool)
    same_group[1:] = g[1:] == g[:-1]
    bad_sorted = same_group & (prior > t + shift)
    bad = order[bad_sorted]
    bad = bad[bad >= log.first_new]
    bus_name = "command bus" if not spec.separate_row_column_bus else None

    def describe(p):
        # the latest earlier command on the same bus still occupying it
        gp = group[p]
        q = p - 1
        while q >= 0 and not (group[q] == gp and log.cycle[q] + span_of[log.command[q]] > log.cycle[p]):
            q -= 1
        name = bus_name or f"{BUSES[int(bus_of[log.command[p]])]} command bus"
        busy_to = int(log.cycle[q] + span_of[log.command[q]])
        return log.violation(p, "command_bus",
                             f"{name} of channel {int(log.addr[0][p])} busy until cycle {busy_to}",
                             earlier=q)

    out.add("command_bus", bad, describe)


class _RefreshGaps:
    """The refresh rule, streamed: per refresh node the cycle of its last refresh, and the gaps
    longer than the limit as they are found. Every node of every channel the log names counts,
    from the log's first cycle to its last (a node with no refresh at all has one gap)."""

    def __init__(self, spec, slack, max_examples):
        self.spec = spec
        ref = spec.refresh
        self.R = ref.scope if ref is not None else None
        self.limit = int(slack * ref.interval) if ref is not None else 0
        self.max_examples = max(0, int(max_examples))
        self.start = self.stop = None
        self.last = {}            # node key -> cycle of its last refresh (or the start)
        self.channels = set()
        self.count = 0
        self.examples = []        # (node key, gap start, gap end), the smallest in that order

    def feed(self, log):
        if self.R is None:
            return
        new = np.arange(log.first_new, log.n)
        if len(new) == 0:
            return
        cycles = log.cycle[new]
        lo, hi = int(cycles.min()), int(cycles.max())
        self.start = lo if self.start is None else min(self.start, lo)
        self.stop = hi if self.stop is None else max(self.stop, hi)
        per = log.nodes_below(self.R)[0]
        for ch in np.unique(log.addr[0][new]).tolist():
            if ch not in self.channels:
                self.channels.add(ch)
                for key in range(ch * per, (ch + 1) * per):
                    self.last[key] = self.start
        t_parts, k_parts = [], []
        for c in range(log.n_cmd):
            if log.kinds[c] != _REFRESH or self.spec.commands[c].scope > self.R:
                continue
            pos = log.new_positions[c]
            if len(pos):
                q, k = _expand(log, pos, self.spec.commands[c].scope, self.R)
                t_parts.append(log.cycle[q])
                k_parts.append(k)
        if not t_parts:
            return
        t = np.concatenate(t_parts)
        k = np.concatenate(k_parts)
        order = np.lexsort((t, k))
        t, k = t[order], k[order]
        first = np.ones(len(k), dtype=bool)
        first[1:] = k[1:] != k[:-1]
        previous = np.empty(len(t), dtype=np.int64)
        previous[1:] = t[:-1]
        previous[first] = [self.last[key] for key in k[first].tolist()]
        bad = np.flatnonzero(t - previous > self.limit)
        self._found(k[bad], previous[bad], t[bad])
        last = np.flatnonzero(np.append(k[1:] != k[:-1], True))
        for key, cycle in zip(k[last].tolist(), t[last].tolist()):
            self.last[key] = cycle

    def _found(self, keys, starts, ends):
        self.count += len(keys)
        if len(keys) and self.max_examples:
            merged = self.examples + list(zip(keys.tolist(), starts.tolist(), ends.tolist()))
            self.examples = heapq.nsmallest(self.max_examples, merged)

    def finish(self):
        """(number of warnings, the first max_examples of them by node, then cycle)."""
        if self.R is None or self.stop is None:
            return 0, []
        keys = np.array(sorted(self.last), dtype=np.int64)
        ends = np.full(len(keys), self.stop, dtype=np.int64)
        starts = np.array([self.last[k] for k in keys.tolist()], dtype=np.int64)
        bad = np.flatnonzero(ends - starts > self.limit)
        self._found(keys[bad], starts[bad], ends[bad])
        counts = [int(x) for x in self.spec.counts]
        warnings = []
        for flat, gap_start, gap_end in self.examples:
            parts = []
            for L in range(self.R, -1, -1):
                parts.append(f"{self.spec.levels[L]}={flat % counts[L]}")
                flat //= counts[L]
            warnings.append(RefreshWarning(" ".join(reversed(parts)), gap_start, gap_end, self.limit))
        return self.count, warnings


# --- entry points ----------------------------------------------------------------------------

#: commands checked at a time: memory grows with this, never with the length of the log
CHUNK_SIZE = 1 << 18


class LogChecker:
    """Checks a command log fed in consecutive chunks, with the verdicts of checking it whole
    (docs/checker.md, "Streaming"): each chunk is checked together with the earlier commands its
    rules can still reach, carried from the chunks before. Memory is bounded by the chunk size
    and the organisation (a few commands per bank and command type), not by the log's length.

    `feed(columns)` each chunk in order, then `result()`."""

    def __init__(self, spec, max_examples=10, refresh=True, refresh_slack=9):
        if isinstance(refresh_slack, bool) or not (isinstance(refresh_slack, (int, float))
                                                    and math.isfinite(refresh_slack) and 1 <= refresh_slack <= 1e6):
            raise ValueError(f"refresh_slack must be a number of refresh intervals in 1..1e6, got {refresh_slack!r}")
        self.spec = spec
        self.max_examples = max(0, int(max_examples))
        self.out = _Collector(None, max_examples)
        self.refresh = _RefreshGaps(spec, refresh_slack, max_examples) if refresh else None
        self.n = 0
        self.previous = None          # (index, cycle, command) of the last row fed
        self.carry = None             # kept rows of the last chunk (with its carry) that may matter
        n_cmd = len(spec.commands)
        # earlier commands of a type a rule may look back at: as many as its deepest window
        self.depth = np.ones(max(n_cmd, 1), dtype=np.int64)
        for r in spec.constraints:
            self.depth[r.from_cmd] = max(self.depth[r.from_cmd], r.window)
        self.names = _log_columns(spec)

    def feed(self, chunk):
        missing = [c for c in self.names if c not in chunk]
        if missing:
            raise FileFormatError(f"command log: missing column(s) {', '.join(missing)} "
                                  f"(expected {', '.join(self.names)})")
        lengths = {c: len(chunk[c]) for c in self.names}
        if len(set(lengths.values())) > 1:
            raise FileFormatError(f"command log: columns differ in length: {lengths}")
        m = lengths["cycle"]
        if m == 0:
            return
        columns = {c: np.asarray(chunk[c]) for c in self.names}
        index = np.arange(self.n, self.n + m, dtype=np.int64)
        n_carry = 0
        if self.carry is not None:
            cols, gidx, keep_for_rules, bus_end, bus_top = self.carry
            t_min = int(np.min(columns["cycle"]))
            sel = keep_for_rules | bus_top | (bus_end > t_min)
            n_carry = int(np.count_nonzero(sel))
            columns = {c: np.concatenate([cols[c][sel].astype(columns[c].dtype, copy=False), columns[c]])
                       for c in self.names}
            index = np.concatenate([gidx[sel], index])
        log = _Log(self.spec, columns, first_new=n_carry, global_index=index)
        self.out.log = log
        log.validate_addresses(self.out)
        _check_order(log, self.out, self.previous)
        _check_timing(log, self.out)
        _check_bank_state(log, self.out)
        _check_command_bus(log, self.out)
        if self.refresh is not None:
            self.refresh.feed(log)
        self.out.examples = self.out.first()
        self.previous = (int(index[-1]), int(columns["cycle"][-1]), int(columns["command"][-1]))
        self.carry = self._carry(log)
        self.n += m

    def _carry(self, log):
        """The kept rows of this chunk a later chunk's rules may reach, with what decides it:
        per command type and bank, its last `depth` commands (timing rows and bank state); per
        command bus the command that occupies it longest, and every command still occupying it
        at the next chunk's first cycle (decided then, from `bus_end`)."""
        spec = log.spec
        n = log.n
        keep = np.zeros(n, dtype=bool)
        bank = len(spec.levels) - 1
        for c, pos in log.positions.items():
            if len(pos) == 0:
                continue
            epos, ebank = _expand(log, pos, spec.commands[c].scope, bank, log.sel_level[c])
            order = np.lexsort((epos, ebank))
            epos, ebank = epos[order], ebank[order]
            # rank from the end within each bank: keep the last depth[c]
            last_of_bank = np.append(ebank[1:] != ebank[:-1], True)
            end_index = np.minimum.accumulate(np.where(last_of_bank, np.arange(len(ebank)), len(ebank))[::-1])[::-1]
            keep[epos[end_index - np.arange(len(ebank)) < self.depth[c]]] = True
        bus_of = np.array([c.bus if spec.separate_row_column_bus else 0 for c in spec.commands], dtype=np.int64)
        span_of = np.array([c.bus_cycles for c in spec.commands], dtype=np.int64)
        end = log.cycle + span_of[log.command] if n else np.zeros(0, np.int64)
        group = log.addr[0] * 2 + bus_of[log.command] if n else np.zeros(0, np.int64)
        top = np.zeros(n, dtype=bool)
        if n:
            order = np.lexsort((end, group))
            last_of_group = np.append(group[order][1:] != group[order][:-1], True)
            top[order[last_of_group]] = True
        cols = {"cycle": log.cycle, "command": log.command, "row": log.row, "column": log.column}
        cols.update({lv: a for lv, a in zip(log.levels, log.addr)})
        return cols, log.global_index[log.orig], keep, end, top

    def result(self):
        n_warn, warnings = self.refresh.finish() if self.refresh is not None else (0, [])
        return CheckResult(
            n_commands=self.n,
            n_violations=sum(self.out.counts.values()),
            violations=self.out.first(),
            violations_by_rule=dict(self.out.counts),
            n_warnings=n_warn,
            warnings=warnings,
        )


def check_command_log(spec: MemorySpec, log: Dict[str, np.ndarray], max_examples: int = 10,
                      refresh: bool = True, refresh_slack: float = 9, progress=None,
                      chunk_size: int = CHUNK_SIZE) -> CheckResult:
    """Check every command of `log` against `spec`; see the module docstring for the rules.

    The log is checked `chunk_size` commands at a time (LogChecker), with the verdicts of
    checking it whole. `progress(done, total)` is called after each chunk with the commands
    checked so far."""
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    names = _log_columns(spec)
    total = _log_length(spec, log)
    checker = LogChecker(spec, max_examples, refresh, refresh_slack)
    for start in range(0, total, int(chunk_size)):
        checker.feed({c: log[c][start:start + int(chunk_size)] for c in names})
        if progress is not None:
            progress(checker.n, total)
    return checker.result()


def _log_columns(spec):
    """The columns a command log of `spec` has."""
    return ["cycle", "command", *spec.levels, "row", "column"]


def _log_length(spec, log):
    """The number of commands in `log`, after checking it has every column, all of one length."""
    names = _log_columns(spec)
    missing = [c for c in names if c not in log]
    if missing:
        raise FileFormatError(f"command log: missing column(s) {', '.join(missing)} "
                              f"(expected {', '.join(names)})")
    lengths = {c: len(log[c]) for c in names}
    if len(set(lengths.values())) > 1:
        raise FileFormatError(f"command log: columns differ in length: {lengths}")
    return lengths["cycle"]


def _need(d, path, kind=None):
    node = d
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise FileFormatError(f"resolved config: missing {path!r}")
        node = node[part]
    if kind is not None and not isinstance(node, kind):
        raise FileFormatError(f"resolved config: {path!r} should be a {kind.__name__}, "
                              f"got {type(node).__name__}")
    return node


def spec_from_resolved(d: dict) -> MemorySpec:
    """A MemorySpec from the fully resolved config (`MemorySpec.to_dict()`, every latency in
    cycles), as stored in a stats file. A replay config that nests it under `memory:` works too."""
    if isinstance(d, dict) and "organization" not in d and isinstance(d.get("memory"), dict):
        d = d["memory"]
    if not isinstance(d, dict):
        raise FileFormatError("resolved config: expected a mapping")
    try:
        org = _need(d, "organization", dict)
        level_items = _need(d, "organization.levels", list)
        levels = [str(item["name"]) for item in level_items]
        counts = [int(item["count"]) for item in level_items]
        timing = dict(_need(d, "timing", dict))
        tck = float(timing.pop("tCK"))
        commands = []
        for name, c in _need(d, "commands", dict).items():
            commands.append(Command(str(name), str(c["kind"]), levels.index(c["scope"]),
                                    BUSES.index(c.get("bus", "row")), int(c.get("bus_cycles", 1)),
                                    str(c.get("banks", "all")), str(c.get("row_buffer", "normal")),
                                    str(c.get("unit", "")), str(c.get("buffer", ""))))
        names = [c.name for c in commands]
        constraints = []
        for r in _need(d, "constraints", list):
            constraints.append(Constraint(levels.index(r["level"]), names.index(r["from"]),
                                          names.index(r["to"]), int(r["latency"]),
                                          int(r.get("window", 1)), bool(r.get("sibling", False)), ""))
        ref = d.get("refresh")
        refresh = None if ref is None else Refresh(names.index(ref["command"]), levels.index(ref["scope"]),
                                                   int(ref["interval"]))
        controller_d = dict(d.get("controller") or {})
        controller = Controller(**controller_d) if controller_d else None
        mode = controller_d.get("refresh", "all_bank")
        data_bus = org.get("data_bus", levels[0])
        return MemorySpec(
            name=str(d.get("name", "")), standard=str(d.get("standard", "")),
            description=str(d.get("description", "")), source=str(d.get("source", "")),
            levels=levels, counts=counts, rows=int(_need(d, "organization.rows")),
            columns=int(_need(d, "organization.columns")),
            access_bytes=int(org.get("access_bytes", 0)),
            request_bytes=int(org.get("request_bytes", org.get("access_bytes", 0))),
            data_bus_level=levels.index(data_bus), tck_ns=tck,
            timing={k: int(v) for k, v in timing.items()},
            commands=commands, constraints=constraints, refresh=refresh,
            refresh_options={mode: refresh} if refresh is not None else {},
            separate_row_column_bus=bool((d.get("command_bus") or {}).get("separate_row_column", False)),
            read_latency=int(d.get("read_latency", 0)), write_latency=int(d.get("write_latency", 0)),
            power={k: float(v) for k, v in (d.get("power") or {}).items()},
            controller=controller,
            address_mapping=[(str(f), int(b)) for f, b in d.get("address_mapping", [])],
            offset_bits=int(d.get("offset_bits", 0)), raw=d,
            offer_rate=int((d.get("frontend") or {}).get("offer_rate", 0)),
        )
    except FileFormatError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise FileFormatError(f"resolved config: cannot rebuild the memory spec ({type(exc).__name__}: "
                              f"{exc})") from None


def check_stats_file(path, max_examples: int = 10, refresh: bool = True,
                     refresh_slack: float = 9, progress=None, chunk_size: int = CHUNK_SIZE) -> CheckResult:
    """Check the `command_log` of a stats file against the config stored in the same file, read
    and checked `chunk_size` commands at a time (bounded memory for any length); `progress`
    as for check_command_log.

    A kernel replay made with --command-log whose kernels were all modelled (no PIM commands)
    has an empty log: 0 commands checked, ok."""
    from .stats import open_stats
    from .stats.errors import MissingTableError

    with open_stats(path) as sf:
        if "command_log" not in sf.tables:
            if "serve_summary" in sf.tables:
                raise NoCommandLogError(f"{path} is a served stream (pimdram serve): it has no command log; "
                                        "check a replay of one of its steps instead (pimdram gen, then replay "
                                        "--command-log)")
            raise NoCommandLogError(f"{path} has no command log; replay with --command-log to record one")
        spec = spec_from_resolved(sf.config)
        names = sf.command_names
        if names != spec.command_names:
            raise FileFormatError(f"{path}: command-names {names} differ from the config's commands "
                                  f"{spec.command_names}")
        checker = LogChecker(spec, max_examples, refresh, refresh_slack)
        try:
            total = sf.nrows("command_log")
            for chunk in sf.iter_chunks("command_log", chunk_rows=int(chunk_size)):
                checker.feed(chunk)
                if progress is not None:
                    progress(checker.n, total)
        except MissingTableError as exc:
            raise FileFormatError(f"{path}: command log incomplete ({exc})") from None
    return checker.result()
