"""`pimdram serve`: serve a request file on a system, step by step, and write the stats file."""
from pathlib import Path

import click

from ._options import (FiniteFloatRange, ProgressBar, check_output, output_option, overwrite_option,
                       progress_option, want_progress)

_positive_seconds = FiniteFloatRange(min=0, min_open=True)


@click.command("serve")
@click.argument("requests", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", required=True, help="Model preset name (pimdram model list) or a HF config.json.")
@click.option("--system", required=True, help="System preset name (pimdram system list) or a YAML file.")
@click.option("--max-batch", type=click.IntRange(min=1), default=256, show_default=True,
              help="Requests in the batch at most (decoding or prefilling).")
@click.option("--max-tokens", type=click.IntRange(min=1, max=1 << 24), default=8192, show_default=True,
              help="Prompt tokens a prefill step processes at most (a longer prompt runs alone, or in chunks).")
@click.option("--block-size", type=click.IntRange(min=1, max=1 << 20), default=16, show_default=True,
              help="KV-cache tokens per block.")
@click.option("--kv-blocks", type=click.IntRange(min=1), default=None, show_default="what the memories hold",
              help="Blocks of the KV cache (default: the memories' capacity after the weights and activations; "
                   "docs/serving.md).")
@click.option("--prefill", type=click.Choice(["whole", "chunked"]), default="whole", show_default=True,
              help="whole: a prompt in one step; chunked: at most --max-tokens prompt tokens a step, "
                   "alternating with decode steps.")
@click.option("--preemption", type=click.Choice(["recompute", "swap"]), default="recompute", show_default=True,
              help="When the cache is full: free the latest request's blocks and prefill it again later, or "
                   "swap them to host memory (needs the system's host link).")
@click.option("--stages", type=click.Choice(["auto", "one", "two"]), default="auto", show_default=True,
              help="one: prefill and decode steps take turns on the system; two: each phase on its own devices at "
                   "once (Hybe's stage pipelining); auto: two where the system maps the phases to different devices.")
@click.option("--slo-ttft", type=_positive_seconds, default=None, metavar="SECONDS",
              help="Time-to-first-token objective, for the goodput.")
@click.option("--slo-tpot", type=_positive_seconds, default=None, metavar="SECONDS",
              help="Time-per-output-token objective, for the goodput.")
@click.option("--layers", type=click.Choice(["all", "extrapolate"]), default="extrapolate", show_default=True,
              help="Replay every decoder layer of a step, or one and two layers and extrapolate (checked on the "
                   "first step of each phase; every layer from then on when they do not repeat).")
@click.option("--granularity", type=click.IntRange(min=1, max=1 << 20), default=1, show_default=True,
              help="Contexts are rounded up to a multiple of this to share replays (1: as they are).")
@click.option("--ragged-pim", type=click.Choice(["composed", "exact"]), default="composed", show_default=True,
              help="A PIM attention kernel over mixed contexts: each channel composed from uniform runs, or every "
                   "distinct channel simulated.")
@click.option("--interference/--no-interference", default=True, show_default=True,
              help="Simulate xPU traffic and PIM kernels sharing a memory together at command level in every step's "
                   "replay (as pimdram replay); --no-interference: they take turns by rule (much faster on "
                   "neupims, ianus, papi).")
@click.option("--check-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also replay every N-th step exactly and record the composition error (0: the first of each "
                   "phase only).")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16", "int8", "int4"]), default="fp16",
              show_default=True, help="Data type of weights, activations and KV cache.")
@progress_option
@output_option(help="Statistics file to write (HDF5).")
@overwrite_option
def command(requests, model, system, max_batch, max_tokens, block_size, kv_blocks, prefill, preemption, slo_ttft,
            slo_tpot, stages, layers, granularity, ragged_pim, interference, check_every, dtype, progress, output,
            overwrite):
    """Serve the REQUESTS file (docs/request-file-format.md) with MODEL on SYSTEM: an
    iteration-level scheduler with a paged KV cache, each step timed by kernel replay on the
    system; writes per-request, per-step and summary tables (docs/serving.md). The KV cache lives
    where the system's placement puts it (its `placement:` section; edit the system file to change it).

    \b
    Examples:
      pimdram requests -n 100 --rate 20 --lengths alpaca -o alpaca.csv
      pimdram serve alpaca.csv --model gpt2 --system neupims -o served.h5
      pimdram serve traces/example_requests.csv --model llama3-8b --system dgx-attacc \\
          --max-batch 64 --prefill chunked --max-tokens 512 --slo-ttft 0.5 --slo-tpot 0.05 -o s.h5
      pimdram report served.h5
    """
    from ..config.files import names_a_file
    from ..serve.run import serve_requests
    from ..serve.scheduler import SchedulerOptions

    check_output(output, overwrite, [requests] + [f for f in (model, system) if names_a_file(f)])
    options = SchedulerOptions(max_batch=max_batch, max_tokens=max_tokens, block_size=block_size,
                               kv_blocks=kv_blocks, prefill=prefill, preemption=preemption)
    bar = ProgressBar("serving", want_progress(progress))
    try:
        result = serve_requests(requests, output, model=model, system=system, options=options, slo_ttft_s=slo_ttft,
                                slo_tpot_s=slo_tpot, granularity=granularity, layers=layers, check_every=check_every,
                                ragged_pim=ragged_pim, stages=stages, interference=interference,
                                dtype=dtype, overwrite=overwrite, progress=bar)
    finally:
        bar.close()
    s = result.summary
    click.echo(f"{output}: {s['requests_completed']} requests, {s['output_tokens']} output tokens in "
               f"{s['simulated_seconds']:.4g} s ({s['throughput_tokens_per_s']:.1f} tokens/s; TTFT p50 "
               f"{s['ttft_p50_s'] * 1e3:.3g} ms, TPOT p50 {s['tpot_p50_s'] * 1e3:.3g} ms), {s['steps']} steps, "
               f"{s['step_replays']} replays, {s['wall_seconds']:.2f} s wall", err=True)
