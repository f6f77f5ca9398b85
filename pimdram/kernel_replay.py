"""Replays a kernel trace (`pimdram gen`) on a system: each kernel gets a duration on its device
and the kernels are scheduled by their dependencies.

- A kernel on a PIM device whose design has a lowering becomes command programs that the engine
  simulates at command level: AttAcc's mapping (attacc-bank, attacc-bankgroup, attacc-buffer,
  papi-fc, papi-attn: attention_score, softmax and attention_context per instance, request x KV
  head, in one channel, round robin over the memory's channels; FC products as GEMVs over the
  channels; pimdram.lower.attacc) or the design's GEMV commands (neupims, aim, hbm-pim; a
  request's whole KV cache in one channel where the design says so; pimdram.lower.generic).
- Any other kernel takes the longer of its compute time (flops / the device's peak) and its
  memory time (bytes / the device's bandwidth, or the bandwidth of its memory standard where
  the device names none); a transfer takes bytes / its link's bandwidth.
- A device (or link) runs one kernel at a time; a kernel starts when the kernels it depends on
  have ended and its device is free, the one that can start earliest first (list scheduling):
  kernels on different devices overlap, except that devices sharing a memory whose PIM design
  runs in blocked mode (IANUS' NPU and AiM) take turns.

Symmetry: a PIM kernel's instances spread round robin, so its channels hold one of at most two
instance counts; one representative channel per count is simulated and the kernel's time is the
slowest. Kernels with the same lowering inputs (e.g. the same kernel in every layer) are
simulated once and reused. Both are recorded per kernel (`source`, `channels_simulated`,
`channels_total`); `symmetry=False` simulates every channel of every PIM kernel.
"""
import dataclasses
import hashlib
import heapq
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ._engine import Engine
from .config.files import SafeDumper
from .config.memory import load_memory
from .energy import column_or_row_energy, command_energies
from .errors import ConfigError, PimdramError
from .lower.attacc import _Builder, attacc_mode, attention_piece, fc_piece
from .lower.generic import GemvBuilder, has_gemv_lowering
from .lower.program import assemble
from .mapping.systems import load_system
from .replay import CommandLogExpander, ReplayResult, engine_params
from .stats import StatsWriter, schema, standard_table
from .trace.kernels import read_kernel_trace

#: kernel names lowered to PIM command programs on AttAcc-style designs
_ATTENTION_PARTS = ("attention_score", "softmax", "attention_context")
_FC_OPS = ("gemm", "gemv")


class KernelReplayError(PimdramError):
    """A kernel trace cannot be replayed on the system given."""


@dataclass
class KernelTiming:
    duration_ns: float
    source: str                 # "simulated", "reused", "model"
    commands: int = 0
    energy_j: float = float("nan")
    channels_simulated: int = 0
    channels_total: int = 0
    per_command: object = None  # PIM: commands issued over every channel, by command index
    memory: str = ""
    log: object = None          # PIM, with command_log: the kernel's commands from its start (expanded columns)


