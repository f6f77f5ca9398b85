"""Reads a memory-standard YAML, validates it, and resolves it to integer cycles and plain tables.

The result, a MemorySpec, is everything the engine and the checker need: the organisation as a
tree of levels, commands with their scope and bus, the timing-constraint rows in cycles, refresh,
controller policy and address mapping. ns -> cycles conversion happens here and nowhere else.
"""
import collections.abc
import copy
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import yaml

from ..errors import ConfigError
from . import expr
from .files import SafeDumper, find_config, load_yaml, relative_to
from .section import INT32_MAX, Section

# Command kinds the engine implements once; a standard's commands each name one of these.
COMMAND_KINDS = (
    "activate",          # open a row in every bank of its scope
    "precharge",         # close the open row in every bank of its scope
    "read",              # column read
    "write",             # column write
    "read_precharge",    # column read with auto-precharge
    "write_precharge",   # column write with auto-precharge
    "refresh",           # refresh every bank of its scope (all must be closed)
    # processing in memory (PIM designs, configs/pim; see docs/pim-configs.md)
    "mac",               # multiply-accumulate one column of every bank of its scope in the PIM units
    "buffer_write",      # write data into a PIM buffer (global / GEMV buffer) over the data bus
    "buffer_read",       # read results out of the PIM units or a buffer over the data bus
    "move",              # move data between PIM units and buffers inside the device (no data bus)
    "unit_op",           # an operation of a function unit (softmax, activation) with a latency
)
PIM_COMMAND_KINDS = COMMAND_KINDS[7:]
# `banks:` of a command: every bank under its scope node, or one bank (chosen per issue) repeated in
# every node of a level under it: `same` is that bank in every bank group (AttAcc's MACSB); a level
# name is that bank in every node of the level (e.g. pseudo_channel: AttAcc's broadcast MACPB).
BANK_SELECTIONS = ("all", "same")
SAME_BANK_LEVEL = "bank_group"      # the level `banks: same` repeats over
ROW_BUFFERS = ("normal", "pim")
BUSES = ("row", "column")
SCHEDULERS = ("frfcfs", "fcfs", "round_robin", "first_ready")   # same order as the engine's codes
ROW_POLICIES = ("open", "closed")
REFRESH_MODES = ("all_bank", "per_bank", "none")

# DRAMsim3-style two-letter field names and the level names they stand for.
FIELD_ALIASES = {
    "ch": "channel", "pc": "pseudo_channel", "ra": "rank", "si": "sid",
    "bg": "bank_group", "ba": "bank", "ro": "row", "co": "column",
}

#: the longest timing a standard may give, in cycles (2**28: 0.27 s at 1 GHz, beyond any DRAM
#: timing: a refresh window is ~10**7 cycles). The engine adds timings to 64-bit cycle counts, and
#: waits out a long timing in steps of 63 cycles, so a longer one would only make a run crawl.
MAX_CYCLES = 2**28
#: organisation limits (the engine's node and bank indices are 32-bit; its tables are per bank)
MAX_LEVEL_COUNT = 2**16
MAX_BANKS = 2**24               # banks of all channels together
#: requests the controllers of all channels may hold at once (each a slot of the engine)
MAX_REQUEST_SLOTS = 2**24
MAX_WINDOW = 64                 # a window row's depth (tFAW: 4)

CONTROLLER_DEFAULTS = {
    "read_queue": 32,
    "write_queue": 32,
    "bank_queue": 0,
    "scheduler": "frfcfs",
    "row_hit_cap": 0,
    "row_policy": "open",
    "write_high_watermark": 0.8,
    "write_low_watermark": 0.2,
    "refresh": "all_bank",
    "refresh_stagger": True,
    "leave_queue_at": "column",
}
QUEUE_RELEASES = ("column", "activate")
FRONTEND_DEFAULTS = {
    "offer_rate": 0,
}


@dataclass
class Command:
    name: str
    kind: str
    scope: int          # level index of the node the command addresses
    bus: int            # 0 = row command bus, 1 = column command bus
    bus_cycles: int     # cycles the command occupies its bus
    banks: str = "all"  # banks under the scope node it acts on: all, same, or a level name (BANK_SELECTIONS)
    row_buffer: str = "normal"   # the row buffer it opens, uses or closes (pim: NeuPIMs' second one)
    unit: str = ""      # PIM unit it occupies (mac, unit_op)
    buffer: str = ""    # PIM buffer it writes, reads or moves to


