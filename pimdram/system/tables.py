"""The statistics tables of a kernel replay (docs/stats-format.md), accumulated step by step:
kernels (one row per kernel of the trace, over every step that uses its template), steps, layers,
energy by device and kind, the PIM memories' command totals, the run and the summary row."""
import math

import numpy as np

from ..stats import schema, standard_table
from .timing import ENERGY_KINDS

_SOURCES = ("simulated", "reused", "model", "fused")


class Accumulator:
    """Collects each scheduled step's kernel timings into per-kernel, per-step, per-layer and
    per-device sums without keeping every step's rows."""

    def __init__(self, kt, pim_mems, tck, logged=None):
        self.kt, self.pim_mems, self.tck = kt, pim_mems, tck
        n = len(kt.kernels)
        self.pos = {k["id"]: i for i, k in enumerate(kt.kernels)}
        self.instances = np.zeros(n, dtype=np.int64)
        self.first_start = np.full(n, np.inf)
        self.last_end = np.zeros(n)
        self.busy = np.zeros(n)
        self.energy = np.zeros((n, len(ENERGY_KINDS)))
        self.commands = np.zeros(n, dtype=np.int64)
        self.sources = [None] * n
        self.channels = np.zeros((n, 2), dtype=np.int64)
        self.interference = np.zeros(n)             # ns lost to the other device's traffic
        self.conflicts = np.zeros(n)                 # row-buffer conflicts the other device caused
        self.blocked = np.zeros(n)                   # cycles blocked-mode PIM held its traffic
        self.steps = {}              # step -> [phase, kernels, start, end, energy]
        self.layers = {}             # layer -> [kernels, start, end, energy]
        self.devices = {}            # device -> energy by kind
        self.per_command = {name: None for name in pim_mems}
        self.logged = logged
        self.log_parts = []          # (start ns, log) of the logged memory's kernels
        self.makespan = 0.0
        self.busy_union = {}         # device -> ns it ran at least one kernel
        self.busy_frontier = {}      # device -> time up to which its busy time is counted
        self.overlap = 0.0           # ns with two or more devices (not links) busy at once
        self.overlap_frontier = 0.0
        links = set(kt.header.get("system", {}).get("links") or ())
        self.is_link = lambda name: name in links
        self.source_counts = dict.fromkeys(_SOURCES, 0)
        self.runs = {first: (phase, tokens) for first, phase, tokens in _run_tokens(kt)}

    def plan(self, kernels):
        """Index arrays of one template's kernels: rows of the kernels table, layers, devices and
        the steps the kernels belong to (relative to the template's first)."""
        layers = [-1 if k.get("layer") is None else k["layer"] for k in kernels]
        devices = [k["device"] for k in kernels]
        first = kernels[0].get("step", 0) if kernels else 0
        ksteps = np.asarray([k.get("step", 0) - first for k in kernels], dtype=np.int64)
        for name in devices:
            self.devices.setdefault(name, np.zeros(len(ENERGY_KINDS)))
        for layer in layers:
            self.layers.setdefault(layer, [0, math.inf, 0.0, 0.0])
        layer_keys, layer_idx = np.unique(np.asarray(layers), return_inverse=True)
        dev_keys = sorted(set(devices))
        return {
            "rows": np.fromiter((self.pos[k["id"]] for k in kernels), np.int64, len(kernels)),
            "first_step": first, "ksteps": ksteps, "uniform_step": bool(np.all(ksteps == 0)),
            "layer_keys": [int(x) for x in layer_keys], "layer_idx": layer_idx,
            "layer_count": np.bincount(layer_idx, minlength=len(layer_keys)),
            "dev_keys": dev_keys, "dev_idx": np.asarray([dev_keys.index(d) for d in devices], dtype=np.int64),
            "dev_rows": [np.flatnonzero(np.asarray(devices) == d) for d in dev_keys],
            "phase": [k["phase"] for k in kernels],
        }

    def add_step(self, plan, offset, energy, starts, ends):
        """One scheduled step of a template: its kernels grown `offset` times, their energies
        (n x kinds, J) and times."""
        rows = plan["rows"]
        if not len(rows):
            return
        self.instances[rows] += 1
        np.minimum.at(self.first_start, rows, starts)
        np.maximum.at(self.last_end, rows, ends)
        self.busy[rows] += ends - starts
        self.energy[rows] += energy
        totals = energy.sum(axis=1)
        # layers
        li = plan["layer_idx"]
        l_start = np.full(len(plan["layer_keys"]), np.inf)
        l_end = np.zeros(len(plan["layer_keys"]))
        np.minimum.at(l_start, li, starts)
        np.maximum.at(l_end, li, ends)
        l_energy = np.bincount(li, weights=totals, minlength=len(plan["layer_keys"]))
        for j, layer in enumerate(plan["layer_keys"]):
            row = self.layers[layer]
            row[0] += int(plan["layer_count"][j])
            row[1] = min(row[1], l_start[j])
            row[2] = max(row[2], l_end[j])
            row[3] += l_energy[j]
        # devices
        d_energy = np.zeros((len(plan["dev_keys"]), len(ENERGY_KINDS)))
        np.add.at(d_energy, plan["dev_idx"], energy)
        for j, name in enumerate(plan["dev_keys"]):
            self.devices[name] += d_energy[j]
        # steps (a template from gen is one step; a trace before 1.2 may hold several)
        ksteps = plan["ksteps"]
        for s in ([0] if plan["uniform_step"] else np.unique(ksteps)):
            sel = np.flatnonzero(ksteps == s)
            st = self.steps.setdefault(plan["first_step"] + offset + int(s),
                                       [plan["phase"][sel[0]], 0, math.inf, 0.0, 0.0])
            st[1] += len(sel)
            st[2] = min(st[2], float(starts[sel].min()))
            st[3] = max(st[3], float(ends[sel].max()))
            st[4] += math.fsum(totals[sel])
        self.makespan = max(self.makespan, float(ends.max()))
        self._add_busy(plan, starts, ends)

    def _add_busy(self, plan, starts, ends):
        """Each device's busy time (the union of its kernels' intervals) and the time two or more
        devices are busy at once, counted from where the previous steps' left off."""
        merged = []
        for name, sel in zip(plan["dev_keys"], plan["dev_rows"]):
            lo, hi = _union(starts[sel], ends[sel])
            frontier = self.busy_frontier.get(name, 0.0)
            self.busy_union[name] = self.busy_union.get(name, 0.0) + float(
                np.clip(hi - np.maximum(lo, frontier), 0.0, None).sum())
            if len(hi):
                self.busy_frontier[name] = max(frontier, float(hi[-1]))
            if not self.is_link(name):
                merged.append((lo, hi))
        if len(merged) < 2:
            return
        times = np.concatenate([x for lo, hi in merged for x in (lo, hi)])
        delta = np.concatenate([np.full(len(lo), 1) if k == 0 else np.full(len(hi), -1)
                                for lo, hi in merged for k in (0, 1)])
        order = np.lexsort((delta, times))          # at equal times, ends before starts
        times, count = times[order], np.cumsum(delta[order])
        both = count[:-1] >= 2
        a = np.maximum(times[:-1][both], self.overlap_frontier)
        self.overlap += float(np.clip(times[1:][both] - a, 0.0, None).sum())
        self.overlap_frontier = max(self.overlap_frontier, float(times[-1]))

    def add_interference(self, plan, lost, conflicts, blocked):
        """One step's interference losses (ns), conflicts and blocked cycles per kernel."""
        rows = plan["rows"]
        self.interference[rows] += lost
        self.conflicts[rows] += conflicts
        self.blocked[rows] += blocked

    def add_timings(self, plan, positions, timings, times=1, starts=None):
        """What the kernels at `positions` of a template got (KernelTiming each), for `times`
        steps: commands, where the time came from, PIM command totals; and, for the logged
        memory, each kernel's commands at its start (`starts`, this step's)."""
        rows = plan["rows"]
        for p, t in zip(positions, timings):
            i = rows[p]
            # a ragged PIM kernel composed from simulated runs (the serving step timer) counts as simulated
            self.source_counts["simulated" if t.source == "composed" else t.source] += times
            self.commands[i] += t.commands * times
            if self.sources[i] is None:
                self.sources[i] = t.source
                self.channels[i] = (t.channels_simulated, t.channels_total)
            if t.per_command is not None:
                acc = self.per_command[t.memory]
                add = t.per_command * times
                self.per_command[t.memory] = add if acc is None else acc + add
            if starts is not None and t.memory == self.logged and t.log is not None and len(t.log["cycle"]):
                self.log_parts.append((starts[p], t.log))

    def to_cycles(self, ns):
        return int(math.ceil(ns / self.tck - 1e-9))

    def tables(self, wall, symmetry, command_names, overcommitted, static=None):
        """(tables by name, summary dict). `static`: {name: (kind, W)} of every device group and
        memory that draws static power (`static_powers`), charged over the makespan."""
        static = static or {}
        kt = self.kt
        cyc = np.vectorize(self.to_cycles, otypes=[np.int64])
        first_start = np.where(np.isfinite(self.first_start), self.first_start, 0.0)
        k_cols = {
            "id": np.asarray([k["id"] for k in kt.kernels]),
            "name": np.asarray([k["name"] for k in kt.kernels]),
            "layer": np.asarray([-1 if k.get("layer") is None else k["layer"] for k in kt.kernels], dtype=np.int32),
            "step": np.asarray([k.get("step", 0) for k in kt.kernels], dtype=np.int32),
            "device": np.asarray([k["device"] for k in kt.kernels]),
            "instances": self.instances,
            "start_cycle": cyc(first_start), "end_cycle": cyc(self.last_end),
            "start_ns": first_start, "end_ns": self.last_end, "busy_ns": self.busy,
            "flops": np.asarray([k["flops"] for k in kt.kernels], dtype=np.int64),
            "bytes": np.asarray([k["bytes_read"] + k["bytes_written"] for k in kt.kernels], dtype=np.int64),
            "commands": self.commands,
            "energy_j": self.energy.sum(axis=1),
            **{f"energy_{kind}_j": self.energy[:, i] for i, kind in enumerate(ENERGY_KINDS)},
            "source": np.asarray([s or "model" for s in self.sources]),
            "channels_simulated": self.channels[:, 0], "channels_total": self.channels[:, 1],
            "interference_ns": self.interference, "interference_cycles": cyc(self.interference),
            "interference_conflicts": np.rint(self.conflicts).astype(np.int64),
            "blocked_cycles": np.rint(self.blocked).astype(np.int64),
        }
        if not len(kt.kernels):
            k_cols = {c: np.zeros(0, dtype=v.dtype) for c, v in k_cols.items()}
        kernels = standard_table(schema.KERNELS, k_cols)

        wl = kt.header["workload"]
        n_req = len(wl.get("requests", [])) or int(wl.get("batch", 0))
        tokens, decode_tokens, step_tokens = self._tokens(wl)
        seconds, static_w, static_j, energy = run_totals(self.makespan, self.energy, static)
        decode_s = self._span("decode")
        run = {
            "tokens": tokens, "tokens_per_s": tokens / seconds if seconds > 0 else math.nan,
            "kernels": int(self.instances.sum()),
            **{f"kernels_{'modelled' if s == 'model' else s}": n for s, n in self.source_counts.items()},
            "symmetry": bool(symmetry),
            "decode_tokens": decode_tokens,
            "decode_seconds": decode_s,
            "decode_tokens_per_s": decode_tokens / decode_s if decode_s > 0 else math.nan,
            "prefill_seconds": self._span("prefill"),
            "energy_j": energy,
            "energy_per_token_j": energy / tokens if tokens else math.nan,
            "overcommitted": bool(overcommitted),
            "overlap_ns": self.overlap,
            "interference_ns": float(self.interference.sum()),
            "static_power_w": static_w,
            "static_energy_j": static_j,
        }
        total_bytes = int(np.sum(k_cols["bytes"] * self.instances))
        reads = sum(k["bytes_read"] * int(n) for k, n in zip(kt.kernels, self.instances))
        writes = sum(k["bytes_written"] * int(n) for k, n in zip(kt.kernels, self.instances))
        summary_cols = {c: np.array([0]) for c, _, _ in schema.standard_columns(schema.SUMMARY)}
        summary_cols.update({
            "cycles": np.array([self.to_cycles(self.makespan)]), "tck_ns": np.array([self.tck]),
            "simulated_seconds": np.array([seconds]), "requests": np.array([n_req]),
            "bytes_read": np.array([reads]), "bytes_written": np.array([writes]),
            "read_latency_mean": np.array([np.nan]), "write_latency_mean": np.array([np.nan]),
            "bandwidth": np.array([total_bytes / seconds if seconds > 0 else np.nan]),
            "peak_bandwidth": np.array([np.nan]), "energy_j": np.array([energy]),
            "wall_seconds": np.array([wall]), "requests_per_second": np.array([n_req / wall if wall > 0 else np.nan]),
        })
        tables = {schema.SUMMARY: standard_table(schema.SUMMARY, summary_cols)}
        tables[schema.CHANNELS] = self._memory_rows(command_names)
        tables[schema.KERNELS] = kernels
        tables[schema.RUN] = standard_table(schema.RUN, {c: np.array([v]) for c, v in run.items()})
        tables[schema.LAYERS] = self._layer_table()
        tables[schema.STEPS] = self._step_table(step_tokens)
        tables[schema.DEVICE_ENERGY] = self._device_energy(kt.header["system"], static, seconds)
        summary = {c: v[0].item() for c, v in summary_cols.items()}
        summary.update(run)
        return tables, summary

    def _tokens(self, wl):
        """(tokens, decode tokens, tokens by step): a prefill trace counts the prompt tokens it
        processes; otherwise each request yields one token from its prefill and its new tokens
        (speculation) from each decode step."""
        firsts = sorted(self.runs)
        step_tokens = {}
        for step in self.steps:
            i = np.searchsorted(firsts, step, side="right") - 1
            step_tokens[step] = self.runs[firsts[i]][1] if i >= 0 else 0
        if wl.get("phase") == "prefill":
            return sum(int(r.get("prompt", 0)) for r in wl.get("requests", [])), 0, step_tokens
        decode = sum(step_tokens[s] for s, row in self.steps.items() if row[0] == "decode")
        return sum(step_tokens.values()), decode, step_tokens

    def _span(self, phase):
        """Seconds from the first start to the last end of the steps of one phase (0 if none)."""
        times = [(row[2], row[3]) for row in self.steps.values() if row[0] == phase]
        if not times:
            return 0.0
        return (max(e for _, e in times) - min(s for s, _ in times)) * 1e-9

    def _layer_table(self):
        out = {"layer": [], "kernels": [], "start_cycle": [], "end_cycle": [], "energy_j": []}
        for layer in sorted(self.layers):
            n, start, end, energy = self.layers[layer]
            out["layer"].append(layer)
            out["kernels"].append(n)
            out["start_cycle"].append(self.to_cycles(start))
            out["end_cycle"].append(self.to_cycles(end))
            out["energy_j"].append(energy)
        return standard_table(schema.LAYERS, {c: np.asarray(v) for c, v in out.items()})

    def _step_table(self, step_tokens):
        cols = {c: [] for c, _, _ in schema.standard_columns(schema.STEPS)}
        for step in sorted(self.steps):
            phase, n, start, end, energy = self.steps[step]
            cols["step"].append(step)
            cols["phase"].append(phase)
            cols["kernels"].append(n)
            cols["tokens"].append(step_tokens.get(step, 0))
            cols["start_cycle"].append(self.to_cycles(start))
            cols["end_cycle"].append(self.to_cycles(end))
            cols["start_ns"].append(start)
            cols["end_ns"].append(end)
            cols["energy_j"].append(energy)
        return standard_table(schema.STEPS, {c: np.asarray(v, dtype=d) for c, d, _ in
                                             schema.standard_columns(schema.STEPS) for v in [cols[c]]})

    def _device_energy(self, system, static, seconds):
        """Energy by device (or link, or memory) and kind: one row per device or link that ran a
        kernel, then per device or memory that ran none but draws static power (idle devices pay
        it too), each with its static power over the run's `seconds`."""
        kinds = {**{n: d.get("kind", "") for n, d in system["devices"].items()},
                 **{n: "link" for n in (system.get("links") or {})}}
        cols = {c: [] for c, _, _ in schema.standard_columns(schema.DEVICE_ENERGY)}
        zero = np.zeros(len(ENERGY_KINDS))
        rows = dict(self.devices)
        rows.update({name: zero for name in static if name not in rows})
        for name, acc in rows.items():
            kind, watts = static.get(name, (kinds.get(name, ""), 0.0))
            cols["device"].append(name)
            cols["kind"].append(kind)
            for i, k in enumerate(ENERGY_KINDS):
                cols[f"{k}_j"].append(float(acc[i]))
            cols["static_w"].append(watts)
            cols["static_j"].append(watts * seconds)
            cols["total_j"].append(math.fsum(acc) + watts * seconds)
            cols["busy_ns"].append(self.busy_union.get(name, 0.0))
        return standard_table(schema.DEVICE_ENERGY, {c: np.asarray(v, dtype=d) for c, d, _ in
                                                     schema.standard_columns(schema.DEVICE_ENERGY)
                                                     for v in [cols[c]]})

    def _memory_rows(self, command_names):
        """The channels table of a kernel replay: one row per PIM memory whose commands are those
        of the file's command-names, with its command totals over every kernel and channel."""
        spec_cols = schema.standard_columns(schema.CHANNELS, command_names)
        cols = {c: [] for c, _, _ in spec_cols}
        for i, (name, pm) in enumerate(self.pim_mems.items()):
            if pm.spec.command_names != list(command_names):
                continue
            totals = self.per_command[name]
            if totals is None:
                totals = np.zeros(len(command_names))
            for c, _, _ in spec_cols:
                cols[c].append(0)
            cols["channel"][-1] = i
            for j, n in enumerate(command_names):
                cols[schema.command_column(n)][-1] = int(totals[j])
            for c in cols:
                if "latency" in c:
                    cols[c][-1] = float("nan")
            cols["energy_j"][-1] = float(self.devices_energy_of_memory(name))
        return standard_table(schema.CHANNELS, {c: np.asarray(v, dtype=d) for c, d, _ in spec_cols
                                                for v in [cols[c]]}, command_names=command_names)

    def devices_energy_of_memory(self, memory):
        system = self.kt.header["system"]
        return math.fsum(float(acc.sum()) for name, acc in self.devices.items()
                         if system["devices"].get(name, {}).get("memory") == memory
                         and system["devices"][name].get("kind") == "pim")

    def write_command_log(self, writer, spec):
        """The logged memory's kernel logs, each shifted to its kernel's start, in cycle order."""
        cols = schema.standard_columns(schema.COMMAND_LOG, levels=spec.levels)
        table = writer.append_table(schema.COMMAND_LOG, {c: d for c, d, _ in cols}, {c: u for c, _, u in cols},
                                    attrs={"names": spec.command_names})
        for start, log in sorted(self.log_parts, key=lambda p: p[0]):
            part = dict(log)
            part["cycle"] = np.asarray(part["cycle"]) + self.to_cycles(start)
            table.append(part)