class _PimMemory:
    """A PIM memory of the system: its resolved design, its channel count, a cache of runs."""

    def __init__(self, name, geometry, overrides, command_log=False):
        self.name = name
        self.command_log = command_log
        self.spec = load_memory(geometry["pim"], overrides)
        self.channels = int(geometry["channels"])
        self.cache = {}
        try:
            self.mode = attacc_mode(self.spec)
        except ConfigError:
            # a design that names its GEMV commands, else none: its kernels are modelled
            self.mode = "gemv" if has_gemv_lowering(self.spec) else None
        self.kv_placement = self.spec.pim.lowering.get("kv_cache", "head")

    def loads(self, units, group=1):
        """(load, channels) pairs: `units` groups of `group` instances round robin over the channels."""
        base, extra = divmod(units, self.channels)
        pairs = [((base + 1) * group, extra), (base * group, self.channels - extra)]
        return [(n, m) for n, m in pairs if m > 0 and n > 0]

    def run(self, kind, loads, shape, symmetry):
        """Simulate kernel part `kind` ('score', 'softmax', 'context' or 'fc') whose channels carry
        `loads` ((instances or output rows per channel, channels) pairs); returns KernelTiming."""
        C = self.channels
        if kind == "fc":
            _, n_in, reuse = shape
        else:
            L, d, reuse = shape
        if self.mode == "gemv" and kind == "softmax":
            return None
        if not loads:
            return KernelTiming(0.0, "model", channels_total=C)
        if symmetry:
            reps = [(n, 1, m) for n, m in loads]               # (load, simulated channels, multiplicity)
        else:
            reps = [(n, m, 1) for n, m in loads]
        key = (kind, tuple((n, s) for n, s, _ in reps), shape)
        if key in self.cache:
            t = self.cache[key]
            return dataclasses.replace(t, source="reused")
        n_sim = sum(s for _, s, _ in reps)
        spec = dataclasses.replace(self.spec, counts=[n_sim] + list(self.spec.counts[1:]))
        engine = Engine(engine_params(spec, self.command_log))
        programs, ch = [], 0
        for load, n_ch, _ in reps:
            if self.mode == "gemv":
                b = GemvBuilder(spec, engine.node_id, reuse)
                if kind == "fc":
                    b.gemv(0, load, n_in)
                else:
                    row = 0
                    for _ in range(load):       # score: K is L x d; context: V^T is d x L
                        row = b.gemv(0, L, d, row) if kind == "score" else b.gemv(0, d, L, row)
            else:
                b = _Builder(spec, engine.node_id, self.mode, reuse)
                if kind == "fc":
                    fc_piece(b, load, n_in)
                else:
                    for _ in range(load):
                        attention_piece(b, kind, L, d)
            for _ in range(n_ch):
                programs.append((ch, b))
                ch += 1
        cols, _ = assemble(spec, programs)
        engine.feed_program(cols["channel"], cols["command"], cols["node"], cols["select"], cols["row"],
                            cols["occupancy"])
        engine.run(True)
        # the kernel ends when its data is done and no timing row of its commands can bind the
        # next kernel's (which starts on a fresh engine): the boundary stays legal
        cycles = max(engine.completion_cycle, engine.current_cycle, engine.settle_cycle())
        counts = engine.counters()["commands"]           # per simulated channel
        # scale to every channel: a representative stands for `multiplicity` channels
        scale = np.zeros(n_sim)
        ch = 0
        for _, n_ch, mult in reps:
            scale[ch:ch + n_ch] = mult
            ch += n_ch
        totals = (counts * scale[:, None]).sum(axis=0)
        log = CommandLogExpander(engine, spec)(engine.take_log()) if self.command_log else None
        timing = KernelTiming(cycles * spec.tck_ns, "simulated", int(totals.sum()),
                              self._energy(totals), n_sim, C, totals, self.name, log)
        self.cache[key] = timing
        return timing

    def _energy(self, totals):
        """Energy of a kernel's PIM commands (docs/pim-configs.md, "Energy"): a command with a
        figure of its own (pim.energy.commands) takes it; a MAC takes the bytes it reads from its
        banks at pim_access_pj_per_byte plus mac_pj per MAC where the design gives them, else the
        DRAM read energy of a column in each bank (IDD model); an activate takes the DRAM
        activate energy of every bank it opens. NaN when the memory has no IDD figures."""
        spec, pim = self.spec, self.spec.pim
        e = pim.energy
        try:
            dram = command_energies(spec)
        except ConfigError:
            return float("nan")
        joules = 0.0
        for i, c in enumerate(spec.commands):
            if not totals[i]:
                continue
            banks = spec.banks_covered(c)
            own = pim.command_energy.get(c.name)
            if own is not None:
                if "pj" in own:
                    joules += totals[i] * own["pj"] * 1e-12
                else:
                    like = spec.commands[spec.command_index(own["like"])]
                    joules += totals[i] * own["factor"] * column_or_row_energy(spec, like, dram)
            elif c.kind == "mac":
                read = totals[i] * banks * spec.access_bytes
                if "pim_access_pj_per_byte" in e or "mac_pj" in e:
                    joules += read * e.get("pim_access_pj_per_byte", 0.0) * 1e-12
                    joules += read / 2 * e.get("mac_pj", 0.0) * 1e-12       # FP16: one MAC per 2 bytes
                else:
                    joules += totals[i] * banks * dram["read"]
            elif c.kind == "activate":
                joules += totals[i] * column_or_row_energy(spec, c, dram)
        return joules


