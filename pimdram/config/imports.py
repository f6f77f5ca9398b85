"""Memory configurations of other simulators (DRAMsim3 .ini, Ramulator 2 YAML) read as pimdram memory
configs: detection, translation (dramsim3.py, ramulator2.py) and the YAML `pimdram config import`
writes."""
import warnings
from pathlib import Path

import yaml

from ..errors import ConfigError, ConfigImportWarning
from .files import SafeDumper, load_yaml


def foreign_format(name_or_path):
    """'dramsim3' or 'ramulator2' when `name_or_path` is such a file, else None (a preset name or
    a pimdram YAML)."""
    text = str(name_or_path)
    if text.lower().endswith(".ini"):
        if not Path(text).is_file():
            raise ConfigError(f"{text}: no such file")
        return "dramsim3"
    if text.lower().endswith((".yaml", ".yml")) and Path(text).is_file():
        from .ramulator2 import is_ramulator2
        if is_ramulator2(load_yaml(text)):
            return "ramulator2"
    return None


def import_memory(path):
    """(raw pimdram memory config, ImportReport) for a DRAMsim3 .ini or a Ramulator 2 YAML."""
    kind = foreign_format(path)
    if kind == "dramsim3":
        from .dramsim3 import import_dramsim3
        return import_dramsim3(path)
    if kind == "ramulator2":
        from .ramulator2 import import_ramulator2
        return import_ramulator2(path, load_yaml(path))
    raise ConfigError(f"{path}: neither a DRAMsim3 .ini nor a Ramulator 2 configuration (a YAML with "
                      "memory_system: or MemorySystem:)")


def load_imported(path, overrides=None):
    """The raw config of an imported file with `--set` overrides applied; its report's warning, if
    any, is issued once as a ConfigImportWarning."""
    from .memory import apply_overrides
    raw, report = import_memory(path)
    message = report.warning()
    if message:
        warnings.warn(message, ConfigImportWarning, stacklevel=3)
    over = dict(overrides or {})
    for key in over:
        if key.startswith("options."):
            raise ConfigError(f"{path}: {key}: an imported configuration has no options")
    return apply_overrides(raw, over, source=path)


def _flow(value):
    return yaml.dump(value, Dumper=SafeDumper, default_flow_style=True, width=1 << 20, sort_keys=False).strip()


def imported_yaml(raw, report):
    """The imported config as a readable pimdram YAML: the report as a header comment, one line per
    level, command and constraint row."""
    out = [report.comment()]
    for key, value in raw.items():
        if key == "organization":
            out.append("organization:")
            out.append("  levels:")
            out += [f"    - {_flow(lv)}" for lv in value["levels"]]
            out += [f"  {k}: {_flow(v)}" for k, v in value.items() if k != "levels"]
        elif key == "commands":
            out.append("commands:")
            out += [f"  {name}: {_flow(c)}" for name, c in value.items()]
        elif key == "constraints":
            out.append("constraints:")
            out += [f"  - {_flow(row)}" for row in value]
        elif isinstance(value, dict) and key in ("timing", "power", "controller", "refresh"):
            out.append(f"{key}:")
            out += [f"  {k}: {_flow(v)}" for k, v in value.items()]
        elif isinstance(value, list) and key == "sources":
            out.append("sources:")
            out += [f"  - {_flow(v)}" for v in value]
        else:
            out.append(f"{key}: {_flow(value)}")
    return "\n".join(out) + "\n"