class Totals:
    """An Accumulator's interface for a caller that needs only the run's time and energy (the
    serving step timer replays tens of thousands of one-step traces): the same makespan and
    energy sums, none of the tables."""

    logged = None

    def __init__(self, kt):
        self.pos = {k["id"]: i for i, k in enumerate(kt.kernels)}
        self.energy = np.zeros((len(kt.kernels), len(ENERGY_KINDS)))
        self.makespan = 0.0

    def plan(self, kernels):
        return {"rows": np.fromiter((self.pos[k["id"]] for k in kernels), np.int64, len(kernels))}

    def add_step(self, plan, offset, energy, starts, ends):
        if len(plan["rows"]):
            self.energy[plan["rows"]] += energy
            self.makespan = max(self.makespan, float(ends.max()))

    def add_interference(self, plan, lost, conflicts, blocked):
        pass

    def add_timings(self, plan, positions, timings, times=1, starts=None):
        pass

    def tables(self, wall, symmetry, command_names, overcommitted, static=None):
        """(None, {simulated_seconds, energy_j}) as Accumulator.tables has them."""
        seconds, _, _, energy = run_totals(self.makespan, self.energy, static or {})
        return None, {"simulated_seconds": seconds, "energy_j": energy}


def run_totals(makespan, energy, static):
    """(seconds, static W, static J, energy J) of a run of `makespan` ns whose kernels took
    `energy` (kernels x kinds, J) and whose devices and memories draw `static` (static_powers)."""
    seconds = makespan * 1e-9
    static_w = math.fsum(w for _, w in static.values())
    static_j = static_w * seconds
    return seconds, static_w, static_j, math.fsum(energy.sum(axis=1)) + static_j