@dataclass
class Constraint:
    level: int
    from_cmd: int
    to_cmd: int
    latency: int
    window: int = 1     # >1: the `window`-th most recent `from` bounds the next `to` (tFAW: 4)
    sibling: bool = False   # applies between different nodes of `level` under one parent
    text: str = ""      # the expression it came from, for messages


@dataclass
class Refresh:
    command: int
    scope: int          # level index of the refreshed node (rank: all-bank; bank: per-bank)
    interval: int       # cycles between two refreshes of the same node


@dataclass
class Controller:
    read_queue: int
    write_queue: int
    bank_queue: int
    scheduler: str
    row_hit_cap: int
    row_policy: str
    write_high_watermark: float
    write_low_watermark: float
    refresh: str
    refresh_stagger: bool = True    # refresh nodes fall due spread over the interval (False: all at once)
    leave_queue_at: str = "column"  # a request leaves its read/write queue at its column command or, Ramulator's
                                    # active buffer, when its row is activated


@dataclass
class MemorySpec:
    name: str
    standard: str
    description: str
    source: str
    levels: List[str]
    counts: List[int]
    rows: int
    columns: int
    access_bytes: int
    request_bytes: int
    data_bus_level: int
    tck_ns: float
    timing: Dict[str, int]
    commands: List[Command]
    constraints: List[Constraint]
    refresh: Optional[Refresh]
    refresh_options: Dict[str, Refresh]
    separate_row_column_bus: bool
    read_latency: int
    write_latency: int
    power: Dict[str, float]
    controller: Controller
    address_mapping: List[Tuple[str, int]]
    offset_bits: int
    raw: dict = field(default_factory=dict, repr=False)
    pim: Optional["PimSpec"] = None     # the PIM design's units, buffers and energies (configs/pim)
    offer_rate: int = 0     # requests the frontend offers per cycle (0: as many as the queues take)

    # --- derived views -------------------------------------------------------------------
    @property
    def n_channels(self):
        return self.counts[0]

    @property
    def bank_level(self):
        return len(self.levels) - 1

    @property
    def banks_per_channel(self):
        return int(np.prod(self.counts[1:]))

    @property
    def command_names(self):
        return [c.name for c in self.commands]

    def command_index(self, name):
        for i, c in enumerate(self.commands):
            if c.name == name:
                return i
        raise KeyError(name)

    def commands_of_kind(self, kind):
        return [i for i, c in enumerate(self.commands) if c.kind == kind]

    def selection_level(self, command):
        """The level in each of whose nodes (under its scope node) a selecting command acts on
        one bank, the same in each (`banks: same`: bank_group; `banks: LEVEL`: that level), or
        None for a command over every bank under its node."""
        return selection_level(command, self.levels)

    def selection_period(self, command):
        """Banks per node of the command's selection level (the choices of its bank), 0 for a
        command over every bank under its node."""
        level = self.selection_level(command)
        return 0 if level is None else int(np.prod(self.counts[level + 1:], dtype=np.int64))

    def banks_covered(self, command):
        """Banks one issue of `command` acts on: every bank under its scope node, or with a
        bank selection one bank in each node of the selection level there."""
        below = int(np.prod(self.counts[command.scope + 1:], dtype=np.int64))
        period = self.selection_period(command)
        return below // period if period else below

    @property
    def peak_bandwidth(self):
        """Bytes per second with every data bus streaming bursts back to back."""
        buses = int(np.prod(self.counts[: self.data_bus_level + 1]))
        return buses * self.access_bytes / (self.timing["nBL"] * self.tck_ns * 1e-9)

    @property
    def capacity_bytes(self):
        return self.n_channels * self.banks_per_channel * self.rows * self.columns * self.access_bytes

    def to_dict(self):
        """The fully resolved configuration (every timing in cycles) as plain data."""
        names = self.command_names
        return {
            "name": self.name,
            "standard": self.standard,
            "description": self.description,
            "source": self.source,
            "organization": {
                "levels": [{"name": n, "count": c} for n, c in zip(self.levels, self.counts)],
                "rows": self.rows,
                "columns": self.columns,
                "access_bytes": self.access_bytes,
                "request_bytes": self.request_bytes,
                "data_bus": self.levels[self.data_bus_level],
                "capacity_bytes": self.capacity_bytes,
                "peak_bandwidth_bytes_per_s": self.peak_bandwidth,
            },
            "timing": {"tCK": self.tck_ns, **self.timing},
            "read_latency": self.read_latency,
            "write_latency": self.write_latency,
            "commands": {c.name: _command_dict(c, self.levels) for c in self.commands},
            "command_bus": {"separate_row_column": self.separate_row_column_bus},
            "constraints": [
                {"level": self.levels[r.level], "from": names[r.from_cmd], "to": names[r.to_cmd],
                 "latency": r.latency, **({"window": r.window} if r.window > 1 else {}),
                 **({"sibling": True} if r.sibling else {})}
                for r in self.constraints
            ],
            "refresh": None if self.refresh is None else {
                "command": names[self.refresh.command], "scope": self.levels[self.refresh.scope],
                "interval": self.refresh.interval},
            "power": dict(self.power),
            "controller": dict(vars(self.controller)),
            "frontend": {"offer_rate": self.offer_rate},
            "address_mapping": [[f, b] for f, b in self.address_mapping],
            "offset_bits": self.offset_bits,
            **({"pim": self.pim.to_dict(self.levels)} if self.pim is not None else {}),
        }

    def to_yaml(self):
        return yaml.dump(self.to_dict(), Dumper=SafeDumper, sort_keys=False, default_flow_style=None, width=100)

    def constraint_table(self):
        """The constraint rows as a structured numpy array (for the engine and the checker)."""
        dt = np.dtype([("level", np.int32), ("from_cmd", np.int32), ("to_cmd", np.int32),
                       ("latency", np.int64), ("window", np.int32), ("sibling", np.int32)])
        return np.array([(r.level, r.from_cmd, r.to_cmd, r.latency, r.window, int(r.sibling))
                         for r in self.constraints], dtype=dt)


