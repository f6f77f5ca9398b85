"""Replays a kernel trace (`pimdram gen`) on a system: each kernel gets a duration and an energy
on its device, and the kernels are list-scheduled by their dependencies, step after step.

- A kernel on a PIM device whose design has a lowering is simulated at command level (system.pim).
- Any other kernel on a device takes the xPU model (system.xpu): roofline with utilisation
  limits and occupancy, at least the device's fixed cost per kernel.
- A transfer or collective takes the link model (system.links).
- A device (or link) runs one kernel at a time; kernels on different devices overlap, except
  that devices sharing a memory whose PIM design runs in blocked mode take turns (system.schedule).

Steps. A trace's steps use its templates (kernel-trace format 1.2): the i-th step of a run is
its template's kernels grown i times. Each step is scheduled after the one before: resources stay
busy across steps and a kernel waits for the kernels of the previous step its `prev_deps` name.
Timings are pure functions of a kernel's numbers, so equal kernels (the same kernel in every
layer, a step's kernels that do not grow) are timed once.

The system comes from the trace header (format 1.2 embeds it whole, so a trace replays without
the files it was made from), or from `system` (a preset name, YAML path or config.system.System),
which overrides it.
"""
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import yaml

from .._atomic import one_run, output_path
from ..config.files import SafeDumper, names_a_file
from ..config.system import load_system
from ..errors import ConfigError, PimdramError
from ..replay import ReplayResult
from ..stats import StatsWriter, schema
from ..trace.contexts import as_tuple
from ..trace.growth import kernel_at, parse_grow
from ..trace.kernels import KernelTrace, read_kernel_trace
from ..trace.source import trace_source
from .interference import Interference, InterferenceOptions
from .links import link_timing
from .pim import PimMemory, pim_timing
from .schedule import Resources, StepScheduler
from .tables import Accumulator, Totals, static_powers
from .timing import ENERGY_KINDS
from .xpu import xpu_timing


class KernelReplayError(PimdramError):
    """A kernel trace cannot be replayed on the system given."""


@one_run
def replay_kernels(trace, output, *, system=None, overrides=None, symmetry=True, command_log=False,
                   overwrite=False, progress=None, interference=None):
    """Replay kernel trace `trace` on its header's system (or `system`) and write the statistics
    to `output`. Returns a ReplayResult whose summary also holds tokens_per_s and the energy.

    command_log: keep the commands of the first PIM memory's kernels (of its simulated channels,
    each kernel from its start cycle) in table command_log, for `pimdram check`.

    interference: InterferenceOptions; when enabled, xPU kernels that overlap PIM kernels in a
    shared memory are simulated with them at command level (system.interference) and devices
    sharing a blocked-mode memory no longer take turns by rule (the engine's blocked mode decides)."""
    try:
        return _replay_kernels(trace, output, system=system, overrides=overrides, symmetry=symmetry,
                               command_log=command_log, overwrite=overwrite, progress=progress,
                               interference=interference)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, ZeroDivisionError,
            OverflowError) as exc:
        # a trace the validator let through but the model cannot use (hand-edited numbers,
        # structures of the wrong type): one line naming the trace, not a traceback
        name = trace if not hasattr(trace, "name") else trace.name
        raise KernelReplayError(f"{name}: cannot replay this kernel trace: {type(exc).__name__}: {exc}"[:500]
                                + " (a trace written by pimdram gen that does this is a bug; please report it)"
                                ) from None


