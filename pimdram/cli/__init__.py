"""The `pimdram` command line: a click group whose subcommands live one per module."""
import importlib
import sys
import warnings

import click

from .._version import __version__
from ..errors import PimdramError, PimdramWarning

# subcommand name -> module (under pimdram.cli) that defines `command`
COMMANDS = {
    "replay": "replay",
    "report": "report",
    "check": "check",
    "config": "config",
    "gen": "gen",
    "model": "model",
    "system": "system",
    "sweep": "sweep",
    "plot": "plot",
    "validate": "validate",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (fast `--help`, light start)."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        module = COMMANDS.get(name)
        if module is None:
            return None
        return importlib.import_module(f"{__name__}.{module}").command

    def invoke(self, ctx):
        try:
            with warnings.catch_warnings():
                # pimdram's warnings (e.g. what an imported config does not carry over) become one
                # line each on stderr
                warnings.simplefilter("always", PimdramWarning)
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except PimdramError as exc:
            # library errors become one line, no traceback
            raise click.ClickException(str(exc)) from None


_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, PimdramWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pimdram")
def cli():
    """pimdram: DRAM-command-level simulation of processing-in-memory for LLM inference.

    \b
    Typical use:
      pimdram replay traces/example_hbm2.dramsim3 --memory hbm2_2gbps -o out.h5
      pimdram report out.h5
      pimdram check out.h5
      pimdram sweep study.yaml -o study.parquet && pimdram plot throughput study.parquet -o study.png
    """


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="pimdram", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover
        click.echo("pimdram: interrupted", err=True)
        sys.exit(130)