# --- durations ---------------------------------------------------------------------------------

def _model_ns(kernel, device, bandwidth_gbs):
    """Roofline time of a kernel on an xPU (or an unlowered PIM kernel)."""
    t_compute = 0.0
    if device.peak_flops:
        t_compute = kernel["flops"] / (device.peak_flops * device.efficiency) * 1e9
    t_memory = 0.0
    if bandwidth_gbs:
        t_memory = (kernel["bytes_read"] + kernel["bytes_written"]) / (bandwidth_gbs * 1e9) * 1e9
    return max(t_compute, t_memory)


def replay_kernels(trace, output, *, system=None, overrides=None, symmetry=True, command_log=False,
                   overwrite=False, progress=None):
    """Replay kernel trace `trace` on `system` (default: the one its header names) and write the
    statistics to `output`. Returns a ReplayResult whose summary also holds tokens_per_s.

    command_log: keep the commands of the first PIM memory's kernels (of its simulated channels,
    each kernel from its start cycle) in table command_log, for `pimdram check`."""
    started = time.perf_counter()
    trace = Path(trace)
    kt = read_kernel_trace(trace)
    header = kt.header
    sys_spec = load_system(system or header["system"]["name"])
    geometry = header["system"]["memories"]
    missing = sorted({k["device"] for k in kt.kernels} - set(sys_spec.devices) - set(sys_spec.links))
    if missing:
        raise KernelReplayError(f"{trace}: kernels run on {', '.join(missing)}, which system "
                                f"{sys_spec.name!r} does not have")
    pim_mems = {}
    for dev in sys_spec.devices.values():
        mem = sys_spec.memories[dev.memory]
        if dev.kind == "pim" and mem.pim and dev.memory not in pim_mems:
            geo = geometry.get(dev.memory) or {"pim": mem.pim, "channels": mem.channels}
            pim_mems[dev.memory] = _PimMemory(dev.memory, geo, overrides, command_log and not pim_mems)
    # the clock that cycles are counted in: the first PIM memory's, else the first memory's standard
    ref = next(iter(pim_mems.values())).spec if pim_mems else load_memory(
        next(iter(sys_spec.memories.values())).standard)
    tck = ref.tck_ns

    bandwidths = {}

    def device_bandwidth(dev):
        """GB/s a device reaches its memory with: its own figure, else its memory's peak."""
        if dev.name not in bandwidths:
            if dev.bandwidth:
                bandwidths[dev.name] = dev.bandwidth / 1e9
            else:
                mem = sys_spec.memories[dev.memory]
                std = load_memory(mem.standard)
                bandwidths[dev.name] = std.peak_bandwidth / 1e9 * mem.channels / std.n_channels
        return bandwidths[dev.name]

    # per-byte energies of xPU memory traffic and links, where a PIM design of the system gives them
    figures = {}
    for pm in pim_mems.values():
        for key in ("xpu_access_pj_per_byte", "link_pj_per_byte"):
            if key in pm.spec.pim.energy:
                figures.setdefault(key, pm.spec.pim.energy[key])
    timings = []
    n = len(kt.kernels)
    for i, k in enumerate(kt.kernels):
        dev_name = k["device"]
        if dev_name in sys_spec.links:
            link = sys_spec.links[dev_name]
            moved = k["bytes_read"] + k["bytes_written"]
            timing = KernelTiming(moved / (link.bandwidth_gbs * 1e9) * 1e9, "model",
                                  energy_j=moved * figures.get("link_pj_per_byte", float("nan")) * 1e-12)
        else:
            dev = sys_spec.devices[dev_name]
            pm = pim_mems.get(dev.memory) if dev.kind == "pim" else None
            timing = None
            if pm is not None and pm.mode is not None:
                timing = _pim_timing(pm, k, symmetry)
            if timing is None:
                per_byte = figures.get("xpu_access_pj_per_byte", float("nan")) if dev.kind != "pim" else float("nan")
                timing = KernelTiming(_model_ns(k, dev, device_bandwidth(dev)), "model",
                                      energy_j=(k["bytes_read"] + k["bytes_written"]) * per_byte * 1e-12)
        timings.append(timing)
        if progress is not None and (i % 256 == 0 or i == n - 1):
            progress(i + 1, n)
    resource = _resources(sys_spec, pim_mems)
    starts, ends = _schedule(kt.kernels, timings, [resource[k["device"]] for k in kt.kernels])
    rows = [(k, starts[i], ends[i], timings[i]) for i, k in enumerate(kt.kernels)]
    makespan_ns = max((r[2] for r in rows), default=0.0)
    wall = time.perf_counter() - started
    tables, summary = _tables(kt, rows, makespan_ns, tck, wall, pim_mems, symmetry, ref.command_names)
    config = {"system": sys_spec.name, "symmetry": bool(symmetry),
              "memories": {m: p.spec.to_dict() for m, p in pim_mems.items()}}
    if pim_mems:
        config["memory"] = ref.to_dict()      # the memory of command-names / command_log (pimdram check)
    attrs = {
        schema.ATTR_CONFIG: yaml.dump(config, Dumper=SafeDumper, sort_keys=False),
        schema.ATTR_TRACE_SHA256: hashlib.sha256(trace.read_bytes()).hexdigest(),
        schema.ATTR_TRACE_PATH: str(trace),
        schema.ATTR_SEED: 0,
        schema.ATTR_COMMAND_NAMES: ref.command_names,
        schema.ATTR_LEVELS: list(ref.levels),
        "description": f"kernel trace {trace.name} on {sys_spec.name}",
    }
    with StatsWriter(output, attrs, overwrite=overwrite) as writer:
        for name, table in tables.items():
            writer.write_table(name, table)
        if command_log and pim_mems:
            _write_command_log(writer, ref, rows, next(iter(pim_mems)))
    return ReplayResult(Path(output), summary)


