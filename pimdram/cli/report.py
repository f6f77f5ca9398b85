"""`pimdram report`: summarise a stats file as readable text or as one JSON object."""
import json
from pathlib import Path

import click

from ..stats.report import format_report, summarize


@click.command("report")
@click.argument("stats_file", metavar="STATS.h5", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=False,
              help="Print one JSON object (machine-readable) instead of text.")
def command(stats_file, as_json):
    """Summarise STATS.h5: run, commands, row-buffer hit rate, bandwidth, latency, energy."""
    summary = summarize(stats_file)
    if as_json:
        click.echo(json.dumps(summary, indent=2, allow_nan=False))
    else:
        click.echo(format_report(summary), nl=False)
