"""`pimdram sweep`: run a sweep file's points (gen -> replay -> summary) on a local process pool or a
Dask cluster and write one results table."""
from pathlib import Path

import click

from ._options import ProgressBar, output_file, overwrite_option, progress_option, want_progress


@click.command("sweep")
@click.argument("sweep_file", metavar="SWEEP.yaml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), callback=output_file, required=True,
              help="Results table to write: .parquet (needs the parquet extra), .csv or .h5.")
@click.option("-j", "--jobs", type=click.IntRange(min=1),
              help="Worker processes (local pool or local Dask cluster; default: the CPUs available).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Run the points on a local process pool or on a Dask distributed cluster.")
@click.option("--scheduler", metavar="ADDRESS",
              help="--executor dask: the scheduler of a running cluster (e.g. tcp://host:8786); "
                   "without it, a LocalCluster of --jobs workers.")
@click.option("--resume", is_flag=True,
              help="OUTPUT may exist: take its finished points (and the cache's), run the rest, replace it.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of finished points, by content hash (default: .pimdram-cache beside OUTPUT).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache: run every point.")
@progress_option
@overwrite_option
def command(sweep_file, output, jobs, executor, scheduler, resume, cache_dir, no_cache, progress, overwrite):
    """Run every point of SWEEP.yaml (gen, replay, summary) and write one table: a row per point with
    its inputs, status, error and results (tokens_per_s, energy_j, ...; units in the metadata).

    Each top-level key of SWEEP.yaml is a `pimdram gen` option (model, system, batch, prompt_tokens,
    output_tokens, phase, context, ...) or set.<dotted.path> for an override; a list is an axis of
    the grid, a scalar is fixed. See docs/sweeps.md.

    \b
    Examples:
      pimdram sweep study.yaml -o study.parquet -j 2
      pimdram sweep study.yaml -o study.csv --executor dask              # a LocalCluster
      pimdram sweep study.yaml -o study.h5 --executor dask --scheduler tcp://head:8786
      pimdram sweep study.yaml -o study.parquet --resume                # after a crash or an edit
    """
    from .._atomic import output_path
    from ..errors import OutputExistsError
    from ..sweep import executor_for, load_sweep, run_sweep
    from ..sweep.results import results_kind

    if scheduler and executor != "dask":
        raise click.UsageError("--scheduler is for --executor dask")
    if scheduler and jobs:
        raise click.UsageError("--jobs sizes a local pool or LocalCluster; a running cluster has its own workers")
    if no_cache and cache_dir:
        raise click.UsageError("--cache and --no-cache contradict each other")
    if resume and overwrite:
        raise click.UsageError("--resume keeps OUTPUT's finished points, --overwrite discards them; give one")
    results_kind(output)
    try:
        output_path(output, overwrite=overwrite or resume, inputs=[sweep_file])
    except OutputExistsError:
        raise click.UsageError(f"{output} exists; pass --resume to finish that sweep or --overwrite to replace it") \
            from None
    sweep = load_sweep(sweep_file)
    cache = None if no_cache else (cache_dir if cache_dir else "default")
    bar = ProgressBar(f"{len(sweep)} points", want_progress(progress))
    try:
        with executor_for(executor, jobs, scheduler) as pool:
            result = run_sweep(sweep, output, executor=pool, cache=cache, resume=resume, overwrite=overwrite,
                               progress=bar)
    finally:
        bar.close()
    click.echo(f"{output}: {result.points} points ({result.ok} run, {result.failed} failed, "
               f"{result.cached} from the cache) in {result.seconds:.1f} s", err=True)
    for inputs, error in result.first_errors:
        shown = ", ".join(f"{k}={v}" for k, v in inputs.items() if v is not None)
        click.echo(f"failed: {shown}: {error}", err=True)
    if result.failed > len(result.first_errors):
        click.echo(f"... and {result.failed - len(result.first_errors)} more failed points "
                   "(the table's status and error columns)", err=True)
    if result.points and result.failed == result.points:
        raise click.ClickException("no point of the sweep ran; the table records why")
