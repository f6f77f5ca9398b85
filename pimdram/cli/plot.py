"""`pimdram plot KIND INPUT... -o FIG`: a figure of sweep tables, stats files or kernel traces."""
import math
from pathlib import Path

import click

from ._options import check_output, output_file, overwrite_option

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
KIND_NAMES = ("throughput", "breakdown", "roofline", "timeline", "latency")
# option -> the plot kinds it applies to
APPLIES = {"x": ("throughput",), "y": ("throughput",), "by": ("throughput",), "quantity": ("breakdown",),
           "window": ("timeline",), "channel": ("timeline",), "level": ("timeline",)}


def _window(ctx, param, value):
    """START:END in ns, either side may be empty."""
    if value is None:
        return None
    start, sep, end = value.partition(":")
    if not sep:
        raise click.BadParameter("expected START:END in ns, e.g. 0:2000 or 5000:")
    try:
        bounds = tuple(float(v) if v.strip() else None for v in (start, end))
    except ValueError:
        raise click.BadParameter(f"expected numbers (ns), got {value!r}") from None
    if any(b is not None and not math.isfinite(b) for b in bounds):
        raise click.BadParameter(f"expected finite numbers (ns), got {value!r}")
    if None not in bounds and bounds[1] <= bounds[0]:
        raise click.BadParameter(f"the window ends before it starts: {value}")
    return bounds


@click.command("plot")
@click.argument("kind", type=click.Choice(KIND_NAMES))
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), callback=output_file, required=True,
              help="Figure to write: .png, .svg or .pdf.")
@click.option("--x", "x", metavar="COLUMN", help="throughput: the x axis (default: batch, else context, ...).")
@click.option("--y", "y", metavar="COLUMN", help="throughput: the y axis (default: tokens_per_s).")
@click.option("--by", "by", metavar="COLUMN", help="throughput: one line per value of (default: system).")
@click.option("--quantity", type=click.Choice(["time", "energy", "both"]),
              help="breakdown: time, energy or both panels (default: both).")
@click.option("--window", callback=_window, metavar="START:END", help="timeline: time window in ns, e.g. 0:5000.")
@click.option("--channel", type=click.IntRange(min=0), help="timeline: the channel (default: the first logged).")
@click.option("--level", metavar="LEVEL", help="timeline: one row per node of LEVEL (default: bank).")
@click.option("--title", help="Title instead of the one naming the inputs.")
@click.option("--dpi", type=click.IntRange(min=10, max=1200), default=150, show_default=True, help="Resolution of a .png.")
@overwrite_option
def command(kind, inputs, output, x, y, by, quantity, window, channel, level, title, dpi, overwrite):
    """Draw a KIND figure of INPUT... and save it to OUTPUT.

    \b
    Kinds and their inputs:
      throughput  a sweep table (pimdram sweep): tokens/s vs batch or context, a line per system
      breakdown   kernel-replay stats files: time and energy by kernel kind and device
      roofline    a kernel trace or a kernel-replay stats file: kernels on the devices' rooflines
      timeline    a stats file with --command-log: commands per bank over time, one channel
      latency     request-replay stats files: access latency CDFs
    \b
    Examples:
      pimdram plot throughput study.parquet -o throughput.png
      pimdram plot throughput study.csv --x context --y energy_per_token_j -o energy.pdf
      pimdram plot breakdown a100.h5 attacc.h5 -o breakdown.svg
      pimdram plot roofline step.jsonl -o roofline.png
      pimdram plot timeline attention.h5 --window 0:2000 -o timeline.png
      pimdram plot latency hbm2.h5 hbm3.h5 -o latency.png
    """
    from .._atomic import output_path, publish, temp_path_for, writing
    from ..plot import make_figure

    if output.suffix.lower() not in FIGURE_SUFFIXES:
        raise click.BadParameter(f"the figure is {', '.join(FIGURE_SUFFIXES)} (by its name), got {output.name}",
                                 param_hint="-o/--output")
    given = {"x": x, "y": y, "by": by, "quantity": quantity, "window": window, "channel": channel, "level": level}
    for name, value in given.items():
        if value is not None and kind not in APPLIES[name]:
            raise click.UsageError(f"--{name} applies to {' and '.join(APPLIES[name])} plots, not {kind}")
    options = {k: v for k, v in given.items() if v is not None}
    if title is not None:
        options["title"] = title
    check_output(output, overwrite, inputs)
    fig = make_figure(kind, inputs, **options)
    target = output_path(output, overwrite=overwrite, inputs=inputs)
    tmp = temp_path_for(target)
    try:
        with writing(target):
            fig.savefig(tmp, format=output.suffix.lower()[1:], dpi=dpi)
        publish(tmp, target, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {output}", err=True)
