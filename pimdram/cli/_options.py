"""Options shared by several pimdram commands, defined once."""
import functools
import sys
from pathlib import Path

import click


def output_option(required=True, help="Output file."):
    return click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
                        required=required, help=help)


overwrite_option = click.option("--overwrite", is_flag=True, default=False,
                                help="Replace the output file if it exists.")

progress_option = click.option("--progress/--no-progress", default=None,
                               help="Show a progress bar (default: when stderr is a terminal).")

seed_option = click.option("--seed", type=int, default=0, show_default=True,
                           help="Seed for every random choice (same seed, same results).")


def verbosity_options(f):
    @click.option("-v", "--verbose", count=True, help="More messages.")
    @click.option("-q", "--quiet", is_flag=True, help="Only errors.")
    @functools.wraps(f)
    def wrapper(*args, verbose, quiet, **kwargs):
        return f(*args, verbosity=-1 if quiet else verbose, **kwargs)
    return wrapper


def check_output(path, overwrite):
    """Refuse to replace an existing output without --overwrite."""
    if path is not None and Path(path).exists() and not overwrite:
        raise click.UsageError(f"{path} exists; pass --overwrite to replace it")


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
