"""Systems (configs/systems/*.yaml): memories, devices, links and topology, mapping and placement,
validated and resolved once into one plain `System`.

A system is read from a preset name, a YAML path, or the resolved form a kernel-trace header
embeds (`System.to_dict()`, which carries each memory's composed standard or PIM design, so a
trace replays without the files it was made from). Every figure a kernel replay uses lives here:
an xPU's peak, bandwidth, utilisation limits, fixed cost per kernel, occupancy and energy per
byte / MAC; a link's bandwidth, latency and energy, and which devices it connects; a PIM
device's peak and internal bandwidth, derived from its design (`pim_rates`), never typed in.
See docs/systems.md.
"""
import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..energy import static_power_w, streaming_pj_per_byte
from ..errors import ConfigError
from . import find_config, load_yaml
from .files import relative_to
from .memory import apply_overrides, base_chain, check_overrides, load_memory, resolve_memory
from .pim import split_option_overrides
from .section import Section

DEVICE_KINDS = ("gpu", "npu", "pim")
#: sanity limits of a system's numbers: beyond them a typo, not a study (and the placement
#: keeps per-channel arrays)
MAX_CHANNELS = 1 << 20
MAX_BANKS = 1 << 20
MAX_DEVICES = 1 << 16
MAX_RATE = 1e12              # TFLOP/s, GB/s, us: far above any device or link
LAYOUTS = ("head", "token")
LINK_TOPOLOGIES = ("shared", "pairs")

# keys each mapping policy takes (device roles name devices of the system), and which roles must be PIM
POLICIES = {
    "gpu-only": {"roles": ("xpu",), "pim_roles": ()},
    "attacc": {"roles": ("xpu", "pim"), "pim_roles": ("pim",)},
    "neupims": {"roles": ("npu", "pim"), "pim_roles": ("pim",)},
    "ianus": {"roles": ("npu", "pim"), "pim_roles": ("pim",)},
    "papi": {"roles": ("xpu", "fc_pim", "attn_pim"), "pim_roles": ("fc_pim", "attn_pim")},
    "hybe": {"roles": ("prefill", "decode"), "pim_roles": ()},
    "pim-only": {"roles": ("pim",), "pim_roles": ("pim",)},
}

#: kernel ops a device's kernel_overhead_us may name (besides kernel names and `default`)
KERNEL_OPS = ("embedding", "norm", "gemm", "gemv", "elementwise", "attention_score", "softmax",
              "attention_context")
ENERGY_KEYS = ("memory_pj_per_byte", "mac_pj", "l2_pj_per_byte", "l1_pj_per_byte", "register_pj_per_byte")


