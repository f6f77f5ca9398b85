"""`pimdram gen`: write the kernel trace of an LLM workload on a system."""
import click

from pathlib import Path

from ._options import check_output, overwrite_option

PHASES = ("prefill", "decode", "generate")
DTYPES = ("fp32", "fp16", "bf16", "int8", "int4")


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be positive, got {value}")
    return value


@click.command("gen")
@click.option("--model", "model", required=True, help="Model preset name (pimdram model show) or a HF config.json.")
@click.option("--system", "system", required=True, help="System preset name (configs/systems/) or a YAML file.")
@click.option("--batch", type=int, callback=_positive, help="Requests in the batch.")
@click.option("--prompt", type=int, callback=_positive, help="Prompt tokens per request.")
@click.option("--output", "output_tokens", type=int, callback=_positive, help="Output tokens per request.")
@click.option("--requests", "requests_csv", type=click.Path(dir_okay=False, exists=True),
              help="CSV of requests (arrival, prompt_tokens, output_tokens) instead of --batch/--prompt/--output.")
@click.option("--phase", type=click.Choice(PHASES), default="decode", show_default=True,
              help="prefill, one decode step, or the whole generation.")
@click.option("--context", type=int, callback=_positive,
              help="Decode: tokens already in each request's KV cache (default: the prompt length).")
@click.option("--speculation", type=int, default=1, show_default=True, callback=_positive,
              help="Tokens verified per request per decode step (speculative decoding).")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp16", show_default=True,
              help="Data type of weights, activations and KV cache, unless given one by one.")
@click.option("--weight-dtype", type=click.Choice(DTYPES), help="Data type of the weights.")
@click.option("--activation-dtype", type=click.Choice(DTYPES), help="Data type of the activations.")
@click.option("--kv-dtype", type=click.Choice(DTYPES), help="Data type of the KV cache.")
@click.option("--layers", type=int, callback=_positive, help="Keep only the first N decoder layers.")
@click.option("--only", help="Keep only these kernel kinds, comma-separated (attention, fc, ffn, norm, "
                             "communication, an op or a kernel name).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a value of the system's PIM designs, e.g. options.power_limit=unlimited (repeatable); "
                   "the trace header records the result.")
@click.option("--allow-overcommit", is_flag=True,
              help="A workload larger than a memory is a warning (recorded in the trace) instead of an error: "
                   "for capacity studies.")
@click.option("--summary", is_flag=True, help="Print the per-kernel table (device, shapes, FLOPs, bytes, intensity).")
# `--output` is the number of output tokens (the CLI contract), so the trace file is `-o`/`--out`
# rather than the shared -o/--output option
@click.option("-o", "--out", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Kernel trace to write (JSON Lines).")
@overwrite_option
def command(model, system, batch, prompt, output_tokens, requests_csv, phase, context, speculation, dtype,
            weight_dtype, activation_dtype, kv_dtype, layers, only, sets, allow_overcommit, summary, output,
            overwrite):
    """Write the kernel trace of a model and workload on a system.

    \b
    Examples:
      pimdram gen --model llama3-8b --system dgx-attacc --batch 16 --prompt 1024 \\
          --output 128 --phase decode --context 2048 -o llama3-8b.jsonl
      pimdram gen --model gpt3-175b --system papi --batch 64 --prompt 512 --output 64 \\
          --speculation 4 --layers 1 --summary
      pimdram gen --model ./config.json --system attacc-stack-bank --batch 1 --prompt 4096 \\
          --output 1 --only attention -o attention.jsonl
      pimdram gen --model mixtral-8x7b --system dgx-a100 --requests requests.csv --phase generate -o mix.jsonl
    """
    from ..config.memory import parse_set_options
    from ..config.system import load_system
    from ..llm import Workload
    from ..mapping import generate_kernel_trace
    from ..trace.kernels import summary_table

    if output is None and not summary:
        raise click.UsageError("give -o/--output TRACE.jsonl, or --summary to only print the table")
    if requests_csv:
        if any(v is not None for v in (batch, prompt, output_tokens)):
            raise click.UsageError("--requests replaces --batch, --prompt and --output; give one or the other")
    elif None in (batch, prompt, output_tokens):
        raise click.UsageError("give --batch, --prompt and --output (or --requests FILE.csv)")
    if context is not None and phase != "decode":
        raise click.UsageError("--context applies to --phase decode only")
    check_output(output, overwrite)

    dtypes = dict(weight_dtype=weight_dtype or dtype, activation_dtype=activation_dtype or dtype,
                  kv_cache_dtype=kv_dtype or dtype)
    common = dict(phase=phase, context=context, speculation=speculation, **dtypes)
    if requests_csv:
        workload = Workload.from_csv(requests_csv, **common)
    else:
        workload = Workload.uniform(batch, prompt, output_tokens, **common)
    system = load_system(system, parse_set_options(sets))
    trace = generate_kernel_trace(model, system, workload, layers=layers, only=only,
                                  allow_overcommit=allow_overcommit,
                                  warn=lambda text: click.echo(f"warning: {text}", err=True))
    if output is not None:
        trace.write(output)
    if summary:
        click.echo(summary_table(trace))
    if output is not None:
        click.echo(f"wrote {len(trace)} kernels to {output}", err=True)