def static_powers(system):
    """{row name: (kind, W)} of a system's static power: each device group (count x its
    static_power_w) and each memory that draws any (`kind` "memory"; named "<memory> (memory)"
    where a device or link has its name). Each is charged over the whole run, whether it ran or not."""
    out = {name: (d.kind, d.count * d.static_power_w) for name, d in system.devices.items()}
    taken = set(out) | set(system.links)
    for name, m in system.memories.items():
        if m.static_power_w != 0:        # 0: counted elsewhere (a GPU board's idle power holds its HBM)
            out[name if name not in taken else f"{name} (memory)"] = ("memory", m.static_power_w)
    return out


def _union(starts, ends):
    """The union of intervals [starts, ends) as sorted disjoint (lo, hi) arrays."""
    if not len(starts):
        return np.zeros(0), np.zeros(0)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > e[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(s) - 1)
    return s[first], e[last]


def _run_tokens(kt):
    """(first step, phase, tokens per step) of each run of the trace's steps."""
    runs = kt.header.get("steps")
    if runs:
        return [(r["first_step"], r.get("phase", "decode"), int(r.get("tokens", 0))) for r in runs]
    # before the header listed its steps: one run per step number found in the kernels
    wl = kt.header["workload"]
    spec = int(wl.get("speculation", 1))
    live = {}
    for k in kt.kernels:
        if k["op"] != "communication":
            live.setdefault((k.get("step", 0), k["phase"]), set()).update(k.get("requests", ()))
    n_req = len(wl.get("requests", [])) or int(wl.get("batch", 0))
    return [(step, phase, (len(r) or n_req) * (1 if phase == "prefill" else spec))
            for (step, phase), r in sorted(live.items())]