@dataclass(frozen=True)
class MemoryPool:
    """A pool of memory: a standard (configs/dram), an optional PIM design (configs/pim) with its
    option choices, its geometry, and `spec`, the standard or design resolved to cycles.

    Channels are counted over all stacks; banks per channel include every bank reachable in the
    channel (pseudo-channels, SIDs, bank groups, banks), so channel x bank x row addresses one row.
    """
    name: str
    standard: str
    pim: str
    stacks: int
    channels_per_stack: int
    banks_per_channel: int
    rows_per_bank: int
    row_bytes: int
    spec: object = field(default=None, compare=False, repr=False)   # config.memory.MemorySpec
    static_power_w_per_stack: float = 0.0   # W drawn over the whole run (standby and refresh)

    @property
    def channels(self):
        return self.stacks * self.channels_per_stack

    @property
    def capacity(self):
        return self.channels * self.banks_per_channel * self.rows_per_bank * self.row_bytes

    @property
    def static_power_w(self):
        """W the whole memory draws whether or not it is accessed (every stack)."""
        return self.static_power_w_per_stack * self.stacks

    @property
    def peak_bandwidth(self):
        """Bytes/s of every channel streaming (the standard's peak per channel x channels)."""
        return self.spec.peak_bandwidth / self.spec.n_channels * self.channels

    def to_dict(self):
        d = {"standard": self.standard, "pim": self.pim, "stacks": self.stacks, "channels_per_stack":
             self.channels_per_stack, "channels": self.channels, "banks_per_channel": self.banks_per_channel,
             "rows_per_bank": self.rows_per_bank, "row_bytes": self.row_bytes, "capacity_bytes": self.capacity}
        if math.isfinite(self.static_power_w_per_stack):     # NaN (no IDD currents) is derived again on reading
            d["static_power_w_per_stack"] = self.static_power_w_per_stack
        if self.pim and self.spec.pim.options:
            d["options"] = dict(self.spec.pim.options)
        d["config"] = copy.deepcopy(self.spec.raw)
        return d


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy figures of an xPU (pJ; NaN where the system gives none): off-chip memory access per
    byte (default: the memory standard's IDD model, energy.streaming_pj_per_byte), one
    multiply-accumulate (2 FLOPs), and per byte moved at each on-chip level."""
    memory_pj_per_byte: float = math.nan
    mac_pj: float = math.nan
    l2_pj_per_byte: float = math.nan
    l1_pj_per_byte: float = math.nan
    register_pj_per_byte: float = math.nan

    def to_dict(self):
        return {k: getattr(self, k) for k in ENERGY_KEYS if not math.isnan(getattr(self, k))}


@dataclass(frozen=True)
class Device:
    """A compute device (or `count` identical ones working as one, tensor-parallel when asked).

    Figures are per device. An xPU kernel takes max(roofline time, fixed cost): the roofline with
    peak x compute utilisation and bandwidth x bandwidth utilisation (docs/systems.md). A PIM
    device's peak and bandwidth are derived from its memory's design and geometry.
    """
    name: str
    kind: str
    count: int
    memory: str
    peak_tflops: float = None           # per device
    bandwidth_gbs: float = None         # per device, to its memory (internal bandwidth for PIM)
    compute_utilization: float = 1.0    # fraction of the peak a kernel reaches at best
    bandwidth_utilization: float = 1.0  # fraction of the bandwidth a kernel reaches at best
    kernel_overhead_us: dict = field(default_factory=lambda: {"default": 0.0})   # op/kernel name -> us
    cores: int = None                   # parallel units (SMs) that attention work is spread over
    split_kv_tokens: int = None         # decode attention: a thread block per this many cached tokens (Flash-Decoding)
    tiles: dict = field(default_factory=dict)      # thread_block / register tile [rows, cols]
    energy: DeviceEnergy = DeviceEnergy()
    tensor_parallel: bool = False
    derived: bool = False               # peak and bandwidth derived from a PIM design
    static_power_w: float = 0.0         # per device: drawn over the whole run, busy or idle (its memory's apart)

    @property
    def peak_flops(self):
        return None if self.peak_tflops is None else self.peak_tflops * 1e12 * self.count

    @property
    def bandwidth(self):
        return None if self.bandwidth_gbs is None else self.bandwidth_gbs * 1e9 * self.count

    def overhead_ns(self, name, op):
        """Fixed cost (launch, synchronisation) of one kernel, by its name, else its op, else default."""
        table = self.kernel_overhead_us
        return 1e3 * table.get(name, table.get(op, table["default"]))

    def to_dict(self):
        d = {"kind": self.kind, "count": self.count, "memory": self.memory}
        rates = {"peak_tflops": self.peak_tflops, "bandwidth_gbs": self.bandwidth_gbs}
        rates = {k: v for k, v in rates.items() if v is not None}
        if self.derived:
            d["derived"] = rates
        else:
            d.update(rates)
        if self.kind != "pim":
            d["utilization"] = {"compute": self.compute_utilization, "bandwidth": self.bandwidth_utilization}
            d["kernel_overhead_us"] = dict(self.kernel_overhead_us)
            if self.cores is not None:
                d["cores"] = self.cores
            if self.split_kv_tokens is not None:
                d["split_kv_tokens"] = self.split_kv_tokens
            if self.tiles:
                d["tiles"] = {k: list(v) for k, v in self.tiles.items()}
            d["energy"] = self.energy.to_dict()
        if self.tensor_parallel:
            d["tensor_parallel"] = True
        if self.static_power_w:
            d["static_power_w"] = self.static_power_w
        return d


@dataclass(frozen=True)
class Link:
    """Links between two device groups (or inside one, for its collectives).

    `shared`: one link carries every transfer between the groups; `pairs`: device i of one group
    has its own link to device i of the other (equal counts), so a transfer splits over them.
    Within a group (`between: [a, a]`) every device has its own port of `bandwidth_gbs` into the
    switch. Bandwidth is per link and direction; a transfer costs latency + bytes / bandwidth.
    """
    name: str
    between: tuple
    bandwidth_gbs: float
    latency_us: float = 0.0
    energy_pj_per_byte: float = math.nan
    topology: str = "shared"

    @property
    def within_group(self):
        return self.between[0] == self.between[1]

    def to_dict(self):
        d = {"between": list(self.between), "bandwidth_gbs": self.bandwidth_gbs, "latency_us": self.latency_us}
        if not self.within_group:
            d["topology"] = self.topology
        if not math.isnan(self.energy_pj_per_byte):
            d["energy_pj_per_byte"] = self.energy_pj_per_byte
        return d


@dataclass(frozen=True)
class HostLink:
    """The path between the KV-cache memories and the host's memory (optional): what a swap of KV
    blocks to the host and back costs (`pimdram serve --preemption swap`): latency + bytes /
    bandwidth each way. `bandwidth_gbs` is the whole system's, per direction."""
    bandwidth_gbs: float
    latency_us: float = 0.0
    energy_pj_per_byte: float = math.nan

    def seconds(self, nbytes):
        return self.latency_us * 1e-6 + nbytes / (self.bandwidth_gbs * 1e9)

    def joules(self, nbytes):
        return 0.0 if math.isnan(self.energy_pj_per_byte) else nbytes * self.energy_pj_per_byte * 1e-12

    def to_dict(self):
        d = {"bandwidth_gbs": self.bandwidth_gbs, "latency_us": self.latency_us}
        if not math.isnan(self.energy_pj_per_byte):
            d["energy_pj_per_byte"] = self.energy_pj_per_byte
        return d


@dataclass(frozen=True)
class KVSplitRule:
    """Puts the KV cache of some layers / KV heads / token positions in a given memory (first match wins)."""
    memory: str
    layers: tuple = None
    kv_heads: tuple = None
    tokens: tuple = None

    def covers_layer(self, layer):
        return self.layers is None or self.layers[0] <= layer < self.layers[1]


@dataclass(frozen=True)
class Placement:
    weights: str = "follow"            # "follow" (memory of the device running the kernel) or a memory name
    kv_cache: str = "follow"
    kv_layout: str = "head"            # head: each (request, KV head) in one channel; token: tokens over all channels
    kv_split: tuple = ()

    def to_dict(self):
        d = {"weights": self.weights, "kv_cache": {"memory": self.kv_cache, "layout": self.kv_layout}}
        if self.kv_split:
            d["kv_cache"]["split"] = [{k: (list(v) if isinstance(v, tuple) else v)
                                       for k, v in (("memory", r.memory), ("layers", r.layers),
                                                    ("kv_heads", r.kv_heads), ("tokens", r.tokens)) if v is not None}
                                      for r in self.kv_split]
        return d


@dataclass(frozen=True)
class System:
    name: str
    description: str
    memories: dict
    devices: dict
    links: dict
    policy: str
    roles: dict                         # role -> device name
    options: dict = field(default_factory=dict)   # policy parameters (alpha, sub_batches, ...)
    placement: Placement = Placement()
    source: str = ""
    host: HostLink = None               # the link to host memory, if the system states one

    def device(self, role):
        return self.devices[self.roles[role]]

    def memory_of(self, device_name):
        return self.memories[self.devices[device_name].memory]

    def link_between(self, a, b):
        for link in self.links.values():
            if set(link.between) == {a, b} and (a != b or link.within_group):
                return link
        raise ConfigError(f"system {self.name}: data must move between devices {a} and {b} but no link connects "
                          f"them; add one under links:")

    @property
    def pim_memories(self):
        """Names of the memories with a PIM design, in order."""
        return [name for name, m in self.memories.items() if m.pim]

    def to_dict(self):
        """The fully resolved system: what a kernel-trace header embeds and load_system reads back."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "memories": {k: v.to_dict() for k, v in self.memories.items()},
            "devices": {k: v.to_dict() for k, v in self.devices.items()},
            "links": {k: v.to_dict() for k, v in self.links.items()},
            "mapping": {"policy": self.policy, **self.roles, **self.options},
            "placement": self.placement.to_dict(),
            **({"host": self.host.to_dict()} if self.host is not None else {}),
        }


# --- PIM rates -------------------------------------------------------------------------------

def pim_rates(spec, channels):
    """(peak FLOP/s, internal bandwidth in B/s) of `channels` channels of a PIM design.

    Peak: every MAC unit of a channel completing fpus x lanes multiply-accumulates per cycle (at
    its own clock). Bandwidth: the design's MAC commands streaming 32 B columns from every bank
    they cover, as fast as their tightest command-to-command row allows: a row at level L with
    latency n lets each node of L issue one MAC per n cycles (AttAcc bank level: one MACAB per
    channel per nCCD_AB; buffer level: one broadcast MACPB per channel per nBL)."""
    macs = [c for c in spec.commands if c.kind == "mac"]
    if not macs:
        raise ConfigError(f"{spec.name}: a PIM design needs a mac command")
    per_cycle = 0.0
    for unit in spec.pim.units.values():
        if unit.kind == "mac":
            per_cycle += _unit_instances(spec, unit) * unit.macs_per_cycle(spec.tck_ns)
    peak = 2 * per_cycle * channels / (spec.tck_ns * 1e-9)
    best = 0.0
    for i, c in enumerate(spec.commands):
        if c.kind != "mac":
            continue
        rows = [r for r in spec.constraints if r.from_cmd == i and r.to_cmd == i and r.window <= 1 and not r.sibling]
        if rows:
            level = min(r.level for r in rows)
            latency = max(r.latency for r in rows if r.level == level)
            per_channel = math.prod(spec.counts[1:level + 1]) / max(latency, 1)
        else:
            per_channel = 1.0            # the command bus: one per cycle
        best = max(best, min(per_channel, 1.0) * spec.banks_covered(c) * spec.access_bytes)
    bandwidth = best * channels / (spec.tck_ns * 1e-9)
    return peak, bandwidth


def _unit_instances(spec, unit):
    if unit.level == spec.bank_level:
        return spec.banks_per_channel // unit.banks_per_unit
    return math.prod(spec.counts[1:unit.level + 1])


# --- loading ---------------------------------------------------------------------------------

def load_system(source, overrides=None, origin="system"):
    """A System from a preset name (configs/systems/NAME.yaml), a YAML path, the resolved dict a
    kernel-trace header embeds (System.to_dict()), or a System (returned as is without overrides).

    `overrides` (`--set` KEY=VALUE, as for `pimdram replay`): a key starting with a system key
    (`mapping.head_groups`, `devices.gpu.peak_tflops`, ...) sets the system; any other applies to
    every PIM memory's design, `options.NAME=CHOICE` picking among a design's options. `origin`
    names a dict source in errors."""
    overrides = check_overrides(overrides) or None
    if isinstance(source, System) and not overrides:
        return source
    if isinstance(source, System):
        source = source.to_dict()
    own, overrides = _split_overrides(overrides)
    if isinstance(source, dict):
        root = Section(apply_overrides(source, own, source=origin), source=origin, overridden=own)
        return _parse(root, root.get("name", "", types=str), overrides, embedded=True)
    path = find_config("systems", source)
    root = Section(apply_overrides(_compose(path, []), own, source=str(path)), source=str(path), overridden=own)
    return _parse(root, root.get("name", Path(path).stem, types=str), overrides, embedded=False)


#: top-level keys of a system; an override starting with one of them sets the system, any other
#: a value of its PIM designs
SYSTEM_KEYS = ("name", "description", "source", "memories", "devices", "links", "mapping", "placement")


def _split_overrides(overrides):
    """`--set` overrides split into (the system's, the PIM designs')."""
    own, rest = {}, {}
    for key, value in (overrides or {}).items():
        (own if key.split(".", 1)[0] in SYSTEM_KEYS else rest)[key] = value
    return own, rest or None


def system_raw(name_or_path):
    """The raw data of a system preset or file with its `base:` chain merged in (before
    validation): what a user edits to derive a system of their own."""
    return _compose(find_config("systems", name_or_path), [])


def _compose(path, seen):
    """The raw system of a file: with `base: NAME`, the base system's raw data with the file's
    keys merged in (mappings merge key by key, a null deletes the key, any other value replaces)."""
    raw = load_yaml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected the name of the system this one extends")
    if str(path) in seen or len(seen) > 8:
        raise ConfigError(f"{path}: base: circular chain of base systems ({' -> '.join(seen + [str(path)])})")
    merged = _compose(find_config("systems", relative_to(path, base)), seen + [str(path)])
    merged.pop("name", None)
    return _merge(merged, raw)


def _merge(old, new):
    out = dict(old)
    for k, v in new.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _parse(root, name, overrides, embedded):
    description = root.get("description", "", types=str)
    source = root.get("source", "", types=str)
    memories = _memories(root.section("memories", required=True), overrides, embedded)
    devices = _devices(root.section("devices", required=True), memories, embedded)
    links = _links(root.section("links"), devices)
    policy, roles, options = _mapping(root.section("mapping", required=True), devices)
    placement = _placement(root.section("placement"), memories)
    host = _host(root.section("host")) if "host" in root else None
    root.done()
    return System(name=name, description=description, memories=memories, devices=devices, links=links,
                  policy=policy, roles=roles, options=options, placement=placement, source=source, host=host)


def _memories(msec, overrides, embedded):
    memories = {}
    for key in msec.keys():
        s = msec.section(key)
        pim = s.get("pim", None, types=(str, type(None)))
        standard = s.require("standard", types=str)
        geometry = dict(
            stacks=s.number("stacks", positive=True, integer=True, maximum=MAX_CHANNELS),
            channels_per_stack=s.number("channels_per_stack", positive=True, integer=True, maximum=MAX_CHANNELS),
            banks_per_channel=s.number("banks_per_channel", positive=True, integer=True, maximum=MAX_BANKS),
            rows_per_bank=s.number("rows_per_bank", positive=True, integer=True),
            row_bytes=s.number("row_bytes", positive=True, integer=True, maximum=1 << 20))
        if geometry["stacks"] * geometry["channels_per_stack"] > MAX_CHANNELS:
            raise s.error("stacks", f"{geometry['stacks']} stacks x {geometry['channels_per_stack']} channels; at most "
                                    f"{MAX_CHANNELS} channels in one memory are supported")
        choices = s.get("options", {}, types=dict)
        if choices and not pim:
            raise s.error("options", "option choices belong to a PIM design; this memory has none")
        for derived in ("channels", "capacity_bytes"):
            s.get(derived)          # written by to_dict for readers; recomputed here
        config = s.get("config", None, types=dict) if embedded else None
        s.get("source")
        spec = _memory_spec(s, standard, pim, choices, overrides if pim else None, config)
        static = s.number("static_power_w_per_stack", default=None, minimum=0, maximum=MAX_RATE)
        if static is None:
            # the standard's IDD model: standby and refresh of every channel of a stack
            static = static_power_w(spec) * geometry["channels_per_stack"]
        s.done()
        memories[key] = MemoryPool(name=key, standard=standard, pim=pim, spec=spec,
                                   static_power_w_per_stack=float(static), **geometry)
    if not memories:
        raise msec.error("", "at least one memory is needed")
    msec.done()
    return memories


def _memory_spec(s, standard, pim, choices, overrides, config):
    """The resolved standard (or PIM design) of a memory: from the header's embedded config when
    there is one (option choices given at replay then recompose the design from its files)."""
    option_overrides, rest = split_option_overrides(overrides)
    if config is not None and not option_overrides:
        where = f"{s.source}: {s.path}.config"
        raw = apply_overrides(config, rest, source=where)
        try:
            spec = resolve_memory(raw, source=where, options=dict(choices),
                                  option_choices=_offered(pim) if pim else None, overridden=set(rest))
        except ConfigError as exc:
            raise ConfigError(str(exc)) from None
        _check_spec_matches(s, spec, standard, pim)
        return spec
    _check_memory_names(s, standard, pim)
    every = {f"options.{k}": v for k, v in choices.items()}
    every.update(overrides or {})
    return load_memory(pim or standard, every or None, set_keys=set(overrides or {}))


def _offered(pim):
    """The choices each option of a design offers, when its files are at hand (else unknown)."""
    try:
        return load_memory(pim).pim.option_choices
    except ConfigError:
        return {}


def _check_spec_matches(s, spec, standard, pim):
    if pim and spec.pim is None:
        raise s.error("config", f"the embedded config of PIM design {pim!r} has no pim: section")
    if not pim and spec.pim is not None:
        raise s.error("config", "the embedded config is a PIM design but the memory names none")


def _check_memory_names(s, standard, pim):
    """The standard must be a memory preset and the PIM design one built on that standard."""
    try:
        find_config("dram", standard, kinds=("dram", "compare"))
    except ConfigError as exc:
        raise s.error("standard", str(exc)) from None
    if pim is None:
        return
    try:
        find_config("pim", pim)
        chain = base_chain(pim)
    except ConfigError as exc:
        raise s.error("pim", str(exc)) from None
    if chain[-1] != standard:
        raise s.error("pim", f"PIM design {pim!r} is built on {chain[-1]!r} ({' -> '.join(chain)}), "
                             f"not on this memory's standard {standard!r}")


def _devices(dsec, memories, embedded):
    devices = {}
    for key in dsec.keys():
        s = dsec.section(key)
        kind = s.choice("kind", DEVICE_KINDS)
        memory = s.require("memory", types=str)
        if memory not in memories:
            raise s.error("memory", f"unknown memory {memory!r}; known: {', '.join(memories)}")
        if "efficiency" in s:
            raise s.error("efficiency", "renamed: use utilization: {compute: ...} (and bandwidth:)")
        count = s.number("count", default=1, positive=True, integer=True, maximum=MAX_DEVICES)
        common = dict(name=key, kind=kind, count=count, memory=memory,
                      tensor_parallel=s.get("tensor_parallel", False, types=bool),
                      static_power_w=float(s.number("static_power_w", default=0.0, minimum=0, maximum=MAX_RATE)))
        if kind == "pim":
            devices[key] = _pim_device(s, memories[memory], common, embedded)
        else:
            devices[key] = _xpu_device(s, memories[memory], common)
        s.get("source")
        s.done()
    dsec.done()
    return devices


def _pim_device(s, pool, common, embedded):
    if not pool.pim:
        raise s.error("memory", f"a PIM device needs a memory with a pim design; {pool.name!r} has none")
    for key in ("peak_tflops", "bandwidth_gbs"):
        if key in s:
            raise s.error(key, f"derived from the PIM design {pool.pim!r} and the memory's geometry; remove it")
    if embedded:
        s.get("derived")         # the header's copy of the derived figures; recomputed here
    peak, bandwidth = pim_rates(pool.spec, pool.channels)
    n = common["count"]
    # kernels a PIM device runs without a lowering (roofline): DRAM core energy per byte, the
    # design's MAC energy, no cache hierarchy
    figures = DeviceEnergy(memory_pj_per_byte=streaming_pj_per_byte(pool.spec),
                           mac_pj=pool.spec.pim.energy.get("mac_pj", math.nan),
                           l2_pj_per_byte=0.0, l1_pj_per_byte=0.0, register_pj_per_byte=0.0)
    return Device(peak_tflops=peak / 1e12 / n, bandwidth_gbs=bandwidth / 1e9 / n, derived=True, energy=figures,
                  **common)


def _fraction(sec, key):
    value = sec.number(key, default=1.0, positive=True, maximum=1e9)
    if value > 1:
        raise sec.error(key, f"a fraction of the peak: at most 1, got {value!r}")
    return float(value)


def _xpu_device(s, pool, common):
    u = s.section("utilization")
    compute, bandwidth = _fraction(u, "compute"), _fraction(u, "bandwidth")
    u.get("source")
    u.done()
    overhead = s.get("kernel_overhead_us", 0.0)
    if isinstance(overhead, dict):
        o = s.section("kernel_overhead_us")
        table = {}
        for k in o.keys():
            v = o.number(k, minimum=0, maximum=MAX_RATE)
            table[str(k)] = float(v)
        o.done()
        table.setdefault("default", 0.0)
    elif isinstance(overhead, (int, float)) and not isinstance(overhead, bool) and 0 <= overhead <= MAX_RATE:
        table = {"default": float(overhead)}
    else:
        raise s.error("kernel_overhead_us", f"expected microseconds or a mapping of kernel op/name to "
                                            f"microseconds, got {overhead!r}")
    tiles = {}
    t = s.section("tiles")
    for k in ("thread_block", "register"):
        v = t.get(k, None, types=list)
        if v is None:
            continue
        if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and 0 < x <= 1 << 20 for x in v):
            raise t.error(k, f"expected [rows, cols] of positive integers, got {v!r}")
        tiles[k] = tuple(v)
    t.done()
    e = s.section("energy")
    figures = {}
    for k in ENERGY_KEYS:
        v = e.number(k, default=None, minimum=0, maximum=MAX_RATE)
        if v is not None:
            figures[k] = float(v)
    e.get("source")
    e.done()
    figures.setdefault("memory_pj_per_byte", streaming_pj_per_byte(pool.spec))
    peak = s.number("peak_tflops", default=None, positive=True, maximum=MAX_RATE)
    bw = s.number("bandwidth_gbs", default=None, positive=True, maximum=MAX_RATE)
    if bw is None:
        bw = pool.peak_bandwidth / 1e9 / common["count"]   # the memory's peak, shared by the group
    return Device(peak_tflops=None if peak is None else float(peak), bandwidth_gbs=float(bw),
                  compute_utilization=compute, bandwidth_utilization=bandwidth, kernel_overhead_us=table,
                  cores=s.number("cores", default=None, positive=True, integer=True, maximum=1 << 24),
                  split_kv_tokens=s.number("split_kv_tokens", default=None, positive=True, integer=True), tiles=tiles,
                  energy=DeviceEnergy(**figures), **common)


def _links(lsec, devices):
    links = {}
    for key in lsec.keys():
        s = lsec.section(key)
        between = s.require("between", types=list)
        if len(between) != 2 or any(b not in devices for b in between):
            raise s.error("between", f"expected two device names out of {', '.join(devices)}, got {between!r}")
        a, b = between
        topology = s.choice("topology", LINK_TOPOLOGIES, default="shared")
        if a == b and "topology" in s.data:
            raise s.error("topology", "a link within one device group connects every device through its own port")
        if topology == "pairs" and devices[a].count != devices[b].count:
            raise s.error("topology", f"pairs needs groups of equal size ({a}: {devices[a].count}, "
                                      f"{b}: {devices[b].count})")
        latency = s.number("latency_us", default=0.0, minimum=0, maximum=MAX_RATE)
        energy = s.number("energy_pj_per_byte", default=None, minimum=0, maximum=MAX_RATE)
        links[key] = Link(key, (a, b), float(s.number("bandwidth_gbs", positive=True, maximum=MAX_RATE)), float(latency),
                          math.nan if energy is None else float(energy), topology)
        s.get("source")
        s.done()
    lsec.done()
    return links


def _host(s):
    bandwidth = s.number("bandwidth_gbs", positive=True, maximum=MAX_RATE)
    latency = s.number("latency_us", default=0.0, minimum=0, maximum=MAX_RATE)
    energy = s.number("energy_pj_per_byte", default=None, minimum=0, maximum=MAX_RATE)
    s.get("source")
    s.done()
    return HostLink(float(bandwidth), float(latency), math.nan if energy is None else float(energy))


def _mapping(mp, devices):
    policy = mp.choice("policy", tuple(POLICIES))
    roles = {}
    for role in POLICIES[policy]["roles"]:
        dev = mp.require(role, types=str)
        if dev not in devices:
            raise mp.error(role, f"unknown device {dev!r}; known: {', '.join(devices)}")
        if role in POLICIES[policy]["pim_roles"] and devices[dev].kind != "pim":
            raise mp.error(role, f"device {dev!r} must be a PIM device for policy {policy}")
        roles[role] = dev
    options = {}
    if policy == "papi":
        options["alpha"] = mp.number("alpha", positive=True, maximum=MAX_RATE)
    if policy == "neupims":
        options["sub_batches"] = mp.number("sub_batches", default=2, positive=True, integer=True, maximum=1 << 16)
    if policy == "attacc":
        groups = mp.get("head_groups", 1)
        if groups not in ("heads_per_device", "auto") and (isinstance(groups, bool) or not isinstance(groups, int)
                                                            or not 1 <= groups <= 1 << 16):
            raise mp.error("head_groups", f"expected a positive integer, heads_per_device or auto, got {groups!r}")
        options["head_groups"] = groups
        options["ffn_coprocessing"] = mp.get("ffn_coprocessing", False, types=bool)
    if policy == "ianus":
        for role in ("npu", "pim"):
            dev = devices[roles[role]]
            if dev.peak_tflops is None or dev.bandwidth_gbs is None:
                raise mp.error(role, f"policy ianus estimates latencies: device {dev.name!r} needs peak_tflops "
                                     f"and bandwidth_gbs")
    if any(devices[roles[r]].kind == "pim" for r in roles) and policy != "pim-only":
        limit = mp.number("attention_reuse_limit", default=None, positive=True, integer=True)
        if limit is not None:
            options["attention_reuse_limit"] = limit
    mp.get("source")
    mp.done()
    return policy, roles, options


def _range(sec, key):
    value = sec.get(key, None, types=list)
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) \
            or value[0] < 0 or value[1] <= value[0] or value[1] > 1 << 62:
        raise sec.error(key, f"expected [lo, hi) with 0 <= lo < hi, got {value!r}")
    return tuple(value)


def _placement(ps, memories):
    weights = ps.get("weights", "follow", types=str)
    if weights != "follow" and weights not in memories:
        raise ps.error("weights", f"expected follow or a memory name ({', '.join(memories)}), got {weights!r}")
    ks = ps.section("kv_cache")
    kv_memory = ks.get("memory", "follow", types=str)
    if kv_memory != "follow" and kv_memory not in memories:
        raise ks.error("memory", f"expected follow or a memory name ({', '.join(memories)}), got {kv_memory!r}")
    layout = ks.choice("layout", LAYOUTS, default="head")
    rules = []
    for i, raw in enumerate(ks.get("split", [], types=list)):
        r = ks.child(raw, f"split[{i}]")
        mem = r.require("memory", types=str)
        if mem not in memories:
            raise r.error("memory", f"unknown memory {mem!r}; known: {', '.join(memories)}")
        rule = KVSplitRule(mem, _range(r, "layers"), _range(r, "kv_heads"), _range(r, "tokens"))
        r.done()
        rules.append(rule)
    ks.done()
    ps.done()
    return Placement(weights, kv_memory, layout, tuple(rules))


__all__ = ["System", "MemoryPool", "Device", "DeviceEnergy", "HostLink", "Link", "Placement", "KVSplitRule", "load_system",
           "pim_rates", "system_raw", "POLICIES", "DEVICE_KINDS"]
