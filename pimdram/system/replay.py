"""Replays a kernel trace (`pimdram gen`) on a system: each kernel gets a duration and an energy
on its device, and the kernels are list-scheduled by their dependencies.

- A kernel on a PIM device whose design has a lowering is simulated at command level (system.pim).
- Any other kernel on a device takes the xPU model (system.xpu): roofline with utilisation
  limits and occupancy, at least the device's fixed cost per kernel.
- A transfer or collective takes the link model (system.links).
- A device (or link) runs one kernel at a time; kernels on different devices overlap, except
  that devices sharing a memory whose PIM design runs in blocked mode take turns (system.schedule).

The system comes from the trace header (format 1.2 embeds it whole, so a trace replays without
the files it was made from), or from `system` (a preset name, YAML path or config.system.System),
which overrides it.
"""
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import yaml

from ..config.files import SafeDumper
from ..config.system import load_system
from ..errors import ConfigError, PimdramError
from ..replay import ReplayResult
from ..stats import StatsWriter, schema
from ..trace.kernels import read_kernel_trace
from .links import link_timing
from .pim import PimMemory, pim_timing
from .schedule import list_schedule, resources
from .tables import kernel_tables
from .xpu import xpu_timing


class KernelReplayError(PimdramError):
    """A kernel trace cannot be replayed on the system given."""


def replay_kernels(trace, output, *, system=None, overrides=None, symmetry=True, command_log=False,
                   overwrite=False, progress=None):
    """Replay kernel trace `trace` on its header's system (or `system`) and write the statistics
    to `output`. Returns a ReplayResult whose summary also holds tokens_per_s and the energy.

    command_log: keep the commands of the first PIM memory's kernels (of its simulated channels,
    each kernel from its start cycle) in table command_log, for `pimdram check`."""
    started = time.perf_counter()
    trace = Path(trace)
    kt = read_kernel_trace(trace)
    header = kt.header
    sys_spec = system_of(trace, header, system, overrides)
    missing = sorted({k["device"] for k in kt.kernels} - set(sys_spec.devices) - set(sys_spec.links))
    if missing:
        raise KernelReplayError(f"{trace}: kernels run on {', '.join(missing)}, which system "
                                f"{sys_spec.name!r} does not have")
    pim_mems = {}
    for dev in sys_spec.devices.values():
        pool = sys_spec.memories[dev.memory]
        if dev.kind == "pim" and dev.memory not in pim_mems:
            pim_mems[dev.memory] = PimMemory(pool, command_log and not pim_mems)
    # the clock that cycles are counted in: the first PIM memory's, else the first memory's standard
    ref = next(iter(pim_mems.values())).spec if pim_mems else next(iter(sys_spec.memories.values())).spec
    model = header.get("model", {})
    group_size = max(1, int(model.get("heads", 1)) // max(1, int(model.get("kv_heads", 1) or 1)))

    timings = []
    n = len(kt.kernels)
    for i, k in enumerate(kt.kernels):
        name = k["device"]
        if name in sys_spec.links:
            timing = link_timing(k, sys_spec.links[name], sys_spec)
        else:
            dev = sys_spec.devices[name]
            pm = pim_mems.get(dev.memory) if dev.kind == "pim" else None
            timing = pim_timing(pm, k, symmetry) if pm is not None and pm.mode is not None else None
            if timing is None:
                timing = xpu_timing(k, dev, group_size)
        timings.append(timing)
        if progress is not None and (i % 256 == 0 or i == n - 1):
            progress(i + 1, n)
    resource = resources(sys_spec)
    starts, ends = list_schedule(kt.kernels, [t.duration_ns for t in timings],
                                 [resource[k["device"]] for k in kt.kernels])
    rows = [(k, starts[i], ends[i], timings[i]) for i, k in enumerate(kt.kernels)]
    makespan_ns = max((r[2] for r in rows), default=0.0)
    warnings = list(header.get("warnings", []))
    tables, summary = kernel_tables(kt, rows, makespan_ns, ref.tck_ns, time.perf_counter() - started, pim_mems,
                                    symmetry, ref.command_names, overcommitted=bool(warnings))
    config = {"system": sys_spec.to_dict(), "symmetry": bool(symmetry)}
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
        "warnings": json.dumps(warnings),
    }
    with StatsWriter(output, attrs, overwrite=overwrite) as writer:
        for name, table in tables.items():
            writer.write_table(name, table)
        if command_log and pim_mems:
            _write_command_log(writer, ref, rows, next(iter(pim_mems)))
    return ReplayResult(Path(output), summary)


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


def is_kernel_trace(path):
    """Whether `path` starts like a kernel trace (JSON object with the kernel-trace format)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return False
    return first.lstrip().startswith(b"{") and b"pimdram.kernel-trace" in first
