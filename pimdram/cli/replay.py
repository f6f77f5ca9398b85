"""`pimdram replay`: run a request trace on a memory system and write the statistics file."""
from pathlib import Path

import click

from ._options import (ProgressBar, check_output, output_option, overwrite_option, progress_option,
                       seed_option, want_progress)

FORMATS = ("auto", "ramulator", "dramsim3", "binary")


@click.command("replay")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--memory", "-m", required=True, metavar="NAME|FILE.yaml",
              help="Memory standard: a preset name (pimdram config list) or a YAML file.")
@click.option("--format", "trace_format", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Trace format; auto detects it from the file.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config value by dotted path, e.g. controller.read_queue=64 or timing.nCL=20 "
                   "(repeatable).")
@click.option("--command-log", is_flag=True, default=False,
              help="Keep every issued command in the stats file (for `pimdram check`).")
@progress_option
@seed_option
@output_option(help="Statistics file to write (HDF5).")
@overwrite_option
def command(trace, memory, trace_format, sets, command_log, progress, seed, output, overwrite):
    """Replay a request TRACE (Ramulator 2, DRAMsim3 or pimdram binary) on a memory system.

    \b
    Examples:
      pimdram replay traces/example_hbm2.dramsim3 --memory hbm2_2gbps -o out.h5
      pimdram replay big.trace --memory ddr4_3200 --set controller.row_policy=closed -o closed.h5
      pimdram replay t.dramsim3 -m dramsim3_hbm2_8gb_x128 --command-log -o t.h5 && pimdram check t.h5
    """
    from ..config.memory import parse_set_options
    from ..replay import replay_requests

    check_output(output, overwrite)
    bar = ProgressBar("replaying", want_progress(progress))
    try:
        result = replay_requests(trace, memory, output, trace_format=trace_format,
                                 overrides=parse_set_options(sets), command_log=command_log,
                                 overwrite=overwrite, progress=bar, seed=seed)
    finally:
        bar.close()
    s = result.summary
    click.echo(f"{output}: {s['requests']} requests in {s['cycles']} cycles "
               f"({s['bandwidth'] / 1e9:.2f} GB/s of {s['peak_bandwidth'] / 1e9:.2f} GB/s peak), "
               f"{s['wall_seconds']:.2f} s wall", err=True)
