"""Shared machinery of the device-timing suites (tests/test_timing_*.py) and the controller and
throughput suites: a probe around the engine, a plain reference reading of the constraint
table, the cases derived from every constraint row of a preset, and address encoding.

The reference (`reference_ready`) reads docs/memory-configs.md, not the engine: a row at level L
relates two commands when their nodes coincide at L (a command whose scope is above L counts as
being in every node under it); a sibling row relates different nodes of L under one parent; a
window row bounds the next `to` by the w-th most recent `from` at the node; a command holds its
bus (one shared bus unless row and column buses are separate) for `bus_cycles`.
"""
import functools
import itertools
from dataclasses import dataclass
from typing import List, Tuple


from pimdram._engine import Engine
from pimdram.config.memory import MemorySpec, load_memory
from pimdram.replay import engine_params

BASE_CYCLE = 10 ** 6      # setup starts here: far from cycle 0 and from every bound
COLUMN_KINDS = ("read", "write", "read_precharge", "write_precharge")


# --- nodes are paths: indices from the level below channel down to the node's level ----------

def bank_paths_under(spec: MemorySpec, prefix=()):
    """Every bank path under the node `prefix`, bank groups (the level above bank) varying
    fastest, so that consecutive banks sit in different groups where there are several."""
    inner = [range(c) for c in spec.counts[len(prefix) + 1:]]
    if not inner:
        return [tuple(prefix)]
    combos = itertools.product(*inner[::-1])          # the last level (bank) varies slowest
    return [tuple(prefix) + tuple(reversed(c)) for c in combos]


def nodes_at(spec: MemorySpec, level, under=()):
    """Paths of every node at `level` under the node `under`."""
    ranges = [range(c) for c in spec.counts[len(under) + 1: level + 1]]
    return [tuple(under) + c for c in itertools.product(*ranges)]


def relates(spec: MemorySpec, row, a, b):
    """Whether constraint `row` links a `from` at node path `a` to a `to` at node path `b`."""
    L = row.level
    la, lb = len(a), len(b)
    if not row.sibling:
        k = min(L, la, lb)
        return a[:k] == b[:k]
    if la < L:
        raise NotImplementedError("a sibling row whose `from` command is above the row's level")
    k = min(L - 1, lb)
    if a[:k] != b[:k]:
        return False
    if lb >= L:
        return b[L - 1] != a[L - 1]
    return spec.counts[L] > 1


@dataclass
class Issue:
    cmd: int
    path: Tuple[int, ...]
    cycle: int


def reference_ready(spec: MemorySpec, history: List[Issue], cmd, path, skip_rows=()):
    """Earliest legal cycle of `cmd` at `path` after `history` (one channel), by the spec alone."""
    ready = 0
    for i, r in enumerate(spec.constraints):
        if r.to_cmd != cmd or i in skip_rows:
            continue
        froms = [h for h in history if h.cmd == r.from_cmd]
        if not froms:
            continue
        if r.window <= 1:
            for h in froms:
                if relates(spec, r, h.path, path):
                    ready = max(ready, h.cycle + r.latency)
            continue
        if r.sibling:
            raise NotImplementedError("sibling window rows")
        window_nodes = [path[: r.level]] if len(path) >= r.level else nodes_at(spec, r.level, path)
        for node in window_nodes:
            times = sorted((h.cycle for h in froms if relates(spec, r, h.path, node)), reverse=True)
            if len(times) >= r.window:
                ready = max(ready, times[r.window - 1] + r.latency)
    bus = spec.commands[cmd].bus
    for h in history:
        if not spec.separate_row_column_bus or spec.commands[h.cmd].bus == bus:
            ready = max(ready, h.cycle + spec.commands[h.cmd].bus_cycles)
    return ready


