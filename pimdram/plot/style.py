"""What every pimdram figure shares: matplotlib loaded on demand (an optional extra), new axes
without pyplot, one colour per system across all plots, axis labels with units."""
from ..errors import PimdramError

#: twenty distinguishable colours: matplotlib's tab20, the dark half first
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
            "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")

#: colours of the kernel kinds (llm.kernels.REPORT_KINDS) in breakdowns
KIND_COLORS = {"attention": "#1f77b4", "fc": "#ff7f0e", "norm": "#2ca02c", "communication": "#d62728",
               "other": "#7f7f7f"}
#: hatches telling devices apart inside one kind
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")

#: axis labels of known columns (unit in parentheses)
LABELS = {
    "batch": "batch size (requests)",
    "context": "context (tokens)",
    "prompt_tokens": "prompt (tokens)",
    "output_tokens": "output (tokens)",
    "speculation": "speculation length (tokens)",
    "tokens_per_s": "throughput (tokens/s)",
    "decode_tokens_per_s": "decode throughput (tokens/s)",
    "energy_j": "energy (J)",
    "energy_per_token_j": "energy per token (J)",
    "simulated_seconds": "simulated time (s)",
    "decode_seconds": "decode time (s)",
    "prefill_seconds": "prefill time (s)",
    "bandwidth": "bandwidth (B/s)",
}


def matplotlib():
    """The matplotlib module, or a PimdramError saying how to install it."""
    try:
        import matplotlib as mpl
        import matplotlib.figure  # noqa: F401  (the object-oriented API; no pyplot)
    except ImportError:
        raise PimdramError("plots need matplotlib: pip install 'pimdram[plot]'") from None
    return mpl


def new_figure(width=6.4, height=4.4, ncols=1):
    """A Figure (no pyplot state) with `ncols` axes side by side; (figure, [axes])."""
    matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def axes_or_new(ax):
    """`ax`, or the axes of a new figure."""
    if ax is not None:
        return ax
    return new_figure()[1][0]


#: the shipped systems' colours, so that a system looks the same in every figure of every study:
#: GPU-only baselines grey and black, the AttAcc family blues and purple, the NeuPIMs family greens
#: (tab10 and tab20 colours)
SYSTEM_COLORS = {
    "a100": "#7f7f7f", "dgx-a100": "#7f7f7f", "dgx-a100-x2": "#3b3b3b", "dgx-h100": "#000000",
    "dgx-attacc": "#1f77b4", "dgx-attacc-bankgroup": "#aec7e8", "dgx-attacc-buffer": "#9467bd",
    "attacc-stack-bank": "#1f77b4", "attacc-stack-bankgroup": "#aec7e8", "attacc-stack-buffer": "#9467bd",
    "dgx-hbm-pim": "#bcbd22", "papi": "#d62728", "neupims": "#2ca02c", "neupims-naive": "#98df8a",
    "npu-only": "#8c564b", "ianus": "#ff7f0e", "pim-only": "#e377c2", "hybe": "#17becf",
}


def system_colors(names):
    """A colour for each system name: its own for the shipped systems (SYSTEM_COLORS), and for any
    other name the first palette colours no system of `names` uses, in sorted order (the same
    names always get the same colours)."""
    names = sorted({str(n) for n in names})
    out = {n: SYSTEM_COLORS[n] for n in names if n in SYSTEM_COLORS}
    free = [c for c in _PALETTE if c not in out.values()] or list(_PALETTE)
    for i, n in enumerate(n for n in names if n not in out):
        out[n] = free[i % len(free)]
    return out


_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def scaled(unit, largest):
    """(factor, unit with an SI prefix) so that `largest` reads between 1 and 1000: divide values
    by the factor."""
    if not largest or largest != largest:
        return 1.0, unit
    for factor, prefix in _PREFIXES:
        if abs(largest) >= factor:
            return factor, prefix + unit
    return _PREFIXES[-1][0], _PREFIXES[-1][1] + unit


def label(column, unit=None):
    """An axis label for a table column: the known label, else `column (unit)`."""
    if column in LABELS:
        return LABELS[column]
    text = column.replace("_", " ")
    return f"{text} ({unit})" if unit and unit != "1" else text
