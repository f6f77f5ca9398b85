"""System presets: memories (standard, PIM design, geometry), devices, links, mapping and placement policies."""
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Section, find_config, load_yaml
from ..config.memory import base_chain
from ..errors import ConfigError

DEVICE_KINDS = ("gpu", "npu", "pim")
LAYOUTS = ("head", "token")

# keys each mapping policy takes (device roles name devices of the system), and which roles must be PIM
POLICIES = {
    "gpu-only": {"roles": ("xpu",), "pim_roles": ()},
    "attacc": {"roles": ("xpu", "pim"), "pim_roles": ("pim",)},
    "neupims": {"roles": ("npu", "pim"), "pim_roles": ("pim",)},
    "ianus": {"roles": ("npu", "pim"), "pim_roles": ("pim",)},
    "papi": {"roles": ("xpu", "fc_pim", "attn_pim"), "pim_roles": ("fc_pim", "attn_pim")},
    "hybe": {"roles": ("prefill", "decode"), "pim_roles": ()},
}


@dataclass(frozen=True)
class MemorySpec:
    """A pool of memory: a standard (configs/dram name), an optional PIM design (configs/pim name) and its geometry.

    Channels are counted over all stacks; banks per channel include every bank reachable in the
    channel (pseudo-channels, SIDs, bank groups, banks), so channel × bank × row addresses one row.
    """
    name: str
    standard: str
    pim: str
    stacks: int
    channels_per_stack: int
    banks_per_channel: int
    rows_per_bank: int
    row_bytes: int

    @property
    def channels(self):
        return self.stacks * self.channels_per_stack

    @property
    def capacity(self):
        return self.channels * self.banks_per_channel * self.rows_per_bank * self.row_bytes

    def describe(self):
        return {"standard": self.standard, "pim": self.pim, "stacks": self.stacks, "channels": self.channels,
                "banks_per_channel": self.banks_per_channel, "rows_per_bank": self.rows_per_bank,
                "row_bytes": self.row_bytes, "capacity_bytes": self.capacity}


@dataclass(frozen=True)
class DeviceSpec:
    """A compute device (or `count` identical ones working as one, tensor-parallel when asked)."""
    name: str
    kind: str
    count: int
    memory: str
    peak_tflops: float = None       # per device
    bandwidth_gbs: float = None     # per device, to its memory (internal bandwidth for PIM)
    tensor_parallel: bool = False
    efficiency: float = 1.0         # fraction of peak_tflops a kernel reaches (kernel replay)

    @property
    def peak_flops(self):
        return None if self.peak_tflops is None else self.peak_tflops * 1e12 * self.count

    @property
    def bandwidth(self):
        return None if self.bandwidth_gbs is None else self.bandwidth_gbs * 1e9 * self.count

    def describe(self):
        d = {"kind": self.kind, "count": self.count, "memory": self.memory}
        if self.peak_tflops is not None:
            d["peak_tflops"] = self.peak_tflops
        if self.bandwidth_gbs is not None:
            d["bandwidth_gbs"] = self.bandwidth_gbs
        if self.tensor_parallel:
            d["tensor_parallel"] = True
        if self.efficiency != 1.0:
            d["efficiency"] = self.efficiency
        return d


@dataclass(frozen=True)
class LinkSpec:
    name: str
    between: tuple
    bandwidth_gbs: float

    def describe(self):
        return {"between": list(self.between), "bandwidth_gbs": self.bandwidth_gbs}


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

    def describe(self):
        d = {"weights": self.weights, "kv_cache": {"memory": self.kv_cache, "layout": self.kv_layout}}
        if self.kv_split:
            d["kv_cache"]["split"] = [{k: (list(v) if isinstance(v, tuple) else v)
                                       for k, v in (("memory", r.memory), ("layers", r.layers),
                                                    ("kv_heads", r.kv_heads), ("tokens", r.tokens)) if v is not None}
                                      for r in self.kv_split]
        return d


@dataclass(frozen=True)
class SystemSpec:
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

    def device(self, role):
        return self.devices[self.roles[role]]

    def memory_of(self, device_name):
        return self.memories[self.devices[device_name].memory]

    def link_between(self, a, b):
        for link in self.links.values():
            if set(link.between) == {a, b} and (a != b or link.between[0] == link.between[1]):
                return link
        raise ConfigError(f"system {self.name}: data must move between devices {a} and {b} but no link connects "
                          f"them; add one under links:")

    def describe(self):
        return {
            "name": self.name,
            "description": self.description,
            "memories": {k: v.describe() for k, v in self.memories.items()},
            "devices": {k: v.describe() for k, v in self.devices.items()},
            "links": {k: v.describe() for k, v in self.links.items()},
            "mapping": {"policy": self.policy, **self.roles, **self.options},
            "placement": self.placement.describe(),
        }


