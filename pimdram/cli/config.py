"""`pimdram config`: list the shipped presets, print one fully resolved (everything in cycles), and
import DRAMsim3 and Ramulator 2 configurations."""
import json
from pathlib import Path

import click

from ..config import list_configs, preset_description
from ..config.memory import load_memory, parse_set_options
from ._options import check_output, format_rows, output_file


# What `config show` can resolve: kind -> loader(name or file, overrides) returning a resolved
# spec with to_yaml() and to_dict(). A PIM design resolves as a memory (its standard plus the
# design's commands, rows and units).
SHOW_KINDS = {
    "memory": load_memory,
}

# What `config list` prints: heading -> preset directory under configs/.
LIST_KINDS = {
    "memory standards (configs/dram)": "dram",
    "cross-simulator comparison presets (configs/compare)": "compare",
    "PIM designs (configs/pim)": "pim",
}


@click.group(name="config")
def command():
    """Inspect configuration presets."""


@command.command("show")
@click.argument("name")
@click.option("--kind", type=click.Choice(sorted(SHOW_KINDS)), default="memory", show_default=True,
              help="What NAME is.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a dotted key before resolving, e.g. --set timing.nCL=16 (repeatable).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON instead of YAML.")
def show(name, kind, sets, as_json):
    """Print the fully resolved configuration of preset NAME or of FILE.yaml.

    \b
    Timings are printed in cycles of the command clock (tCK in ns).
    Examples:
      pimdram config show hbm3_6.4gbps
      pimdram config show ddr4_3200 --set timing.tCL=12.5 --set controller.row_policy=closed
      pimdram config show my_memory.yaml --json
      pimdram config show attacc-bank --set options.power_limit=unlimited
    """
    spec = SHOW_KINDS[kind](name, parse_set_options(sets))
    if as_json:
        click.echo(json.dumps(spec.to_dict(), indent=2))
    else:
        click.echo(spec.to_yaml(), nl=False)


@command.command("import")
@click.argument("source", metavar="FILE.ini|FILE.yaml", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), callback=output_file,
              help="Write the pimdram YAML here (default: print it).")
@click.option("--overwrite", is_flag=True, default=False, help="Replace the output file if it exists.")
def import_(source, output, overwrite):
    """Convert a DRAMsim3 .ini or a Ramulator 2 YAML into a pimdram memory YAML.

    \b
    The translation follows what the other simulator does with the file (its defaults, derived
    sizes, constraint table, controller and refresh policy). Keys pimdram cannot model, and keys
    the other simulator itself ignores, are listed in one warning and in the YAML's header.
    `--memory FILE.ini|FILE.yaml` (replay, config show) imports the same way without a file.
    Examples:
      pimdram config import DDR4_8Gb_x8_3200.ini -o ddr4.yaml
      pimdram config import exported_by_ramulator.yaml -o hbm3.yaml
    """
    from .._atomic import atomic_output
    from ..config.imports import import_memory, imported_yaml
    from ..config.memory import resolve_memory

    check_output(output, overwrite, [source])
    raw, report = import_memory(source)
    resolve_memory(raw, source=source)        # what is written must resolve
    message = report.warning()
    if message:
        click.echo(f"Warning: {message}", err=True)
    text = imported_yaml(raw, report)
    if output is None:
        click.echo(text, nl=False)
        return
    with atomic_output(output, overwrite=overwrite, inputs=[source], encoding="utf-8") as f:
        f.write(text)
    click.echo(f"{output}: {raw['name']} ({raw['standard']}), from {source}", err=True)


@command.command("list")
@click.option("--json", "as_json", is_flag=True, default=False,
              help="Print one JSON object: kind -> [{name, description}].")
def list_(as_json):
    """List the memory standards and PIM designs, with one line on each.

    Models and systems have their own lists: `pimdram model list`, `pimdram system list`.
    """
    listing = {kind: [{"name": n, "description": preset_description(kind, n)} for n in list_configs(kind)]
               for kind in LIST_KINDS.values()}
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for heading, kind in LIST_KINDS.items():
        click.echo(f"{heading}:")
        rows = [[p["name"], p["description"]] for p in listing[kind]]
        for line in format_rows(rows) or ["  (none)"]:
            click.echo(line)
