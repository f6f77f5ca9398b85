"""`pimdram validate`: run the seed papers' headline experiments and compare with the papers."""
import json

import click

from ._options import ProgressBar, progress_option, want_progress


@click.command("validate")
@click.argument("names", nargs=-1, metavar="[NAME ...|all]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects (paper, claim, reference, "
                                                       "pimdram, ratio, points, ...) instead of the table.")
@click.option("--quick", is_flag=True, help="Run each claim on its documented subset of the paper's setups "
                                            "(docs/validate.md): seconds instead of minutes.")
@click.option("--sensitivity", is_flag=True, help="Also run each labelled assumption's alternatives, one row each.")
@click.option("--list", "list_only", is_flag=True, help="List the claims and exit.")
@progress_option
def command(names, as_json, quick, sensitivity, list_only, progress):
    """Reproduce the seed papers' headline results: one row per claim with the paper's figure,
    pimdram's, and pimdram / paper. NAME is a claim or a paper (attacc, neupims, ianus, papi,
    hybe); default all.

    \b
    Examples:
      pimdram validate                      # every claim (a few minutes)
      pimdram validate all --quick          # every claim on a subset of its setups
      pimdram validate papi --json
      pimdram validate attacc-throughput --sensitivity
    """
    from ..validate import format_table, run_claims, select_claims

    if list_only:
        for c in select_claims(list(names)):
            click.echo(f"{c.name:20s} {c.paper:8s} {c.reference:g}x  {c.claim}")
        return
    bar = ProgressBar("running claims", want_progress(progress))
    try:
        rows = run_claims(list(names), quick=quick, sensitivity=sensitivity, progress=bar)
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    else:
        click.echo(format_table(rows))
