"""Finds preset files by kind and name, and reads YAML with errors that name the file."""
import os
import sys
from pathlib import Path

import yaml

from .._atomic import note_input
from ..errors import ConfigError

KINDS = ("dram", "compare", "pim", "models", "systems")

# libyaml's loader when PyYAML was built with it (its wheels are): the same results, ~10x faster
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

#: the largest YAML file read (a config is a few kilobytes; this stops /dev/zero or a wrong file)
MAX_YAML_BYTES = 16 << 20


class SafeLoader(_BaseLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML itself
    keeps the last value, silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:        # an unhashable key: YAML's own error follows
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {first})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


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


def names_a_file(name_or_path):
    """Whether a config argument is a file path (ends in .yaml, .yml or .json, or has a directory
    part) rather than a preset name; find_config reads it the same way."""
    text = str(name_or_path)
    return text.endswith((".yaml", ".yml", ".json", ".ini")) or os.sep in text


def find_config(kind, name_or_path, kinds=None):
    """Path of a preset given by name (searched under configs/<kind>/) or by a path to a YAML file.

    `kinds` widens the search to several kinds (first match wins).
    """
    text = str(name_or_path)
    path = Path(text)
    if names_a_file(text):
        if not path.is_file():
            raise ConfigError(f"{text}: " + ("not a regular file; expected a YAML or JSON config file"
                                             if path.exists() else "no such file"))
        return path
    for k in (kinds or (kind,)):
        for d in config_dirs():
            cand = d / k / f"{text}.yaml"
            if cand.is_file():
                return cand
    known = sorted({n for k in (kinds or (kind,)) for n in list_configs(k)})
    raise ConfigError(f"unknown {kind} preset '{text}'; known: {', '.join(known) or '(none)'}")


def relative_to(config_file, name_or_path):
    """A file named inside `config_file` (e.g. its `base:`), relative to that file's directory
    when it is a relative path; a preset name is returned as it is."""
    text = str(name_or_path)
    if names_a_file(text) and not os.path.isabs(text):
        return str(Path(config_file).parent / text)
    return text


def load_yaml(path):
    """Parse a YAML file into plain data; syntax errors name file and line, a key given twice is
    an error, and the file may hold at most MAX_YAML_BYTES."""
    path = Path(path)
    note_input(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES >> 20} MiB; expected a YAML config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text; expected a YAML config file") from None
    data = load_yaml_text(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_yaml_text(text, source):
    """Parse YAML text (of `source`, named in errors with the line) into plain data."""
    try:
        return yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else str(source)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None


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