def _replay_kernels(trace, output, *, system=None, overrides=None, symmetry=True, command_log=False,
                    overwrite=False, progress=None, interference=None):
    interference = interference or InterferenceOptions()
    started = time.perf_counter()
    source = trace_source(trace)
    trace = Path(source.name)
    inputs = ([source.path] if source.path else []) + \
        ([system] if isinstance(system, (str, Path)) and names_a_file(system) else [])
    output_path(output, overwrite=overwrite, inputs=inputs)      # before the run, not after it
    kt = read_kernel_trace(source)
    header = kt.header
    sys_spec = system_of(trace, header, system, overrides)
    acc, ref, pim_mems, tables, summary = _simulate(kt, sys_spec, trace, symmetry, command_log, progress,
                                                    interference, started)
    warnings = list(header.get("warnings", []))
    config = {"system": sys_spec.to_dict(), "symmetry": bool(symmetry)}
    if interference.enabled:
        config["interference"] = dataclasses.asdict(interference)
    if pim_mems or command_log:
        config["memory"] = ref.to_dict()      # the memory of command-names / command_log (pimdram check)
    attrs = {
        schema.ATTR_CONFIG: yaml.dump(config, Dumper=SafeDumper, sort_keys=False),
        schema.ATTR_TRACE_SHA256: kt.sha256,
        schema.ATTR_TRACE_PATH: str(trace),
        schema.ATTR_SEED: 0,
        schema.ATTR_COMMAND_NAMES: ref.command_names,
        schema.ATTR_LEVELS: list(ref.levels),
        "description": f"kernel trace {trace.name} on {sys_spec.name}",
        "warnings": json.dumps(warnings),
    }
    with StatsWriter(output, attrs, overwrite=overwrite, inputs=inputs) as writer:
        for name, table in tables.items():
            writer.write_table(name, table)
        if command_log:
            # without PIM kernels (every kernel modelled) the log is empty: there was nothing to
            # issue, and `pimdram check` says so rather than that no log was kept
            acc.write_command_log(writer, ref)
    return ReplayResult(Path(output), summary)


class SimulationState:
    """What kernel replays of one system share when run one after another in memory (the serving
    step timer): the PIM memories with their simulation caches and the kernels' timings, so that
    a kernel simulated for one step is reused in the next. `composition`: how a ragged PIM
    attention kernel is timed, "exact" (every distinct channel simulated) or "instances" (each
    channel composed from uniform runs, PimMemory.run_lengths)."""

    def __init__(self, composition="exact"):
        if composition not in ("exact", "instances"):
            raise ValueError("composition must be 'exact' or 'instances'")
        self.composition = composition
        self.pim_mems = None
        self.timings = {}


def simulate_kernel_trace(kt, system=None, overrides=None, symmetry=True, interference=None, state=None,
                          totals_only=False):
    """The summary of replaying KernelTrace `kt` (in memory) on its header's system or `system`,
    as replay_kernels computes it, without reading or writing files (the serving step timer's
    path). `state`: a SimulationState shared by replays on the same system. `totals_only`: the
    summary has only simulated_seconds and energy_j (no tables are built)."""
    interference = interference or InterferenceOptions()
    sys_spec = system if system is not None and not overrides and not isinstance(system, (str, Path)) \
        else system_of("kernel trace", kt.header, system, overrides)
    return _simulate(kt, sys_spec, "kernel trace", symmetry, False, None, interference, time.perf_counter(),
                     state, totals_only)[4]


def _simulate(kt, sys_spec, trace, symmetry, command_log, progress, interference, started, state=None,
              totals_only=False):
    """Time and schedule every step of `kt` on `sys_spec`: (accumulator, clock memory spec, PIM
    memories, tables, summary)."""
    r = _Replay(kt, sys_spec, trace, symmetry, command_log, interference, state, totals_only)
    acc = r.acc
    runs = kt.step_runs()
    total = sum(count for _, _, count in runs)
    done = 0
    for t, first_step, count in runs:
        run = _TemplateRun(r, *r.templates[t])
        if not run.logging:
            acc.add_timings(run.rows, run.fixed, run.fixed_timings, times=count)
        for offset in range(count):
            run.step(offset)
            done += 1
            if progress is not None and (done % 64 == 0 or done == total):
                progress(done, total)
    tables, summary = acc.tables(time.perf_counter() - started, symmetry, r.ref.command_names,
                                 overcommitted=bool(kt.header.get("warnings")), static=static_powers(sys_spec))
    return acc, r.ref, r.pim_mems, tables, summary


