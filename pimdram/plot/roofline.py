"""The kernels of a trace (or of a kernel replay) on the rooflines of the devices they run on."""
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .style import _PALETTE, axes_or_new

_MARKERS = {"attention": "o", "fc": "s", "norm": "^", "other": "D"}


def kernel_points(source):
    """(kernels, system, description) of a kernel trace (.jsonl) or a kernel replay's stats file:
    kernels as dicts {name, device, flops, bytes, seconds (None for a trace)}, the resolved
    System they ran on."""
    from ..config.system import load_system

    path = Path(source)
    from ..system import is_kernel_trace
    if is_kernel_trace(path):
        from ..trace.kernels import read_kernel_trace
        kt = read_kernel_trace(path)
        kernels = [{"name": k["name"], "device": k["device"], "flops": k["flops"],
                    "bytes": k["bytes_read"] + k["bytes_written"], "seconds": None} for k in kt.kernels]
        system = load_system(kt.header["system"], origin=f"{path}:1: header system")
        workload = kt.header.get("workload", {})
        what = (f"{kt.header.get('model', {}).get('name', '?')}, {workload.get('phase', '?')}, "
                f"batch {workload.get('batch', '?')}, on {system.name}")
        return kernels, system, what
    from ..stats import open_stats, schema
    with open_stats(path) as sf:
        if schema.KERNELS not in sf.tables:
            raise FileFormatError(f"{path} is neither a kernel trace nor a kernel replay's stats file")
        t = sf.table(schema.KERNELS, columns=["name", "device", "flops", "bytes", "start_ns", "end_ns"])
        config = sf.config if isinstance(sf.config, dict) else {}
        description = sf.attrs.get("description", "")
    if "system" not in config:
        raise FileFormatError(f"{path}: its config holds no system (written before stats format 1.2?)")
    system = load_system(config["system"], origin=f"{path}: config system")
    seconds = (t["end_ns"] - t["start_ns"]) * 1e-9
    kernels = [{"name": n, "device": d, "flops": int(f), "bytes": int(b), "seconds": float(s)}
               for n, d, f, b, s in zip(t["name"].tolist(), t["device"].tolist(), t["flops"], t["bytes"], seconds)]
    return kernels, system, description or system.name


def roofline(source, ax=None, title=None):
    """Each device's roofline — min(peak FLOP/s, bandwidth × FLOP/B), the devices' datasheet or
    derived (PIM) figures over all of a device's count — and the kernels of `source` on it: at
    their attainable performance for a kernel trace, at their achieved performance (FLOPs /
    duration) for a kernel replay's stats file. Kernels without FLOPs or bytes (transfers,
    collectives) are left out. Returns the axes."""
    from ..llm.kernels import kernel_kind

    kernels, system, what = kernel_points(source)
    used = [name for name in system.devices if any(k["device"] == name for k in kernels)]
    ax = axes_or_new(ax)
    points = [k for k in kernels if k["flops"] > 0 and k["bytes"] > 0 and k["device"] in system.devices]
    intensities = [k["flops"] / k["bytes"] for k in points]
    lo = min([*intensities, 1.0]) / 4
    hi = max([*intensities, *(system.devices[d].peak_flops / system.devices[d].bandwidth for d in used
                              if system.devices[d].peak_flops and system.devices[d].bandwidth)]) * 4
    grid = np.geomspace(lo, hi, 256)
    colors = {}
    for i, name in enumerate(used):
        dev = system.devices[name]
        colors[name] = _PALETTE[i % len(_PALETTE)]
        if not dev.peak_flops or not dev.bandwidth:
            continue
        ridge = dev.peak_flops / dev.bandwidth
        ax.plot(grid, np.minimum(dev.peak_flops, dev.bandwidth * grid) / 1e12, color=colors[name],
                label=f"{name} ({dev.count} × {dev.kind}): {dev.peak_flops / 1e12:,.0f} TFLOP/s, "
                      f"{dev.bandwidth / 1e12:,.1f} TB/s, ridge {ridge:,.1f} FLOP/B")
    seen = {}
    for k, intensity in zip(points, intensities):
        dev = system.devices[k["device"]]
        if k["seconds"]:
            perf = k["flops"] / k["seconds"]
        elif dev.peak_flops and dev.bandwidth:
            perf = min(dev.peak_flops, dev.bandwidth * intensity)
        else:
            continue
        kind = kernel_kind(k["name"])
        seen.setdefault((kind, k["device"]), set()).add((intensity, perf / 1e12))
    for (kind, device), xy in seen.items():
        xs, ys = zip(*sorted(xy))
        ax.scatter(xs, ys, marker=_MARKERS.get(kind, "D"), color=colors[device], edgecolor="black",
                   linewidth=0.5, zorder=3, label=f"{kind} kernels on {device}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/B)")
    ax.set_ylabel("performance (TFLOP/s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small")
    if title is None:
        achieved = "achieved" if any(k["seconds"] for k in points) else "attainable"
        title = f"Kernels on the devices' rooflines ({achieved} performance)\n{Path(source).name}: {what}"
    ax.set_title(title, fontsize="medium")
    return ax
