"""`pimdram gen`: write the kernel trace of an LLM workload on a system."""
import click

from pathlib import Path

from ._options import check_output, overwrite_option, progress_option

PHASES = ("prefill", "decode", "generate")
DTYPES = ("fp32", "fp16", "bf16", "int8", "int4")


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be positive, got {value}")
    return value


def _deprecated(old, new):
    """Callback of a deprecated option name: the value as for `new`, with a warning on stderr."""
    def callback(ctx, param, value):
        if value is None:
            return None
        click.echo(f"warning: {old} is deprecated; use {new}", err=True)
        return _positive(ctx, param, value)
    return callback


class _OldOutput(click.ParamType):
    """`--output N`, the old name of --output-tokens: a file name given to it (as to replay's
    --output) gets an error that says where the file goes."""
    name = "integer"

    def convert(self, value, param, ctx):
        try:
            return int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of tokens: gen's --output is the old name of "
                      "--output-tokens; the trace file is -o/--out", param, ctx)


@click.command("gen")
@click.option("--model", "model", required=True, help="Model preset name (pimdram model show) or a HF config.json.")
@click.option("--system", "system", required=True, help="System preset name (configs/systems/) or a YAML file.")
@click.option("--batch", type=int, callback=_positive, help="Requests in the batch.")
@click.option("--prompt-tokens", "prompt", type=int, callback=_positive, help="Prompt tokens per request.")
@click.option("--output-tokens", "output_tokens", type=int, callback=_positive, help="Output tokens per request.")
# the old names of the two above; `--output` read as a file name elsewhere, so it is on its way out
@click.option("--prompt", "old_prompt", type=int, callback=_deprecated("--prompt", "--prompt-tokens"), hidden=True)
@click.option("--output", "old_output", type=_OldOutput(), callback=_deprecated("--output", "--output-tokens"),
              hidden=True)
@click.option("--requests", "requests_csv", type=click.Path(dir_okay=False, exists=True),
              help="CSV of requests (arrival, prompt_tokens, output_tokens) instead of "
                   "--batch/--prompt-tokens/--output-tokens.")
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
# the trace file is `-o`/`--out` rather than the shared -o/--output option: `--output` was the number
# of output tokens (now --output-tokens; the old name still works, with a warning)
@click.option("-o", "--out", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Kernel trace to write (JSON Lines).")
@overwrite_option
@progress_option
def command(model, system, batch, prompt, output_tokens, old_prompt, old_output, requests_csv, phase, context,
            speculation, dtype, weight_dtype, activation_dtype, kv_dtype, layers, only, sets, allow_overcommit,
            summary, output, overwrite, progress):
    """Write the kernel trace of a model and workload on a system.

    \b
    Examples:
      pimdram gen --model llama3-8b --system dgx-attacc --batch 16 --prompt-tokens 1024 \\
          --output-tokens 128 --phase decode --context 2048 -o llama3-8b.jsonl
      pimdram gen --model gpt3-175b --system papi --batch 64 --prompt-tokens 512 \\
          --output-tokens 64 --speculation 4 --layers 1 --summary
      pimdram gen --model ./config.json --system attacc-stack-bank --batch 1 --prompt-tokens 4096 \\
          --output-tokens 1 --only attention -o attention.jsonl
      pimdram gen --model mixtral-8x7b --system dgx-a100 --requests requests.csv --phase generate -o mix.jsonl
    """
    from ..config.memory import parse_set_options
    from ..config.system import load_system
    from ..llm import Workload
    from ..mapping import generate_kernel_trace
    from ..trace.kernels import summary_table
    from ._options import ProgressBar, want_progress

    for new, old, name in ((prompt, old_prompt, "--prompt-tokens"), (output_tokens, old_output, "--output-tokens")):
        if new is not None and old is not None:
            raise click.UsageError(f"{name} and its old name {name[:-len('-tokens')]} are the same option; give one")
    prompt = prompt if prompt is not None else old_prompt
    output_tokens = output_tokens if output_tokens is not None else old_output
    if output is None and not summary:
        raise click.UsageError("give -o/--out TRACE.jsonl, or --summary to only print the table")
    if requests_csv:
        if any(v is not None for v in (batch, prompt, output_tokens)):
            raise click.UsageError("--requests replaces --batch, --prompt-tokens and --output-tokens; "
                                   "give one or the other")
    elif None in (batch, prompt, output_tokens):
        raise click.UsageError("give --batch, --prompt-tokens and --output-tokens (or --requests FILE.csv)")
    if context is not None and phase != "decode":
        raise click.UsageError("--context applies to --phase decode only")
    check_output(output, overwrite)

    workload = Workload.from_options(batch, prompt, output_tokens, requests=requests_csv, phase=phase,
                                     context=context, speculation=speculation, dtype=dtype,
                                     weight_dtype=weight_dtype, activation_dtype=activation_dtype,
                                     kv_dtype=kv_dtype)
    system = load_system(system, parse_set_options(sets))
    bar = ProgressBar("generating", want_progress(progress))
    try:
        trace = generate_kernel_trace(model, system, workload, layers=layers, only=only,
                                      allow_overcommit=allow_overcommit,
                                      warn=lambda text: click.echo(f"warning: {text}", err=True), progress=bar)
    finally:
        bar.close()
    if output is not None:
        trace.write(output)
    if summary:
        click.echo(summary_table(trace))
    if output is not None:
        click.echo(f"wrote {len(trace)} kernels to {output}", err=True)