class Probe:
    """One engine driven through its timing probes, with the same history kept for the reference."""

    def __init__(self, spec: MemorySpec, channel=None, engine_spec=None):
        self.spec = spec
        # engine_spec: build the engine from another spec (a planted bug) while the reference
        # keeps reading `spec`
        self.engine = Engine(engine_params(engine_spec or spec))
        self.channel = spec.n_channels - 1 if channel is None else channel
        self.history: List[Issue] = []

    def cmd(self, name):
        return self.spec.command_index(name) if isinstance(name, str) else name

    def ready(self, cmd, path, channel=None):
        ch = self.channel if channel is None else channel
        return self.engine.probe_ready(ch, self.cmd(cmd), self.engine.node_id(path))

    def expected(self, cmd, path, skip_rows=()):
        return reference_ready(self.spec, self.history, self.cmd(cmd), tuple(path), skip_rows)

    def issue(self, cmd, path, cycle, row=0):
        c = self.cmd(cmd)
        self.engine.probe_issue(self.channel, c, self.engine.node_id(path), cycle, row)
        self.history.append(Issue(c, tuple(path), cycle))
        return cycle

    def issue_when_ready(self, cmd, path, not_before=0, row=0):
        return self.issue(cmd, path, max(self.ready(cmd, path), not_before), row)

    def open(self, *banks):
        """Activate `banks` one setup gap apart from BASE_CYCLE on (or after the last issue);
        returns the next cycle at which nothing of the setup binds any more."""
        gap = setup_gap(self.spec)
        t = self.history[-1].cycle + gap if self.history else BASE_CYCLE
        for k, bank in enumerate(banks):
            self.issue(bank_command(self.spec, "activate"), bank, t, row=k + 1)
            t += gap
        return t


# --- presets and test parameters ----------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def preset(name):
    """A resolved preset, loaded once per test session (treat it as read-only)."""
    return load_memory(name)


def row_params(names):
    """(preset, row index) for every constraint row of the presets, for pytest.mark.parametrize."""
    import pytest
    return [pytest.param(n, i, id=f"{n}-{row_id(preset(n), i)}")
            for n in names for i in range(len(preset(n).constraints))]


def window_params(names):
    import pytest
    return [pytest.param(n, i, id=f"{n}-{row_id(preset(n), i)}")
            for n in names for i, r in enumerate(preset(n).constraints) if r.window > 1]


def check_every_row(name, i):
    """The body of each suite's per-row test."""
    spec = preset(name)
    check_row(spec, i)
    if spec.constraints[i].window > 1:
        assert check_window_row(spec, i) > 0, "no node has enough banks to fill the window"


# --- cases derived from the constraint table ---------------------------------------------------

def setup_gap(spec: MemorySpec):
    """More cycles than any latency or bus occupancy of the preset: a setup command this far in
    the past no longer bounds anything."""
    return max(r.latency for r in spec.constraints) + max(c.bus_cycles for c in spec.commands) + 16


@dataclass
class RowCase:
    row: int                  # index into spec.constraints
    a: Tuple[int, ...]        # node of the `from` command
    b: Tuple[int, ...]        # node of the `to` command
    related: bool             # the row links the two (by construction, checked against relates())
    other_channel: bool = False   # `to` probed in another channel than `from`
    note: str = ""

    def describe(self, spec):
        r = spec.constraints[self.row]
        names = spec.command_names
        where = "other channel" if self.other_channel else f"{self.a} -> {self.b}"
        return f"{names[r.from_cmd]}->{names[r.to_cmd]} @{spec.levels[r.level]} ({where}, {self.note})"


def row_id(spec: MemorySpec, i):
    r = spec.constraints[i]
    names = spec.command_names
    tags = (["sibling"] if r.sibling else []) + ([f"window{r.window}"] if r.window > 1 else [])
    return f"{i}:{names[r.from_cmd]}->{names[r.to_cmd]}@{spec.levels[r.level]}" + "".join("," + t for t in tags)


