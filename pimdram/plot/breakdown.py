"""Time and energy of kernel replays by kernel kind and device: stacked bars, one per stats file."""
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .style import HATCHES, KIND_COLORS, axes_or_new, scaled

QUANTITIES = ("time", "energy")


def kernel_breakdown(path):
    """{label, system, file, groups (report.kernels_by_kind), run_seconds, energy_j} of a kernel
    replay's stats file."""
    from ..stats import open_stats, schema
    from ..stats.report import kernels_by_kind

    with open_stats(path) as sf:
        if schema.KERNELS not in sf.tables:
            raise FileFormatError(f"{path} is not a kernel replay's stats file (no table 'kernels'); "
                                  "breakdown plots kernel traces replayed with pimdram replay")
        busy = ["busy_ns"] if "busy_ns" in sf.columns(schema.KERNELS) else []
        kernels = sf.table(schema.KERNELS, columns=["name", "device", "start_ns", "end_ns", "energy_j"] + busy)
        summary = sf.summary()
        config = sf.config if isinstance(sf.config, dict) else {}
        # since stats 1.5 the run's energy includes every device's static power over the run
        static = float(sf.table("run", columns=["static_energy_j"])["static_energy_j"][0]) \
            if "run" in sf.tables and "static_energy_j" in sf.columns("run") else 0.0
    system = (config.get("system") or {}).get("name", "")
    return {"file": Path(path).name, "system": system, "groups": kernels_by_kind(kernels),
            "run_seconds": summary["simulated_seconds"], "energy_j": summary["energy_j"], "static_j": static}


def _labels(runs):
    """A bar's label: its system, with the file name where two bars share a system."""
    systems = [r["system"] for r in runs]
    return [r["system"] if r["system"] and systems.count(r["system"]) == 1 else
            (f"{r['system']}\n{r['file']}" if r["system"] else r["file"]) for r in runs]


def breakdown(stats, ax=None, quantity="time", title=None, legend=True):
    """Stacked bars of kernel time (`quantity="time"`: summed kernel durations, with the run's
    simulated time marked) or energy (`"energy"`: the kernels' by kind and device, and on top the
    static energy of every device over the run, since stats 1.5) by kernel kind and device, one bar per stats file
    of a kernel replay (a path or a list of paths); the legend (unless `legend=False`) beside the
    axes. Returns the axes."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}, got {quantity!r}")
    paths = [stats] if isinstance(stats, (str, Path)) else list(stats)
    runs = [kernel_breakdown(p) for p in paths]
    key = "busy_seconds" if quantity == "time" else "energy_j"
    segments = []
    for r in runs:
        for g in r["groups"]:
            if (g["kind"], g["device"]) not in segments:
                segments.append((g["kind"], g["device"]))
    from ..llm.kernels import REPORT_KINDS
    segments.sort(key=lambda s: REPORT_KINDS.index(s[0]))
    heights = np.zeros((len(segments), len(runs)))
    for j, r in enumerate(runs):
        for g in r["groups"]:
            heights[segments.index((g["kind"], g["device"])), j] = g[key]
    static = np.array([r["static_j"] for r in runs]) if quantity == "energy" else np.zeros(len(runs))
    totals = heights.sum(axis=0) + static
    largest = max([*totals, *(r["run_seconds"] for r in runs)] if quantity == "time" else totals, default=0)
    factor, unit = scaled("s" if quantity == "time" else "J", largest)

    ax = axes_or_new(ax)
    x = np.arange(len(runs))
    bottom = np.zeros(len(runs))
    devices_of = {}
    for i, (kind, device) in enumerate(segments):
        seen = devices_of.setdefault(kind, [])      # devices of one kind: one hatch each
        hatch = HATCHES[len(seen) % len(HATCHES)]
        seen.append(device)
        ax.bar(x, heights[i] / factor, bottom=bottom, width=0.6, color=KIND_COLORS.get(kind, "#7f7f7f"),
               hatch=hatch, edgecolor="white", linewidth=0.5, label=f"{kind} · {device}")
        bottom += heights[i] / factor
    if static.any():
        ax.bar(x, static / factor, bottom=bottom, width=0.6, color="#d9d9d9", hatch="..", edgecolor="white",
               linewidth=0.5, label="static power · every device\n(idle or busy, over the run)")
    if quantity == "time":
        ax.hlines([r["run_seconds"] / factor for r in runs], x - 0.4, x + 0.4, colors="black",
                  linestyles="--", label="simulated run time\n(kernels on different\ndevices overlap)")
        ax.set_ylabel(f"summed kernel time ({unit})")
    else:
        ax.set_ylabel(f"energy ({unit})")
    ax.set_xticks(x, _labels(runs))
    ax.set_xlim(-0.6, len(runs) - 0.4)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if legend:
        ax.legend(fontsize="small", title="kernel kind · device", loc="upper left", bbox_to_anchor=(1.02, 1))
    if title is None:
        what = "Kernel time by kind and device" if quantity == "time" else "Energy by kernel kind and device"
        title = what + "\n" + ", ".join(r["file"] for r in runs)
    ax.set_title(title, fontsize="medium")
    return ax
