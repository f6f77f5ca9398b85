"""Figures of pimdram's results (docs/plots.md): throughput from a sweep table, time and energy by
kernel kind and device, rooflines, command timelines, latency CDFs. Each function draws on an
optional matplotlib Axes (a new figure's when none is given) and returns it; `make_figure` lays
out a whole figure the way `pimdram plot` saves it. matplotlib is the `plot` extra."""
from .breakdown import breakdown
from .latency import latency
from .roofline import roofline
from .throughput import throughput
from .timeline import timeline
from .style import new_figure

#: plot kind -> (what it reads, one line on what it shows)
KINDS = {
    "throughput": ("a sweep results table", "tokens/s (or --y) vs batch or context, one line per system"),
    "breakdown": ("kernel-replay stats files", "time and energy by kernel kind and device, stacked bars"),
    "roofline": ("a kernel trace or a kernel-replay stats file", "kernels on each device's roofline"),
    "timeline": ("a stats file with --command-log", "commands per bank over time, one channel"),
    "latency": ("request-replay stats files", "access latency CDFs, reads and writes"),
}


def make_figure(kind, inputs, **options):
    """The Figure `pimdram plot KIND INPUT...` saves. `options` are the keyword arguments of the
    kind's function (breakdown: `quantity` "time", "energy" or "both", the default)."""
    inputs = list(inputs)
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; kinds: {', '.join(KINDS)}")
    single = {"throughput": throughput, "roofline": roofline, "timeline": timeline}
    if kind in single:
        if len(inputs) != 1:
            from ..errors import PimdramError
            raise PimdramError(f"a {kind} plot takes one input ({KINDS[kind][0]}), got {len(inputs)}")
        fig, (ax,) = new_figure(width=7.5 if kind != "timeline" else 9.0, height=4.8)
        single[kind](inputs[0], ax=ax, **options)
        return fig
    if kind == "breakdown":
        quantity = options.pop("quantity", "both")
        quantities = ("time", "energy") if quantity == "both" else (quantity,)
        fig, axes = new_figure(width=max(3.5, 1.4 * len(inputs) + 1.5) * len(quantities) + 2.5, height=5.2,
                               ncols=len(quantities))
        handles = {}
        for ax, q in zip(axes, quantities):
            breakdown(inputs, ax=ax, quantity=q, legend=False, **options)
            for handle, text in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(text, handle)
        # one legend for both panels: the kinds and devices, and the run-time mark
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize="small",
                   title="kernel kind · device")
        return fig
    fig, (ax,) = new_figure(width=7.5, height=4.8)
    latency(inputs, ax=ax, **options)
    return fig


__all__ = ["KINDS", "breakdown", "latency", "make_figure", "new_figure", "roofline", "throughput", "timeline"]
