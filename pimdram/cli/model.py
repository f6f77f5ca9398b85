"""`pimdram model`: inspect model presets and Hugging Face config.json files."""
import json

import click

DTYPES = ("fp32", "fp16", "bf16", "int8", "int4")


@click.group("model")
def command():
    """Inspect LLM model descriptions."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the presets' figures.")
def list_(as_json):
    """List the model presets (configs/models/): size, shape and what each is.

    Any of them, or a Hugging Face config.json, is a MODEL for `pimdram model show` and
    `pimdram gen --model`.
    """
    from ..config import list_configs, preset_description
    from ..llm import load_model

    rows = []
    for name in list_configs("models"):
        spec = load_model(name)
        rows.append({"name": name, "params": spec.param_count(), "active_params": spec.active_param_count(),
                     "layers": spec.layers, "hidden": spec.hidden, "heads": spec.heads,
                     "kv_heads": spec.kv_heads, "experts": spec.experts,
                     "description": preset_description("models", name)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from ._options import format_rows
    table = [["name", "params", "layers", "hidden", "heads/KV", "description"]]
    for r in rows:
        table.append([r["name"], f"{r['params'] / 1e9:.2f}B", r["layers"], r["hidden"],
                      f"{r['heads']}/{r['kv_heads']}", r["description"]])
    click.echo("\n".join(format_rows(table, indent="")))


@command.command("show")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--kv-dtype", type=click.Choice(DTYPES), default="fp16", show_default=True,
              help="Data type used for kv_cache_bytes_per_token.")
def show(model, as_json, kv_dtype):
    """Print a model's architecture, parameter count and KV-cache size per token.

    MODEL is a preset name (configs/models/) or a path to a Hugging Face config.json.

    \b
    Examples:
      pimdram model show llama3-8b
      pimdram model show mixtral-8x7b --json
      pimdram model show ./Meta-Llama-3-8B/config.json --json --kv-dtype int8
    """
    from ..llm import DTYPE_BITS, load_model

    spec = load_model(model)
    if DTYPE_BITS[kv_dtype] % 8:
        bytes_per = DTYPE_BITS[kv_dtype] / 8
    else:
        bytes_per = DTYPE_BITS[kv_dtype] // 8
    info = spec.summary(kv_bytes=bytes_per)
    info["kv_cache_dtype"] = kv_dtype
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if key in ("params", "active_params", "published_params") and value:
            value = f"{value:,} ({value / 1e9:.3f}B)" if isinstance(value, int) else f"{value / 1e9:.3f}B"
        click.echo(f"{key:36s} {value}")
