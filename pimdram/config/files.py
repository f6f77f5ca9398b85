"""Finds preset files by kind and name, and reads YAML with errors that name the file."""
import os
import sys
from pathlib import Path

import yaml

from ..errors import ConfigError

KINDS = ("dram", "compare", "pim", "models", "systems")

# libyaml's loader when PyYAML was built with it (its wheels are): the same results, ~10x faster
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def config_dirs():
    """Directories searched for presets, in order.

    PIMDRAM_CONFIG_PATH (os.pathsep-separated) first, then the source tree's configs/
    (an editable install or a checkout), then the installed copy under <prefix>/share/pimdram.
    """
    dirs = []
    env = os.environ.get("PIMDRAM_CONFIG_PATH")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(Path(__file__).resolve().parents[2] / "configs")
    dirs.append(Path(sys.prefix) / "share" / "pimdram" / "configs")
    return [d for d in dirs if d.is_dir()]


def list_configs(kind):
    """Names of the presets of one kind (e.g. 'dram'), sorted."""
    names = set()
    for d in config_dirs():
        sub = d / kind
        if sub.is_dir():
            names.update(p.stem for p in sub.glob("*.yaml"))
    return sorted(names)


def find_config(kind, name_or_path, kinds=None):
    """Path of a preset given by name (searched under configs/<kind>/) or by a path to a YAML file.

    `kinds` widens the search to several kinds (first match wins).
    """
    text = str(name_or_path)
    path = Path(text)
    if text.endswith((".yaml", ".yml", ".json")) or os.sep in text:
        if not path.is_file():
            raise ConfigError(f"{text}: no such file")
        return path
    for k in (kinds or (kind,)):
        for d in config_dirs():
            cand = d / k / f"{text}.yaml"
            if cand.is_file():
                return cand
    known = sorted({n for k in (kinds or (kind,)) for n in list_configs(k)})
    raise ConfigError(f"unknown {kind} preset '{text}'; known: {', '.join(known) or '(none)'}")


def load_yaml(path):
    """Parse a YAML file into plain data; syntax errors name file and line."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=SafeLoader)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def preset_description(kind, name):
    """One line saying what preset `name` of `kind` is: its `description` key, else the first line
    of the comment block it starts with, else ""."""
    path = find_config(kind, name)
    data = load_yaml(path)
    text = data.get("description")
    if isinstance(text, str) and text.strip():
        return " ".join(text.split())
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            words = line.lstrip("#").strip()
            if words:
                return words
    return ""
