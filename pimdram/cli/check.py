"""`pimdram check STATS.h5`: re-verify every command of a run's command log against its memory standard."""
from pathlib import Path

import click

from ._options import FiniteFloatRange, ProgressBar, progress_option, want_progress


@click.command("check")
@click.argument("stats", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--examples", "max_examples", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many violations (and refresh warnings) to list.")
@click.option("--refresh/--no-refresh", default=True, show_default=True,
              help="Also warn about refresh nodes left without a refresh for longer than "
                   "--refresh-slack refresh intervals.")
@click.option("--refresh-slack", type=FiniteFloatRange(min=1.0, max=1e6), default=9.0, show_default=True,
              help="Refresh intervals a node may go without a refresh (DDR postponement: 9).")
@progress_option
@click.pass_context
def command(ctx, stats, max_examples, refresh, refresh_slack, progress):
    """Check that every command in STATS's command log obeys the memory standard.

    STATS is a stats file written by `pimdram replay --command-log`. The check shares no code
    with the engine: timing rows, bank state (open rows), command-bus occupancy and, as
    warnings, refresh intervals. The log is read and checked in chunks (bounded memory, the
    verdicts of checking it whole). Exit code 0 when no rule is broken, 1 otherwise.
    """
    from ..check import check_stats_file

    bar = ProgressBar("checking", want_progress(progress))
    try:
        result = check_stats_file(stats, max_examples=max_examples, refresh=refresh,
                                  refresh_slack=refresh_slack, progress=bar)
    finally:
        bar.close()
    if result.n_commands == 0:
        click.echo(f"{stats}: no commands to check: the run issued none (a kernel replay whose kernels "
                   "were all modelled, none simulated at command level)")
        ctx.exit(0)
    click.echo(f"{stats}: {result.n_commands} commands checked, {result.n_violations} violations")
    if result.n_violations:
        broken = ", ".join(f"{rule} {n}" for rule, n in result.violations_by_rule.items() if n)
        click.echo(f"  by rule: {broken}")
        for v in result.violations:
            click.echo(f"  cycle {v.cycle}: {v.command} [{v.node}] {v.rule}: {v.constraint}"
                       + (f" (after {v.earlier_command} at cycle {v.earlier_cycle})"
                          if v.earlier_index is not None else ""))
        if result.n_violations > len(result.violations):
            click.echo(f"  ... and {result.n_violations - len(result.violations)} more")
    if result.n_warnings:
        click.echo(f"{result.n_warnings} refresh warnings")
        for w in result.warnings:
            click.echo(f"  warning: {w}")
    ctx.exit(0 if result.ok else 1)
