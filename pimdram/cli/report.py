"""`pimdram report`: summarise a stats file as readable text or as one JSON object, or print one of
its tables as CSV."""
import json
import sys
from pathlib import Path

import click

from ..stats.report import format_report, summarize


@click.command("report")
@click.argument("stats_file", metavar="STATS.h5", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=False,
              help="Print one JSON object (machine-readable) instead of text.")
@click.option("--kernels", "full_kernels", is_flag=True, default=False,
              help="Kernel replays: also list every kernel (by default they are summed by kind and device).")
@click.option("--csv", "csv_table", metavar="TABLE",
              help="Print table TABLE of the file (e.g. kernels, channels, summary) as CSV instead.")
def command(stats_file, as_json, full_kernels, csv_table):
    """Summarise STATS.h5: run, commands, row-buffer hit rate, bandwidth, latency, energy; for a
    kernel replay tokens/s and the kernels' time and energy by kind and device.

    \b
    Examples:
      pimdram report out.h5
      pimdram report step.h5 --kernels
      pimdram report out.h5 --json
      pimdram report step.h5 --csv kernels > kernels.csv
    """
    if csv_table is not None:
        if as_json or full_kernels:
            raise click.UsageError("--csv prints one table; it does not combine with --json or --kernels")
        from ..stats.reader import write_table_csv
        write_table_csv(stats_file, csv_table, sys.stdout)
        return
    summary = summarize(stats_file)
    if as_json:
        click.echo(json.dumps(summary, indent=2, allow_nan=False))
    else:
        click.echo(format_report(summary, full_kernels=full_kernels), nl=False)
