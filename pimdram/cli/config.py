"""`pimdram config`: list the shipped presets and print one fully resolved (everything in cycles)."""
import json

import click

from ..config import list_configs
from ..config.memory import load_memory, parse_set_options


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


@command.command("list")
def list_():
    """List the preset names of each kind."""
    for heading, kind in LIST_KINDS.items():
        click.echo(f"{heading}:")
        names = list_configs(kind)
        for n in names:
            click.echo(f"  {n}")
        if not names:
            click.echo("  (none)")