def row_cases(spec: MemorySpec, i):
    """Node pairs for row `i`: pairs that coincide at the row's level and split at each level
    below it (or, for sibling rows, differ at it), plus pairs the row must not reach."""
    r = spec.constraints[i]
    bank = spec.bank_level
    la = spec.commands[r.from_cmd].scope
    lb = spec.commands[r.to_cmd].scope
    L = r.level
    zero = (0,) * bank
    cases = []

    def differ_at(level):          # a bank path that first differs from `zero` at `level`
        p = list(zero)
        p[level - 1] = 1
        return tuple(p)

    def add(a_bank, b_bank, note):
        a, b = a_bank[:la], b_bank[:lb]
        rel = relates(spec, r, a, b)
        if any(c.a == a and c.b == b for c in cases):
            return
        cases.append(RowCase(i, a, b, rel, note=note))

    if not r.sibling:
        for d in range(L, bank + 1):             # coincide down to level d, split just below it
            if d == bank:
                add(zero, zero, "same bank")
            elif spec.counts[d + 1] > 1:
                add(zero, differ_at(d + 1), f"split at {spec.levels[d + 1]}")
        if L >= 1 and spec.counts[L] > 1:
            add(zero, differ_at(L), f"other {spec.levels[L]}")
    else:
        if spec.counts[L] > 1:
            add(zero, differ_at(L), f"sibling {spec.levels[L]}")
            for d in range(L + 1, bank + 1):
                if spec.counts[d] > 1:
                    p = list(differ_at(L))
                    p[d - 1] = 1
                    add(zero, tuple(p), f"sibling {spec.levels[L]}, other {spec.levels[d]}")
        add(zero, zero, f"same {spec.levels[L]}")
    if spec.n_channels > 1:
        cases.append(RowCase(i, zero[:la], zero[:lb], False, other_channel=True, note="other channel"))
    return cases


def binding_latency(spec: MemorySpec, case: RowCase):
    """The bound a lone `from` at case.a puts on the `to` at case.b: the largest latency of any
    non-window row between the two commands that relates the nodes, and the bus."""
    r = spec.constraints[case.row]
    best = 0
    for other in spec.constraints:
        if (other.from_cmd, other.to_cmd) == (r.from_cmd, r.to_cmd) and other.window <= 1 \
                and relates(spec, other, case.a, case.b):
            best = max(best, other.latency)
    f, t = spec.commands[r.from_cmd], spec.commands[r.to_cmd]
    if not spec.separate_row_column_bus or f.bus == t.bus:
        best = max(best, f.bus_cycles)
    return best


def banks_to_open(spec: MemorySpec, case: RowCase):
    """Banks the setup opens: the `from` node when the command needs an open row, and the `to`
    node when it does and the `from` command does not open it itself."""
    r = spec.constraints[case.row]
    f, t = spec.commands[r.from_cmd], spec.commands[r.to_cmd]
    bank = spec.bank_level
    out = []
    if len(case.a) == bank and f.kind in COLUMN_KINDS + ("precharge",):
        out.append(case.a)
    if len(case.b) == bank and t.kind in COLUMN_KINDS + ("precharge",) and case.b not in out \
            and not (case.b == case.a and f.kind == "activate") and not case.other_channel:
        out.append(case.b)
    return out


def bank_command(spec: MemorySpec, kind):
    """The bank-scope command of a kind (the one the controller uses for ACT, RD, ...)."""
    return next(i for i, c in enumerate(spec.commands) if c.kind == kind and c.scope == spec.bank_level)


def run_row_case(spec: MemorySpec, case: RowCase, engine_spec=None):
    """Put the banks in the state the commands need, issue `from` at t and probe `to`.
    Returns (t, engine ready cycle, reference ready cycle, the bound of the row alone)."""
    p = Probe(spec, engine_spec=engine_spec)
    gap = setup_gap(spec)
    t = BASE_CYCLE
    for row_n, bank in enumerate(banks_to_open(spec, case)):
        p.issue(bank_command(spec, "activate"), bank, t, row=row_n + 1)
        t += gap
    r = spec.constraints[case.row]
    ready_from = p.ready(r.from_cmd, case.a)
    assert ready_from <= t, f"setup leaves the `from` command unready until {ready_from} > {t}"
    p.issue(r.from_cmd, case.a, t, row=7)
    if case.other_channel:
        other = 0 if p.channel != 0 else 1
        got = p.ready(r.to_cmd, case.b, channel=other)
        expected = 0
    else:
        got = p.ready(r.to_cmd, case.b)
        expected = p.expected(r.to_cmd, case.b)
    return t, got, expected, t + r.latency