def _write_command_log(writer, spec, rows, memory):
    """The logged memory's kernel logs, each shifted to its kernel's start, in cycle order."""
    cols = schema.standard_columns(schema.COMMAND_LOG, levels=spec.levels)
    table = writer.append_table(schema.COMMAND_LOG, {c: d for c, d, _ in cols}, {c: u for c, _, u in cols},
                                attrs={"names": spec.command_names})
    for k, start, _, t in sorted(rows, key=lambda r: r[1]):
        if t.memory != memory or t.log is None or not len(t.log["cycle"]):
            continue
        part = dict(t.log)
        part["cycle"] = np.asarray(part["cycle"]) + int(math.ceil(start / spec.tck_ns - 1e-9))
        table.append(part)


def _resources(sys_spec, pim_mems):
    """Device or link name -> the resource its kernels occupy: itself, except that devices sharing
    a memory whose PIM design runs in blocked mode (IANUS: a PIM macro blocks the NPU's DMA)
    share that memory and take turns."""
    resource = {name: name for name in list(sys_spec.devices) + list(sys_spec.links)}
    for mem_name, pm in pim_mems.items():
        if pm.spec.pim.mode == "blocked":
            for name, dev in sys_spec.devices.items():
                if dev.memory == mem_name:
                    resource[name] = f"memory:{mem_name}"
    return resource


def _schedule(kernels, timings, resources):
    """List scheduling: a resource (a device, a link, or a memory that devices share in blocked
    mode) runs one kernel at a time; whenever one could start,
    the kernel that can start earliest goes (ties: trace order), once every kernel it depends on
    has ended. Kernels of different devices overlap; a device does not wait for its kernels'
    trace order when a later one is ready first (NeuPIMs' sub-batches interleave)."""
    n = len(kernels)
    index = {k["id"]: i for i, k in enumerate(kernels)}
    waiting = [len(k.get("deps", [])) for k in kernels]
    users = [[] for _ in range(n)]
    for i, k in enumerate(kernels):
        for d in k.get("deps", []):
            users[index[d]].append(i)
    ready = [0.0] * n
    starts, ends = [0.0] * n, [0.0] * n
    free = {}
    heap = [(0.0, i) for i in range(n) if waiting[i] == 0]
    heapq.heapify(heap)
    while heap:
        t, i = heapq.heappop(heap)
        dev = resources[i]
        start = max(free.get(dev, 0.0), ready[i])
        if start > t:
            heapq.heappush(heap, (start, i))      # the device got busy meanwhile
            continue
        starts[i] = start
        ends[i] = start + timings[i].duration_ns
        free[dev] = ends[i]
        for u in users[i]:
            ready[u] = max(ready[u], ends[i])
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(heap, (max(ready[u], free.get(resources[u], 0.0)), u))
    return starts, ends


