"""Options shared by several pimdram commands, defined once."""
import functools
import math
import os
import sys
from pathlib import Path

import click


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses NaN and infinity ("nan" passes any range check: every
    comparison with it is false)."""

    name = "float"

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number", param, ctx)
        return value


def output_file(ctx, param, value):
    """Callback of an output option: the file name as a Path; an empty name is an error (Path('')
    would be the current directory), and so are a name ending in a slash and "-"."""
    if value is None:
        return None
    text = str(value)
    if not text.strip():
        raise click.BadParameter("the file name is empty", ctx=ctx, param=param)
    # Path() drops a trailing slash and reads "-" as a name: check the text as typed
    if text.endswith(("/", os.sep)):
        raise click.BadParameter(f"{text} names a directory; give a file name", ctx=ctx, param=param)
    if text == "-":
        raise click.BadParameter("pimdram writes this output to a file, not to standard output; give a file "
                                 "name (./- for a file named '-')", ctx=ctx, param=param)
    return Path(value)


def output_option(required=True, help="Output file."):
    return click.option("-o", "--output", "output", type=click.Path(dir_okay=False), callback=output_file,
                        required=required, help=help)


overwrite_option = click.option("--overwrite", is_flag=True, default=False,
                                help="Replace the output file if it exists.")

progress_option = click.option("--progress/--no-progress", default=None,
                               help="Show a progress bar (default: when stderr is a terminal).")

seed_option = click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                           help="Seed for every random choice (same seed, same results).")


def verbosity_options(f):
    @click.option("-v", "--verbose", count=True, help="More messages.")
    @click.option("-q", "--quiet", is_flag=True, help="Only errors.")
    @functools.wraps(f)
    def wrapper(*args, verbose, quiet, **kwargs):
        return f(*args, verbosity=-1 if quiet else verbose, **kwargs)
    return wrapper


def check_output(path, overwrite, inputs=()):
    """Check an output before any work is done (pimdram._atomic.output_path): an existing file
    is replaced only with --overwrite, and never when it is a directory, a device, a pipe or one
    of `inputs`; a missing directory or an unwritable one is an error too."""
    from .._atomic import output_path
    from ..errors import OutputExistsError

    if path is None:
        return
    try:
        output_path(path, overwrite=overwrite, inputs=[i for i in inputs if i is not None])
    except OutputExistsError:
        raise click.UsageError(f"{path} exists; pass --overwrite to replace it") from None


class ProgressBar:
    """A progress callback `cb(done, total[, counts])` that draws a click progress bar on stderr;
    `counts` (a mapping, e.g. ok / failed / cached points) is shown after the bar."""

    def __init__(self, label, enabled):
        self.label = label
        self.enabled = enabled
        self._bar = None
        self._done = 0

    def __call__(self, done, total, counts=None):
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=max(int(total), 1), label=self.label, file=sys.stderr,
                                          item_show_func=lambda text: text)
            self._bar.__enter__()
        step = int(done) - self._done
        text = ", ".join(f"{v} {k}" for k, v in counts.items()) if counts else None
        if step > 0 or text is not None:
            self._bar.update(max(step, 0), text)
            self._done = max(self._done, int(done))

    def close(self):
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def want_progress(flag):
    if flag is not None:
        return flag
    return sys.stderr.isatty()


def format_rows(rows, indent="  "):
    """Rows of text cells as lines of left-aligned columns (the last column is not padded)."""
    rows = [[str(c) for c in row] for row in rows]
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [indent + "  ".join([c.ljust(w) for c, w in zip(r, widths)] + r[len(widths):]).rstrip()
            for r in rows]