class _Replay:
    """What every step of a kernel trace's replay shares: the PIM memories, the resources the
    kernels hold, the kernel timer, the step scheduler, the accumulator and each template's
    plans."""

    def __init__(self, kt, sys_spec, trace, symmetry, command_log, interference, state, totals_only):
        header = kt.header
        missing = sorted({k["device"] for k in kt.kernels} - set(sys_spec.devices) - set(sys_spec.links))
        if missing:
            raise KernelReplayError(f"{trace}: kernels run on {', '.join(missing)}, which system "
                                    f"{sys_spec.name!r} does not have")
        pim_mems = state.pim_mems if state is not None and state.pim_mems is not None else {}
        if not pim_mems:
            for dev in sys_spec.devices.values():
                pool = sys_spec.memories[dev.memory]
                if dev.kind == "pim" and dev.memory not in pim_mems:
                    pim_mems[dev.memory] = PimMemory(pool, command_log and not pim_mems, dev.count)
                    if state is not None:
                        pim_mems[dev.memory].composition = state.composition
            if state is not None:
                state.pim_mems = pim_mems
        self.pim_mems = pim_mems
        # the clock that cycles are counted in: the first PIM memory's, else the first memory's standard
        self.ref = next(iter(pim_mems.values())).spec if pim_mems else next(iter(sys_spec.memories.values())).spec
        model = header.get("model", {})
        group_size = max(1, int(model.get("heads", 1)) // max(1, int(model.get("kv_heads", 1) or 1)))

        regions = header["placement"]["regions"]
        held = Resources(sys_spec, kt.kernels, regions, turns=not interference.enabled)
        self.timer = _Timer(sys_spec, pim_mems, symmetry, group_size, held)
        if state is not None:
            self.timer.memo = state.timings
        holds = [held.of(k) for k in kt.kernels]
        self.scheduler = StepScheduler(holds)
        self.acc = Totals(kt) if totals_only else \
            Accumulator(kt, pim_mems, self.ref.tck_ns, logged=next(iter(pim_mems)) if command_log and pim_mems else None)
        first = {k["id"]: i for i, k in enumerate(kt.kernels)}
        self.templates = {t: (kernels, self.scheduler.plan(kernels, [holds[first[k["id"]]] for k in kernels]),
                              self.acc.plan(kernels))
                          for t, kernels, _ in kt.templates()}
        self.intf = Interference(sys_spec, pim_mems, held, regions, interference) if interference.enabled else None


class _TemplateRun:
    """The steps of one template: kernels that do not grow take the same time every step and are
    timed once; growing kernels that time alike (the same kernel in every layer) form one class,
    timed once per step. `grown`: the interference of a step is that of its grown kernels (else,
    as a replay of a trace has always done, of the template's)."""

    def __init__(self, replay, kernels, plan, rows, grown=False, parsed=None):
        self.r, self.kernels, self.plan, self.rows, self.grown = replay, kernels, plan, rows, grown
        timer = replay.timer
        n = len(kernels)
        timings = [None if k.get("grow") else timer(k) for k in kernels]
        self.fixed = [i for i in range(n) if timings[i] is not None]
        classes = {}
        for i in range(n):
            if timings[i] is None:
                grow = parse_grow(kernels[i]) if parsed is None else parsed[i]
                key = (timer.signature(kernels[i]), tuple(grow))
                classes.setdefault(key, (i, grow, []))[2].append(i)
        self.growing = list(classes.values())
        self.grown_rows = [i for _, _, members in self.growing for i in members]
        self.durations = np.array([0.0 if x is None else x.duration_ns for x in timings])
        self.lags = np.array([0.0 if x is None else x.latency_ns for x in timings])
        self.energy = np.array([[0.0] * len(ENERGY_KINDS) if x is None else [x.energy[e] for e in ENERGY_KINDS]
                                for x in timings]).reshape(n, len(ENERGY_KINDS))
        self.fixed_timings = [timings[i] for i in self.fixed]
        self.logging = replay.acc.logged is not None   # then every step's PIM commands are logged at its start
        self.kinds = replay.intf.kinds(kernels) if replay.intf is not None else None
        self.shared = self.kinds is not None and any(self.kinds)
        self.sigs = [timer.signature(k) for k in kernels] if self.shared else None

    def step(self, offset):
        """Time and schedule the template's step `offset` into the accumulator: (starts, ends)."""
        r, kernels, plan, rows = self.r, self.kernels, self.plan, self.rows
        durations, lags, energy = self.durations, self.lags, self.energy
        grown = []
        step_kernels, sigs = kernels, self.sigs
        if self.grown and self.shared and offset:
            step_kernels, sigs = list(kernels), list(sigs)
        for i, parsed, members in self.growing:
            k = kernel_at(kernels[i], offset, parsed)
            x = r.timer(k, remember=False)
            durations[members] = x.duration_ns
            lags[members] = x.latency_ns
            energy[members] = [x.energy[e] for e in ENERGY_KINDS]
            grown.extend([x] * len(members))
            if step_kernels is not kernels:
                for m in members:
                    step_kernels[m] = k if m == i else kernel_at(kernels[m], offset, parsed)
                    sigs[m] = r.timer.signature(step_kernels[m])
        if self.shared:
            saved = r.scheduler.state()
            starts, ends = r.scheduler.run(plan, durations, lags)
            lost, conflicts, blocked = r.intf.losses(step_kernels, self.kinds, sigs, starts, ends)
            if lost.any():
                # second pass: each kernel takes what it lost to the other device's traffic
                r.scheduler.restore(saved)
                starts, ends = r.scheduler.run(plan, durations + lost, lags)
            r.acc.add_interference(rows, lost, conflicts, blocked)
        else:
            starts, ends = r.scheduler.run(plan, durations, lags)
        r.acc.add_step(rows, offset, energy, starts, ends)
        r.acc.add_timings(rows, self.grown_rows, grown, starts=starts)
        if self.logging:
            r.acc.add_timings(rows, self.fixed, self.fixed_timings, starts=starts)
        return starts, ends


class StepRun:
    """A one-step kernel trace whose kernels may grow (`grow`), timed at any offset from its step
    on its own (each offset a fresh schedule, as simulate_kernel_trace of the grown trace): the
    trace's setup and the timings of its kernels that do not grow are done once (the serving step
    timer's consecutive decode steps). Calling it with `offset` gives (seconds, joules)."""

    def __init__(self, kt, system, interference=None, state=None):
        interference = interference or InterferenceOptions()
        self.kt, self.system = kt, system
        self.replay = _Replay(kt, system, "kernel trace", True, False, interference, state, True)
        (t, _, _), = kt.step_runs()
        self.run = _TemplateRun(self.replay, *self.replay.templates[t], grown=True)
        self.start = self.replay.scheduler.state()
        self.static = static_powers(system)

    def grown(self, records, parsed=None):
        """This step with `records` for its kernel records (the same kernels, with `grow`): a
        StepRun sharing this one's setup (resources, plans, scheduler). `parsed`: each record's
        parse_grow, when the caller has them."""
        out = object.__new__(StepRun)
        out.kt, out.system, out.replay, out.start, out.static = \
            KernelTrace(self.kt.header, records), self.system, self.replay, self.start, self.static
        (t, _, _), = self.kt.step_runs()
        _, plan, rows = self.replay.templates[t]
        keep = [i for i, r in enumerate(records) if r.get("template", 0) == t]
        out.run = _TemplateRun(self.replay, [records[i] for i in keep], plan, rows, grown=True,
                               parsed=None if parsed is None else [parsed[i] for i in keep])
        return out

    def __call__(self, offset):
        r = self.replay
        r.scheduler.restore(self.start)
        r.acc = Totals(self.kt)
        self.run.step(offset)
        _, summary = r.acc.tables(0.0, True, (), False, static=self.static)
        return summary["simulated_seconds"], summary["energy_j"]


class _Timer:
    """A kernel's KernelTiming on its device or link, remembered by what determines it."""

    def __init__(self, system, pim_mems, symmetry, group_size, held):
        self.system, self.pim_mems, self.symmetry, self.group_size = system, pim_mems, symmetry, group_size
        self.held = held
        self.memo = {}

    def __call__(self, k, remember=True):
        """`remember=False`: a grown kernel, whose numbers recur rarely; neither looked up nor
        kept (PIM runs are still reused through the memory's own caches)."""
        if not remember:
            return self._time(k)
        key = self.signature(k)
        timing = self.memo.get(key)
        if timing is None:
            timing = self._time(k)
            if remember:
                self.memo[key] = timing
        elif timing.source == "simulated":
            return dataclasses.replace(timing, source="reused")
        return timing

    def signature(self, k):
        """Everything a kernel's timing depends on (_signature), its regions by the channels
        they take (the same kernel of every layer then has one signature)."""
        sig = _signature(k, self.held.regions)
        dev = self.system.devices.get(k["device"])
        if dev is not None and dev.kind == "pim":
            sig += (self.held.channels(k),)
        return sig

    def _time(self, k):
        name = k["device"]
        if name in self.system.links:
            return link_timing(k, self.system.links[name], self.system)
        dev = self.system.devices[name]
        pm = self.pim_mems.get(dev.memory) if dev.kind == "pim" else None
        timing = None
        if pm is not None and pm.mode is not None:
            lo, hi = self.held.channels(k)
            try:
                timing = pim_timing(pm, k, self.symmetry, hi - lo)
            except ValueError as exc:       # the lowering's check: the kernel does not fit the memory
                raise KernelReplayError(f"kernel {k['id']} ({k['name']}, layer {k['layer']}) on {name}: {exc}") from None
        return timing if timing is not None else xpu_timing(k, dev, self.group_size)


def _signature(k, regions):
    """Everything a kernel's timing depends on (device, kind, shape, FLOPs, bytes, the work's
    spread over requests and heads, the collective, where its operands live: their memory and
    channels). Layer, id and tensor names are not part of it."""
    def where(o):
        r = regions.get(o.get("region"))
        if r is None:
            return o.get("region")
        return (r["memory"], r["kind"], tuple(r.get("channels", ())))
    return (k["device"], k["name"], k["op"], k["flops"], k["bytes_read"], k["bytes_written"],
            tuple(sorted(k["shape"].items())), len(k.get("requests", ())), tuple(k.get("kv_heads", ())),
            k.get("reuse"), k.get("collective"), tuple((o["bytes"], o.get("role"), where(o)) for o in k["operands"]),
            as_tuple(k["contexts"]) if k.get("contexts") else ())


def system_of(trace, header, system, overrides):
    """The system a trace replays on: `system` when given, else the header's (embedded whole
    since format 1.2; by preset name before). An invalid header is an error naming the trace."""
    if system is not None:
        return load_system(system, overrides)
    embedded = header["system"]
    try:
        if tuple(header["version"]) >= (1, 2):
            return load_system(embedded, overrides, origin=f"{trace}:1: header system")
        return load_system(embedded["name"], overrides)          # 1.0, 1.1: the preset it names
    except ConfigError as exc:
        raise KernelReplayError(str(exc)) from None


def is_kernel_trace(path):
    """Whether `path` (a path or a TraceSource) starts like a kernel trace (JSON object with the
    kernel-trace format)."""
    try:
        first = trace_source(path).peek(4096).split(b"\n", 1)[0]
    except (OSError, PimdramError):
        return False
    return first.lstrip().startswith(b"{") and b"pimdram.kernel-trace" in first