def selection_level(command, levels):
    """Level index a command's `banks:` selection repeats over, or None (see MemorySpec)."""
    if command.banks == "all":
        return None
    return levels.index(SAME_BANK_LEVEL if command.banks == "same" else command.banks)


def _command_dict(c, levels):
    d = {"kind": c.kind, "scope": levels[c.scope], "bus": BUSES[c.bus], "bus_cycles": c.bus_cycles}
    if c.banks != "all":
        d["banks"] = c.banks
    if c.row_buffer != "normal":
        d["row_buffer"] = c.row_buffer
    if c.unit:
        d["unit"] = c.unit
    if c.buffer:
        d["buffer"] = c.buffer
    return d


# --- loading -------------------------------------------------------------------------------

def check_overrides(overrides):
    """`overrides` as a dict of dotted keys: None or a mapping with text keys, else a ConfigError
    (a list or a string would fail deep inside, as an AttributeError)."""
    if overrides is None:
        return {}
    if not isinstance(overrides, collections.abc.Mapping):
        raise ConfigError(f"overrides: expected a mapping of dotted keys to values, e.g. "
                          f"{{'controller.read_queue': 64}}, got {type(overrides).__name__}")
    for key in overrides:
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"overrides: {key!r} is not a dotted key such as 'controller.read_queue'")
    return dict(overrides)


def load_memory(name_or_path, overrides=None, set_keys=None):
    """Find, read, override and resolve a memory standard (configs/dram or configs/compare) or a
    PIM design (configs/pim: a standard plus PIM commands and units, see config/pim.py).

    A file with `base: NAME` is composed onto that standard first; `options.NAME=CHOICE`
    overrides pick among its options, every other override applies to the composed config.
    `set_keys`: the overrides a user gave with `--set` (default: all of them), which errors
    name as such rather than blaming the file.

    A DRAMsim3 .ini or a Ramulator 2 YAML is imported (config/imports.py); what does not carry over
    is reported in one ConfigImportWarning."""
    from .imports import foreign_format, load_imported
    overrides = check_overrides(overrides) or None
    if foreign_format(name_or_path) is not None:
        return resolve_memory(load_imported(name_or_path, overrides), source=str(name_or_path),
                              overridden=set(overrides or {}) if set_keys is None else set(set_keys))
    path = find_config("dram", name_or_path, kinds=("dram", "compare", "pim"))
    raw, options, offered = _load_composed(path, overrides, set_keys)
    return resolve_memory(raw, source=str(path), options=options, option_choices=offered,
                          overridden=set(overrides or {}) if set_keys is None else set(set_keys))


