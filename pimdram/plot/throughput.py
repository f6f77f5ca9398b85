"""Throughput (or any result) of a sweep against batch size or context, one line per system."""
from pathlib import Path

from ..errors import PimdramError
from .style import axes_or_new, label, system_colors

#: inputs the x axis may default to, in order of preference
X_CANDIDATES = ("batch", "context", "prompt_tokens", "output_tokens", "speculation")
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def load_table(table):
    """A results DataFrame, from a path (read_results) or as given."""
    if isinstance(table, (str, Path)):
        from ..sweep import read_results
        return read_results(table)
    return table


def throughput(table, ax=None, x=None, y="tokens_per_s", by="system", title=None):
    """Draw `y` (default tokens_per_s) against input `x` from a sweep results table (a DataFrame
    or a path), one line per value of `by` (default system) — and per combination of any other
    input that varies, told apart by line style. Only points with status ok are drawn; a note
    counts the others. Returns the axes."""
    import pandas as pd

    frame = load_table(table)
    meta = frame.attrs.get("pimdram", {})
    inputs = meta.get("inputs") or [c for c in frame.columns if c not in ("point", "status", "error")]
    units = frame.attrs.get("units", {})
    for column, what in ((y, "--y"), (by, "--by")):
        if column not in frame.columns:
            raise PimdramError(f"the table has no column {column!r} (for {what}); it has {', '.join(frame.columns)}")
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    if x is None:
        varying = [c for c in X_CANDIDATES if c in inputs and ok[c].nunique() > 1]
        if not varying:
            raise PimdramError("no batch, context or token count varies over the table's points; "
                               "choose the x axis with --x COLUMN")
        x = varying[0]
    if x not in frame.columns:
        raise PimdramError(f"the table has no column {x!r} (for --x); it has {', '.join(frame.columns)}")
    for column, what in ((x, "--x"), (y, "--y")):
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            raise PimdramError(f"column {column!r} (for {what}) holds text, not numbers; choose a numeric column")
    others = [c for c in inputs if c not in (x, by) and ok[c].nunique(dropna=False) > 1]
    fixed = {c: ok[c].iloc[0] for c in inputs if c not in (x, by) and c not in others and len(ok)}

    ax = axes_or_new(ax)
    colors = system_colors(ok[by].dropna().tolist()) if by == "system" else {}
    styles = {}
    for series, rows in ok.groupby([by] + others, sort=True, dropna=False):
        series = series if isinstance(series, tuple) else (series,)
        name, rest = series[0], series[1:]
        rows = rows.sort_values(x)
        style = styles.setdefault(rest, len(styles))
        text = str(name) + "".join(f", {c}={v}" for c, v in zip(others, rest))
        ax.plot(rows[x].to_numpy(dtype=float), rows[y].to_numpy(dtype=float), label=text,
                color=colors.get(str(name)),
                linestyle=_LINESTYLES[style % len(_LINESTYLES)], marker=_MARKERS[style % len(_MARKERS)])
    values = ok[x].dropna().astype(float)
    if len(values) and values.min() > 0 and values.max() / values.min() >= 16:
        # batch sizes and contexts grow in powers: a log axis, ticked at the values swept
        ax.set_xscale("log", base=2)
        ticks = sorted(set(values.tolist()))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(label(x, units.get(x)))
    ax.set_ylabel(label(y, units.get(y)))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if len(ok):
        ax.legend(title=by if not others else f"{by}, " + ", ".join(others), fontsize="small")
    failed = len(frame) - len(ok)
    if failed:
        ax.text(0.99, 0.01, f"{failed} failed point{'s' if failed > 1 else ''} not shown", transform=ax.transAxes,
                ha="right", va="bottom", fontsize="small", color="#d62728")
    if title is None:
        source = (meta.get("sweep") or {}).get("file")
        head = f"{label(y, units.get(y)).split(' (')[0].capitalize()} vs {label(x).split(' (')[0]}"
        head += f" — {Path(source).name}" if source else ""
        given = ", ".join(f"{c}={v}" for c, v in fixed.items() if not pd.isna(v))
        title = head + (f"\n{given}" if given else "")
    ax.set_title(title, fontsize="medium")
    return ax
