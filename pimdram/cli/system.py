"""`pimdram system`: list the system presets and print one resolved."""
import json

import click


@click.group("system")
def command():
    """Inspect systems (devices, memories, links, mapping)."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list: name, policy, devices, description.")
def list_(as_json):
    """List the system presets (configs/systems/) with their mapping policy and devices.

    Any of them, or a YAML file of one's own (docs/systems.md), is a SYSTEM for `pimdram gen
    --system` and `pimdram replay --system`.
    """
    from ..config import list_configs, preset_description
    from ..config.system import load_system

    rows = []
    for name in list_configs("systems"):
        system = load_system(name)
        devices = ", ".join(f"{d.count}x {d.name} ({d.kind})" for d in system.devices.values())
        rows.append({"name": name, "policy": system.policy, "devices": devices,
                     "description": preset_description("systems", name)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from ._options import format_rows
    table = [["name", "policy", "description"]] + [[r["name"], r["policy"], r["description"]] for r in rows]
    click.echo("\n".join(format_rows(table, indent="")))


@command.command("show")
@click.argument("system")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a value of the system's PIM designs, as for `pimdram gen --set` (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def show(system, sets, as_json):
    """Print SYSTEM (a preset name or a YAML file) fully resolved: what a kernel trace embeds.

    \b
    Examples:
      pimdram system show dgx-attacc
      pimdram system show papi --set options.power_limit=unlimited --json
    """
    import yaml

    from ..config.files import SafeDumper
    from ..config.memory import parse_set_options
    from ..config.system import load_system

    resolved = load_system(system, parse_set_options(sets)).to_dict()
    if as_json:
        click.echo(json.dumps(resolved, indent=2))
    else:
        click.echo(yaml.dump(resolved, Dumper=SafeDumper, sort_keys=False), nl=False)