def base_chain(name_or_path):
    """Names of the files a memory config is composed from, itself first and its standard last
    (e.g. papi-fc -> attacc-bank -> hbm3_5.2gbps); reads only the files' base: keys."""
    chain = []
    path = find_config("dram", name_or_path, kinds=("dram", "compare", "pim"))
    while True:
        chain.append(path.stem)
        base = load_yaml(path).get("base")
        if base is None:
            return chain
        if len(chain) > 8 or not isinstance(base, str):
            raise ConfigError(f"{path}: base: expected the name of a memory standard or PIM design (chain {' -> '.join(chain)})")
        path = find_config("dram", relative_to(path, base), kinds=("dram", "compare", "pim"))


def _load_composed(path, overrides, set_keys=None):
    """The raw config of `path` with any `base:` chain composed in, the option choices applied
    and the other overrides set. Returns (raw, options in effect, choices each option offers)."""
    from .pim import split_option_overrides
    choices, rest = split_option_overrides(overrides)
    set_keys = set(overrides or {}) if set_keys is None else set(set_keys)
    from_set = {k.split(".", 1)[1] for k in set_keys if k.startswith("options.")}
    raw, options, offered = _compose_chain(path, choices, [], from_set)
    for name in choices:
        if name not in options:
            where = f"--set options.{name}" if f"options.{name}" in set_keys else f"{path}: options.{name}"
            raise ConfigError(f"{where}: no such option (known: {', '.join(options) or 'none'})")
    return apply_overrides(raw, rest, source=path), options, offered


def _compose_chain(path, choices, seen, from_set=()):
    from .pim import compose
    raw = load_yaml(path)
    if "base" not in raw:
        if "options" in raw:
            raise ConfigError(f"{path}: options: only a file with a base: can have options")
        return raw, {}, {}
    base_name = raw.get("base")
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: base: expected the name of the memory standard or PIM design the file extends")
    if str(path) in seen or len(seen) > 8:
        raise ConfigError(f"{path}: base: circular chain of base files ({' -> '.join(seen + [str(path)])})")
    base_path = find_config("dram", relative_to(path, base_name), kinds=("dram", "compare", "pim"))
    base_raw, options, offered = _compose_chain(base_path, choices, seen + [str(path)], from_set)
    raw, own, own_offered = compose(raw, base_raw, str(path), choices, from_set)
    options.update(own)
    offered.update(own_offered)
    return raw, options, offered


def parse_set_options(items):
    """`--set KEY=VALUE` strings to a dict of dotted path -> YAML-parsed value (a key given twice
    is an error, as in a YAML file)."""
    from .files import load_yaml_text
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (e.g. controller.read_queue=64)")
        key, _, value = item.partition("=")
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: empty key")
        if any(not part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: empty part in the dotted key (e.g. controller.read_queue)")
        if key in out:
            raise ConfigError(f"--set {key}: given twice; give it once")
        try:
            out[key] = load_yaml_text(value, f"--set {key}")
        except ConfigError:
            out[key] = value
    return out


def apply_overrides(raw, overrides, source=""):
    """Set dotted paths in a copy of the raw config. Timing keys replace their t/n twin."""
    raw = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.split(".")
        node = raw
        for i, p in enumerate(parts[:-1]):
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: cannot set a key inside {'.'.join(parts[:i]) or 'the config'}, "
                                  f"which is not a mapping in {source}")
            node = node.setdefault(p, {})
        leaf = parts[-1]
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: cannot set a key inside {'.'.join(parts[:-1])}, which is not a "
                              f"mapping in {source}")
        if parts[0] == "timing" and len(parts) == 2 and leaf[:1] in "tn" and len(leaf) > 1:
            twin = ("n" if leaf[0] == "t" else "t") + leaf[1:]
            if twin != "tCK":
                node.pop(twin, None)
        node[leaf] = value
    return raw