def _pim_timing(pm, k, symmetry):
    """KernelTiming of a PIM kernel with a lowering, or None (then it is modelled)."""
    shape = k.get("shape", {})
    reuse = max(1, int(k.get("reuse") or shape.get("M", 1)))
    if k["name"] in _ATTENTION_PARTS:
        lo, hi = k.get("kv_heads", [0, 1])
        heads = max(1, hi - lo)
        requests = len(k.get("requests", [])) or max(1, shape.get("instances", heads) // heads)
        if pm.kv_placement == "request":      # a request's KV heads all in one channel
            loads = pm.loads(requests, heads)
        else:
            loads = pm.loads(shape.get("instances", requests * heads))
        if k["name"] == "attention_score":
            return pm.run("score", loads, (shape["N"], shape["K"], reuse), symmetry)
        if k["name"] == "attention_context":
            return pm.run("context", loads, (shape["K"], shape["N"], reuse), symmetry)
        if k["op"] == "softmax":
            L = max(1, shape.get("elements", 0) // (requests * heads * reuse))
            return pm.run("softmax", loads, (L, 1, reuse), symmetry)
        return None
    if k["op"] in _FC_OPS and "N" in shape:
        return pm.run("fc", pm.loads(shape["N"]), (shape["N"], shape["K"], max(1, shape.get("M", 1))), symmetry)
    return None


def _tables(kt, rows, makespan_ns, tck, wall, pim_mems, symmetry, command_names):
    header = kt.header
    to_cycles = lambda ns: int(math.ceil(ns / tck - 1e-9))
    k_cols = {
        "id": [], "name": [], "layer": [], "step": [], "device": [], "start_cycle": [], "end_cycle": [],
        "start_ns": [], "end_ns": [], "flops": [], "bytes": [], "commands": [], "energy_j": [],
        "source": [], "channels_simulated": [], "channels_total": [],
    }
    for k, start, end, t in rows:
        k_cols["id"].append(k["id"])
        k_cols["name"].append(k["name"])
        k_cols["layer"].append(-1 if k.get("layer") is None else k["layer"])
        k_cols["step"].append(k.get("step", 0))
        k_cols["device"].append(k["device"])
        k_cols["start_cycle"].append(to_cycles(start))
        k_cols["end_cycle"].append(to_cycles(end))
        k_cols["start_ns"].append(start)
        k_cols["end_ns"].append(end)
        k_cols["flops"].append(k["flops"])
        k_cols["bytes"].append(k["bytes_read"] + k["bytes_written"])
        k_cols["commands"].append(t.commands)
        k_cols["energy_j"].append(t.energy_j)
        k_cols["source"].append(t.source)
        k_cols["channels_simulated"].append(t.channels_simulated)
        k_cols["channels_total"].append(t.channels_total)
    kernels = standard_table(schema.KERNELS, {c: np.asarray(v) for c, v in k_cols.items()})

    wl = header["workload"]
    n_req = len(wl.get("requests", [])) or int(wl.get("batch", 0))
    if wl.get("phase") == "prefill":
        tokens = sum(int(r.get("prompt", 0)) for r in wl.get("requests", []))
    else:
        steps = len({k.get("step", 0) for k in kt.kernels}) or 1
        tokens = n_req * int(wl.get("speculation", 1)) * steps
    seconds = makespan_ns * 1e-9
    known = [e for e in k_cols["energy_j"] if not math.isnan(e)]
    energy = float(sum(known)) if known else float("nan")     # NaN: no kernel's energy is modelled
    total_bytes = int(sum(k_cols["bytes"]))
    run = {
        "tokens": tokens, "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"),
        "kernels": len(rows),
        "kernels_simulated": k_cols["source"].count("simulated"),
        "kernels_reused": k_cols["source"].count("reused"),
        "kernels_modelled": k_cols["source"].count("model"),
        "symmetry": bool(symmetry),
    }
    summary_cols = {c: np.array([0]) for c, _, _ in schema.standard_columns(schema.SUMMARY)}
    summary_cols.update({
        "cycles": np.array([to_cycles(makespan_ns)]), "tck_ns": np.array([tck]),
        "simulated_seconds": np.array([seconds]), "requests": np.array([n_req]),
        "bytes_read": np.array([sum(k["bytes_read"] for k in kt.kernels)]),
        "bytes_written": np.array([sum(k["bytes_written"] for k in kt.kernels)]),
        "read_latency_mean": np.array([np.nan]), "write_latency_mean": np.array([np.nan]),
        "bandwidth": np.array([total_bytes / seconds if seconds > 0 else np.nan]),
        "peak_bandwidth": np.array([np.nan]), "energy_j": np.array([energy]),
        "wall_seconds": np.array([wall]), "requests_per_second": np.array([n_req / wall if wall > 0 else np.nan]),
    })
    tables = {schema.SUMMARY: standard_table(schema.SUMMARY, summary_cols)}
    tables[schema.CHANNELS] = _memory_rows(pim_mems, rows, command_names)
    tables[schema.KERNELS] = kernels
    tables[schema.RUN] = standard_table(schema.RUN, {c: np.array([v]) for c, v in run.items()})
    tables[schema.LAYERS] = _group_table(schema.LAYERS, "layer", k_cols, to_cycles)
    tables[schema.STEPS] = _group_table(schema.STEPS, "step", k_cols, to_cycles)
    summary = {c: v[0].item() for c, v in summary_cols.items()}
    summary.update(run)
    return tables, summary


def _memory_rows(pim_mems, rows, command_names):
    """The channels table of a kernel replay: one row per PIM memory whose commands are those
    of the file's command-names, with its command totals over every kernel and channel."""
    spec_cols = schema.standard_columns(schema.CHANNELS, command_names)
    cols = {c: [] for c, _, _ in spec_cols}
    for i, (name, pm) in enumerate(pim_mems.items()):
        if pm.spec.command_names != list(command_names):
            continue
        totals = np.zeros(len(command_names))
        for _, _, _, t in rows:
            if t.memory == name and t.per_command is not None:
                totals += t.per_command
        for c, _, _ in spec_cols:
            cols[c].append(0)
        cols["channel"][-1] = i
        for j, n in enumerate(command_names):
            cols[schema.command_column(n)][-1] = int(totals[j])
        for c in cols:
            if "latency" in c:
                cols[c][-1] = float("nan")
        cols["energy_j"][-1] = float(np.nansum([t.energy_j for _, _, _, t in rows if t.memory == name]))
    return standard_table(schema.CHANNELS, {c: np.asarray(v, dtype=d) for c, d, _ in spec_cols
                                            for v in [cols[c]]}, command_names=command_names)


def _group_table(name, key, k_cols, to_cycles):
    keys = np.asarray(k_cols[key])
    start = np.asarray(k_cols["start_ns"])
    end = np.asarray(k_cols["end_ns"])
    energy = np.asarray(k_cols["energy_j"], dtype=float)
    values = sorted(set(keys.tolist()))
    out = {key: [], "kernels": [], "start_cycle": [], "end_cycle": [], "energy_j": []}
    for v in values:
        m = keys == v
        out[key].append(v)
        out["kernels"].append(int(m.sum()))
        out["start_cycle"].append(to_cycles(start[m].min()))
        out["end_cycle"].append(to_cycles(end[m].max()))
        out["energy_j"].append(float(np.nansum(energy[m])))
    return standard_table(name, {c: np.asarray(v) for c, v in out.items()})


def is_kernel_trace(path):
    """Whether `path` starts like a kernel trace (JSON object with the kernel-trace format)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return False
    return first.lstrip().startswith(b"{") and b"pimdram.kernel-trace" in first


__all__ = ["replay_kernels", "is_kernel_trace", "KernelReplayError"]