def _range(sec, key):
    value = sec.get(key, None, types=list)
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) \
            or value[0] < 0 or value[1] <= value[0]:
        raise sec.error(key, f"expected [lo, hi) with 0 <= lo < hi, got {value!r}")
    return tuple(value)


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


def load_system(name_or_path):
    """A SystemSpec from a preset name (configs/systems/NAME.yaml) or a YAML path."""
    if isinstance(name_or_path, SystemSpec):
        return name_or_path
    path = find_config("systems", name_or_path)
    root = Section(load_yaml(path), source=str(path))
    name = root.get("name", Path(path).stem, types=str)
    description = root.get("description", "", types=str)
    source = root.get("source", "", types=str)

    memories = {}
    msec = root.section("memories", required=True)
    for key in msec.keys():
        s = msec.section(key)
        pim = s.get("pim", None, types=str)
        standard = s.require("standard", types=str)
        _check_memory_names(s, standard, pim)
        memories[key] = MemorySpec(
            name=key, standard=standard, pim=pim,
            stacks=s.number("stacks", positive=True, integer=True),
            channels_per_stack=s.number("channels_per_stack", positive=True, integer=True),
            banks_per_channel=s.number("banks_per_channel", positive=True, integer=True),
            rows_per_bank=s.number("rows_per_bank", positive=True, integer=True),
            row_bytes=s.number("row_bytes", positive=True, integer=True))
        s.get("source")
        s.done()
    if not memories:
        raise msec.error("", "at least one memory is needed")
    msec.done()

    devices = {}
    dsec = root.section("devices", required=True)
    for key in dsec.keys():
        s = dsec.section(key)
        kind = s.choice("kind", DEVICE_KINDS)
        memory = s.require("memory", types=str)
        if memory not in memories:
            raise s.error("memory", f"unknown memory {memory!r}; known: {', '.join(memories)}")
        if kind == "pim" and not memories[memory].pim:
            raise s.error("memory", f"a PIM device needs a memory with a pim design; {memory!r} has none")
        devices[key] = DeviceSpec(
            name=key, kind=kind, count=s.number("count", default=1, positive=True, integer=True), memory=memory,
            peak_tflops=s.number("peak_tflops", default=None, positive=True),
            bandwidth_gbs=s.number("bandwidth_gbs", default=None, positive=True),
            tensor_parallel=s.get("tensor_parallel", False, types=bool),
            efficiency=float(s.number("efficiency", default=1.0, positive=True)))
        if devices[key].efficiency > 1:
            raise s.error("efficiency", "a fraction of the peak: at most 1")
        s.get("source")
        s.done()
    dsec.done()

    links = {}
    lsec = root.section("links")
    for key in lsec.keys():
        s = lsec.section(key)
        between = s.require("between", types=list)
        if len(between) != 2 or any(b not in devices for b in between):
            raise s.error("between", f"expected two device names out of {', '.join(devices)}, got {between!r}")
        links[key] = LinkSpec(key, tuple(between), s.number("bandwidth_gbs", positive=True))
        s.get("source")
        s.done()
    lsec.done()

    mp = root.section("mapping", required=True)
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
        options["alpha"] = mp.number("alpha", positive=True)
    if policy == "neupims":
        options["sub_batches"] = mp.number("sub_batches", default=2, positive=True, integer=True)
    if policy == "ianus":
        for role in ("npu", "pim"):
            dev = devices[roles[role]]
            if dev.peak_tflops is None or dev.bandwidth_gbs is None:
                raise mp.error(role, f"policy ianus estimates latencies: device {dev.name!r} needs peak_tflops "
                                     f"and bandwidth_gbs")
    if any(devices[roles[r]].kind == "pim" for r in roles):
        limit = mp.number("attention_reuse_limit", default=None, positive=True, integer=True)
        if limit is not None:
            options["attention_reuse_limit"] = limit
    mp.get("source")
    mp.done()

    ps = root.section("placement")
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
        r = Section(raw, ks.dotted(f"split[{i}]"), ks.source)
        mem = r.require("memory", types=str)
        if mem not in memories:
            raise r.error("memory", f"unknown memory {mem!r}; known: {', '.join(memories)}")
        rule = KVSplitRule(mem, _range(r, "layers"), _range(r, "kv_heads"), _range(r, "tokens"))
        r.done()
        rules.append(rule)
    ks.done()
    ps.done()
    root.done()
    return SystemSpec(name=name, description=description, memories=memories, devices=devices, links=links,
                      policy=policy, roles=roles, options=options,
                      placement=Placement(weights, kv_memory, layout, tuple(rules)), source=source)