def resolve_memory(raw, source="config", options=None, option_choices=None, overridden=()):
    """A MemorySpec from the raw data of a memory file (composed, overrides applied). Every value
    is checked where it is read; `overridden`, the dotted paths set with `--set`, makes an error
    about one of them say so."""
    root = Section(raw, source=source, overridden=overridden)
    name = root.require("name", str)
    standard = root.require("standard", str)
    description = root.get("description", "", str)
    root.get("sources")  # free-form citations, kept in raw
    base = root.get("base", None, str)   # the standard a derived file (PIM design, speed bin) extends

    levels, counts, org = _organization(root.section("organization", required=True))
    timing_sec = root.section("timing", required=True)
    tck, timing = _timings(timing_sec)

    rows = org["rows"]
    columns = org["columns"]
    access_bytes = org["access_bytes"]

    cmd_sec = root.section("commands", required=True)
    commands = []
    for cname in cmd_sec.keys():
        c = cmd_sec.section(cname)
        kind = c.choice("kind", COMMAND_KINDS)
        scope = c.choice("scope", levels)
        bus = c.choice("bus", BUSES)
        bus_cycles = c.number("bus_cycles", 1, positive=True, integer=True, maximum=MAX_LEVEL_COUNT)
        banks = c.choice("banks", BANK_SELECTIONS + tuple(levels[1:-1]), "all")
        if banks != "all":
            level = SAME_BANK_LEVEL if banks == "same" else banks
            if level not in levels or levels.index(scope) >= levels.index(level):
                what = "'same' (the same bank of every bank group)" if banks == "same" else \
                    f"{banks!r} (the same bank of every {banks})"
                raise c.error("banks", f"{what} needs a scope above {level}")
        row_buffer = c.choice("row_buffer", ROW_BUFFERS, "normal")
        unit = c.get("unit", "", str)
        buffer = c.get("buffer", "", str)
        c.get("source")
        c.done()
        if (unit or buffer or kind in PIM_COMMAND_KINDS or banks != "all" or row_buffer != "normal") and "pim" not in raw:
            raise c.error("kind" if kind in PIM_COMMAND_KINDS else "unit",
                          "PIM commands need a PIM design (a pim: section with its units, configs/pim)")
        commands.append(Command(str(cname), kind, levels.index(scope), BUSES.index(bus), bus_cycles,
                                banks, row_buffer, unit, buffer))
    cmd_sec.done()
    names = [c.name for c in commands]
    if not commands:
        raise cmd_sec.error("", "no commands defined")
    for kind in ("activate", "precharge", "read", "write"):
        if not any(c.kind == kind and c.scope == len(levels) - 1 for c in commands):
            raise root.error("commands", f"a bank-scope '{kind}' command is required")

    bus_sec = root.section("command_bus")
    separate = bus_sec.get("separate_row_column", False, bool)
    bus_sec.done()

    constraints = _constraints(root, levels, names, timing)

    refresh_options = _refresh(root.section("refresh"), levels, commands, timing)

    lat_sec = root.section("latency", required=True)
    read_latency = _int_expr(lat_sec, "read", timing)
    write_latency = _int_expr(lat_sec, "write", timing)
    lat_sec.done()

    pim = None
    if "pim" in raw:
        from .pim import resolve_pim
        pim = resolve_pim(root.section("pim"), name, base or "", levels, commands, timing,
                          dict(options or {}), dict(option_choices or {}))

    power = _power(root.section("power"))
    controller = _controller(root.section("controller"))
    ctl_sec = root.section("controller")
    frontend = root.section("frontend")
    offer_rate = frontend.number("offer_rate", FRONTEND_DEFAULTS["offer_rate"], integer=True)
    if offer_rate < 0:
        raise frontend.error("offer_rate", "must be 0 (no limit) or a positive number of requests per cycle")
    frontend.done()
    if controller.refresh == "none":
        refresh = None
    else:
        refresh = refresh_options.get(controller.refresh)
        if refresh is None:
            raise ctl_sec.error("refresh", f"'{controller.refresh}' refresh is not defined "
                                           f"under refresh: (defined: {', '.join(refresh_options) or 'none'})")
    if controller.row_policy == "closed" and not (
            any(c.kind == "read_precharge" for c in commands) and any(c.kind == "write_precharge" for c in commands)):
        raise ctl_sec.error("row_policy", "'closed' needs read_precharge and write_precharge commands")
    n_banks = int(np.prod(counts, dtype=object))
    slots = counts[0] * (controller.read_queue + controller.write_queue
                         + n_banks // counts[0] * controller.bank_queue)
    if slots > MAX_REQUEST_SLOTS:
        parts = {"read_queue": controller.read_queue, "write_queue": controller.write_queue,
                 "bank_queue": n_banks // counts[0] * controller.bank_queue}
        raise ctl_sec.error(max(parts, key=parts.get),
                            f"read_queue + write_queue + bank_queue x banks gives {slots} queue entries over "
                            f"{counts[0]} channels; at most {MAX_REQUEST_SLOTS} fit")

    request_bytes = org["request_bytes"] or access_bytes
    if request_bytes % access_bytes:
        raise root.section("organization").error(
            "request_bytes", f"{request_bytes} is not a multiple of access_bytes {access_bytes}")
    mapping, offset_bits = _address_mapping(root, levels, counts, rows, columns, access_bytes)
    root.done()

    data_bus = org["data_bus"] or levels[0]
    if data_bus not in levels:
        raise root.section("organization").error("data_bus", f"unknown level {data_bus!r}")

    return MemorySpec(
        name=name, standard=standard, description=description, source=str(source),
        levels=levels, counts=counts, rows=rows, columns=columns, access_bytes=access_bytes,
        request_bytes=request_bytes, data_bus_level=levels.index(data_bus),
        tck_ns=tck, timing=timing, commands=commands, constraints=constraints,
        refresh=refresh, refresh_options=refresh_options, separate_row_column_bus=separate,
        read_latency=read_latency, write_latency=write_latency, power=power,
        controller=controller, address_mapping=mapping, offset_bits=offset_bits, raw=raw, pim=pim,
        offer_rate=offer_rate,
    )


def _organization(org):
    lv = org.require("levels", list)
    levels, counts = [], []
    for i, item in enumerate(lv):
        s = org.child(item, f"levels[{i}]")
        n = s.require("name", str)
        c = s.number("count", positive=True, integer=True, maximum=MAX_LEVEL_COUNT)
        s.done()
        if n in levels or n in ("row", "column"):
            raise s.error("name", f"duplicate or reserved level name {n!r}")
        levels.append(n)
        counts.append(c)
    if len(levels) < 2 or levels[0] != "channel" or levels[-1] != "bank":
        raise org.error("levels", "must run from 'channel' (outermost) to 'bank' (innermost)")
    if len(levels) > 6:
        raise org.error("levels", "at most 6 levels are supported")
    banks = math.prod(counts)
    if banks > MAX_BANKS:
        raise org.error("levels", f"{' x '.join(map(str, counts))} = {banks} banks; at most {MAX_BANKS} are supported")
    out = {
        "rows": org.number("rows", positive=True, integer=True),
        "columns": org.number("columns", positive=True, integer=True),
        "access_bytes": org.number("access_bytes", positive=True, integer=True, maximum=1 << 20),
        "request_bytes": org.number("request_bytes", None, positive=True, integer=True, maximum=1 << 30),
        "data_bus": org.get("data_bus", None, str),
    }
    org.get("density")  # informative only (e.g. "8Gb"); capacity is derived
    org.done()
    return levels, counts, out


def _timings(sec):
    tck = sec.number("tCK", positive=True, maximum=1e6)
    raw = {k: sec.data[k] for k in sec.keys() if k != "tCK"}
    for k in raw:
        sec.get(k)
        if not (isinstance(k, str) and len(k) > 1 and k[0] in "tn"):
            raise sec.error(k, "timing names start with t (ns) or n (cycles)")
        twin = ("n" if k[0] == "t" else "t") + k[1:]
        if twin in raw and k[0] == "n":
            raise sec.error(k, f"given both as {k} and {twin}; keep one")
    sec.done()
    resolved = {}
    pending = dict(raw)
    # resolve in dependency order; n-names visible to expressions, t-names converted first
    for _ in range(len(pending) + 1):
        progressed = False
        for k in list(pending):
            v = pending[k]
            nname = "n" + k[1:]
            env = dict(resolved)
            env["tCK"] = tck
            try:
                deps = expr.names_in(v) if isinstance(v, str) else set()
            except ValueError as exc:
                raise sec.error(k, str(exc)) from None
            if deps - set(env):
                unknown = deps - set(env) - {("n" + d[1:]) for d in raw} - set(raw)
                if unknown:
                    raise sec.error(k, f"unknown name {sorted(unknown)[0]!r} in {v!r}")
                continue
            try:
                value = expr.evaluate(v, env) if isinstance(v, str) else v
            except (ValueError, ZeroDivisionError) as exc:
                raise sec.error(k, str(exc)) from None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise sec.error(k, f"expected a number or an expression, got {v!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise sec.error(k, f"must be a finite number, got {v!r}" + (f" (= {value})" if isinstance(v, str) else ""))
            if value < 0:
                raise sec.error(k, f"must not be negative, got {v!r}")
            if k[0] == "t":
                if value / tck > MAX_CYCLES:
                    raise sec.error(k, f"{v!r} is {value / tck:.3g} cycles of tCK {tck} ns; at most {MAX_CYCLES} "
                                       "cycles are supported")
                cycles = math.ceil(value / tck - 1e-9)
            else:
                if value != int(value):
                    raise sec.error(k, f"cycle counts are whole numbers, got {value!r}")
                if value > MAX_CYCLES:
                    raise sec.error(k, f"must be at most {MAX_CYCLES} cycles, got {v!r}")
                cycles = int(value)
            if cycles < 0:
                raise sec.error(k, f"must not be negative, got {v!r}")
            resolved[nname] = int(cycles)
            del pending[k]
            progressed = True
        if not pending:
            break
        if not progressed:
            k = sorted(pending)[0]
            raise sec.error(k, f"circular or unresolvable definition {pending[k]!r}")
    for required in ("nBL", "nCL", "nRCD", "nRP", "nRAS"):
        if required not in resolved:
            raise sec.error(required, "missing")
    if resolved["nBL"] < 1:
        raise sec.error("nBL", "a burst takes at least one cycle")
    return tck, resolved


def _int_expr(sec, key, timing):
    value = sec.require(key)
    try:
        out = expr.evaluate(value, timing) if isinstance(value, str) else value
    except (ValueError, ZeroDivisionError) as exc:
        raise sec.error(key, str(exc)) from None
    if isinstance(out, bool) or not isinstance(out, (int, float)) or not math.isfinite(out) or out != int(out) \
            or out < 0:
        raise sec.error(key, f"must resolve to a non-negative whole number of cycles, got {value!r}")
    if out > MAX_CYCLES:
        raise sec.error(key, f"must be at most {MAX_CYCLES} cycles, got {value!r}")
    return int(out)


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _constraints(root, levels, names, timing):
    rows = []
    items = root.require("constraints", list)
    if not items:
        raise root.error("constraints", "empty: without timing rows nothing limits the command rate")
    for i, item in enumerate(items):
        s = root.child(item, f"constraints[{i}]")
        level = s.choice("level", levels)
        frm = _as_list(s.require("from"))
        to = _as_list(s.require("to"))
        for c in frm + to:
            if c not in names:
                raise s.error("from" if c in frm else "to", f"unknown command {c!r}")
        latency = _int_expr(s, "latency", timing)
        window = s.number("window", 1, positive=True, integer=True, maximum=MAX_WINDOW)
        sibling = s.get("sibling", False, bool)
        s.done()
        if sibling and levels.index(level) == 0:
            raise s.error("sibling", "channels are simulated independently; sibling rows need a level below channel")
        for f in frm:
            for t in to:
                rows.append(Constraint(levels.index(level), names.index(f), names.index(t), latency, window,
                                       sibling, str(item.get("latency"))))
    return rows


def _refresh(sec, levels, commands, timing):
    names = [c.name for c in commands]
    out = {}
    for mode in list(sec.keys()):
        if mode not in REFRESH_MODES[:2]:
            raise sec.error(mode, f"expected one of {', '.join(REFRESH_MODES[:2])}")
        s = sec.section(mode)
        cmd = s.choice("command", names)
        ci = names.index(cmd)
        if commands[ci].kind != "refresh":
            raise s.error("command", f"{cmd} is not a refresh command")
        interval = _int_expr(s, "interval", timing)
        if interval <= 0:
            raise s.error("interval", "must be positive")
        s.done()
        out[mode] = Refresh(ci, commands[ci].scope, interval)
    sec.done()
    return out


def _power(sec):
    out = {}
    for k in list(sec.keys()):
        v = sec.number(k, minimum=0, maximum=1e12)
        out[k] = float(v)
    sec.done()
    return out


def _controller(sec):
    vals = dict(CONTROLLER_DEFAULTS)
    queue = dict(integer=True, maximum=MAX_REQUEST_SLOTS)
    vals["read_queue"] = sec.number("read_queue", vals["read_queue"], positive=True, **queue)
    vals["write_queue"] = sec.number("write_queue", vals["write_queue"], positive=True, **queue)
    vals["bank_queue"] = sec.number("bank_queue", vals["bank_queue"], **queue)
    if vals["bank_queue"] < 0:
        raise sec.error("bank_queue", "must be 0 (no per-bank command queues) or positive")
    vals["scheduler"] = sec.choice("scheduler", SCHEDULERS, vals["scheduler"])
    vals["row_hit_cap"] = sec.number("row_hit_cap", vals["row_hit_cap"], integer=True)
    if vals["row_hit_cap"] < 0:
        raise sec.error("row_hit_cap", "must be 0 (no cap) or positive")
    vals["row_policy"] = sec.choice("row_policy", ROW_POLICIES, vals["row_policy"])
    for k in ("write_high_watermark", "write_low_watermark"):
        vals[k] = float(sec.number(k, vals[k]))
        if not 0.0 <= vals[k] <= 1.0:
            raise sec.error(k, "must be a fraction of the write queue between 0 and 1")
    if vals["write_low_watermark"] > vals["write_high_watermark"]:
        raise sec.error("write_low_watermark", "must not exceed write_high_watermark")
    vals["refresh"] = sec.choice("refresh", REFRESH_MODES, vals["refresh"])
    vals["refresh_stagger"] = sec.get("refresh_stagger", vals["refresh_stagger"], bool)
    vals["leave_queue_at"] = sec.choice("leave_queue_at", QUEUE_RELEASES, vals["leave_queue_at"])
    if vals["leave_queue_at"] == "activate" and vals["bank_queue"] > 0:
        raise sec.error("leave_queue_at", "'activate' needs bank_queue: 0 (requests leave the request queues, "
                                          "not per-bank command queues)")
    sec.done()
    return Controller(**vals)


def _address_mapping(root, levels, counts, rows, columns, access_bytes):
    value = root.require("address_mapping", (str, list))
    where = root._where("address_mapping")
    sizes = dict(zip(levels, counts))
    sizes["row"] = rows
    sizes["column"] = columns
    for fname, n in sizes.items():
        if n & (n - 1):
            raise ConfigError(f"{where}: {fname} count {n} is not a power of two")
    bits = {k: int(n).bit_length() - 1 for k, n in sizes.items()}
    if access_bytes & (access_bytes - 1):
        raise ConfigError(f"{where}: access_bytes {access_bytes} is not a power of two")
    offset = access_bytes.bit_length() - 1
    if isinstance(value, list):
        fields = []
        for i, item in enumerate(value):
            if not (isinstance(item, list) and len(item) == 2 and item[0] in sizes and isinstance(item[1], int)
                    and not isinstance(item[1], bool) and 0 <= item[1] <= 64):
                raise ConfigError(f"{where}[{i}]: expected [field, bits] with field one of {', '.join(sizes)}")
            fields.append((item[0], item[1]))
    else:
        fields = _mapping_from_string(value, levels, bits, where)
    got = {}
    for f, b in fields:
        got[f] = got.get(f, 0) + b
    for f in sizes:
        if got.get(f, 0) != bits[f]:
            raise ConfigError(f"{where}: {f} needs {bits[f]} bits, the mapping gives {got.get(f, 0)}")
    if sum(got.values()) + offset > 64:
        raise ConfigError(f"{where}: the fields take {sum(got.values())} bits above {offset} offset bits; a byte "
                          "address has 64")
    return [(f, b) for f, b in fields if b > 0], offset


def _mapping_from_string(text, levels, bits, where):
    """DRAMsim3-style 'rorabgbachco' or Ramulator-style 'RoBaRaCoCh', MSB first."""
    if text[:1].islower():
        if len(text) % 2:
            raise ConfigError(f"{where}: {text!r}: expected two-letter fields such as rorabgbachco")
        fields = []
        for i in range(0, len(text), 2):
            tok = text[i:i + 2]
            name = FIELD_ALIASES.get(tok)
            if name is None or name not in bits:
                raise ConfigError(f"{where}: {text!r}: unknown field {tok!r} for levels {', '.join(levels)}")
            fields.append((name, bits[name]))
        return fields
    tokens = [text[i:i + 2] for i in range(0, len(text), 2)]
    middle = [lv for lv in levels[1:] if lv not in ("bank_group", "bank")]
    expand = {
        "Ch": ["channel"], "Ra": middle, "Bg": ["bank_group"] if "bank_group" in levels else [],
        "Ba": (["bank"] if "Bg" in tokens else [lv for lv in ("bank_group", "bank") if lv in levels]),
        "Ro": ["row"], "Co": ["column"],
    }
    fields = []
    for tok in tokens:
        if tok not in expand:
            raise ConfigError(f"{where}: {text!r}: unknown field {tok!r} (use Ch, Ra, Bg, Ba, Ro, Co)")
        fields.extend((name, bits[name]) for name in expand[tok])
    return fields