def check_row(spec: MemorySpec, i, engine_spec=None):
    """All cases of row i; returns the number of cases checked exactly against the row."""
    r = spec.constraints[i]
    exact = 0
    for case in row_cases(spec, i):
        what = case.describe(spec)
        if r.window > 1:
            if case.related:
                continue          # a lone `from` does not fill a window: see check_window_row
        t, got, expected, bound = run_row_case(spec, case, engine_spec)
        assert got == expected, f"{what}: engine ready at {got}, the constraint table says {expected} (from at {t})"
        if case.related and r.window <= 1:
            assert got >= bound, f"{what}: ready at {got} < {t} + {r.latency}"
            if binding_latency(spec, case) <= r.latency:
                assert got - 1 < bound and got == bound, \
                    f"{what}: binding row: ready at {got}, expected exactly {t} + {r.latency}"
                exact += 1
    return exact


def check_window_row(spec: MemorySpec, i, n_extra=None, engine_spec=None):
    """Issue `window` ACT-like commands at the node, each as early as allowed, and check the next
    one is ready exactly at first + latency (or later if a non-window row binds harder); then keep
    issuing and check the window slides."""
    r = spec.constraints[i]
    assert r.window > 1
    la = spec.commands[r.from_cmd].scope
    lb = spec.commands[r.to_cmd].scope
    node = (0,) * r.level
    targets = [b for b in bank_paths_under(spec, node)]
    if len(targets) < r.window + 1:
        return 0
    p = Probe(spec, engine_spec=engine_spec)
    name_from, name_to = r.from_cmd, r.to_cmd
    times = []
    n_total = r.window + (n_extra if n_extra is not None else 2 * r.window)
    checked = 0
    for k in range(n_total):
        a = targets[k % len(targets)][:la]
        b = targets[(k + 1) % len(targets)][:lb]
        # the k-th `from`, as early as it may go
        t_k = max(p.ready(name_from, a), BASE_CYCLE)
        assert t_k == max(p.expected(name_from, a), BASE_CYCLE)
        p.issue(name_from, a, t_k, row=k + 1)
        times.append(t_k)
        got = p.ready(name_to, b)
        without = p.expected(name_to, b, skip_rows=(i,))
        if len(times) >= r.window:
            want = max(times[-r.window] + r.latency, without)
            assert got == want, (f"{row_id(spec, i)}: after {len(times)} issues at {times}, "
                                 f"ready at {got}, expected max({times[-r.window]} + {r.latency}, {without})")
            checked += 1
        else:
            assert got == without, (f"{row_id(spec, i)}: window not full after {times}: "
                                    f"ready at {got}, the other rows say {without}")
    return checked


# --- addresses ---------------------------------------------------------------------------------

def encode_address(spec: MemorySpec, channel=0, bank=None, row=0, column=0):
    """The byte address of an access: `bank` is a full bank path (levels below channel)."""
    bank = tuple(bank) if bank is not None else (0,) * spec.bank_level
    values = {"channel": channel, "row": row, "column": column}
    for lv, v in zip(spec.levels[1:], bank):
        values[lv] = v
    addr = 0
    shift = spec.offset_bits
    used = {}
    for name, bits in reversed(spec.address_mapping):        # LSB first
        v = values.get(name, 0) >> used.get(name, 0)
        addr |= (v & ((1 << bits) - 1)) << shift
        used[name] = used.get(name, 0) + bits
        shift += bits
    return addr


def bank_index(spec: MemorySpec, path):
    """The engine's bank index (within a channel) of a bank path."""
    b = 0
    for c, v in zip(spec.counts[1:], path):
        b = b * c + v
    return b


def node_paths(engine: Engine, spec: MemorySpec):
    """For every engine node id of a channel: its path."""
    levels, index = engine.node_levels()
    out = []
    for lv, ix in zip(levels, index):
        path = []
        for m in range(lv, 0, -1):
            path.append(int(ix) % spec.counts[m])
            ix = int(ix) // spec.counts[m]
        out.append(tuple(reversed(path)))
    return out
