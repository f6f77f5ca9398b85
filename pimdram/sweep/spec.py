"""The sweep file (`pimdram.sweep`, docs/sweeps.md): which gen options and `--set` overrides vary, as
a grid and/or explicit points, and which results to keep; expanded into the sweep's points."""
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..config.files import load_yaml
from ..errors import ConfigError, SweepError, VersionTooNewError, VersionTooOldError

FORMAT = "pimdram.sweep"
#: [major, minor] of the sweep files this pimdram writes and reads (any 1.x)
FORMAT_VERSION = (1, 0)

PHASES = ("prefill", "decode", "generate")
DTYPES = ("fp32", "fp16", "bf16", "int8", "int4")


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(value):
    return isinstance(value, str) and value.strip() != ""


def _flag(value):
    return isinstance(value, bool)


def _one_of(choices):
    return lambda value: value in choices


#: canonical key -> (check, what a good value is, default). The keys are `pimdram gen`'s long option
#: names with `_` for `-` (and `symmetry`, replay's option); their values go to gen and replay as
#: the options would.
OPTIONS = {
    "model": (_text, "a model preset name or a config.json path", None),
    "system": (_text, "a system preset name or a YAML path", None),
    "batch": (_positive_int, "a positive integer", None),
    "prompt_tokens": (_positive_int, "a positive integer", None),
    "output_tokens": (_positive_int, "a positive integer", None),
    "requests": (_text, "a requests CSV path", None),
    "phase": (_one_of(PHASES), "one of " + ", ".join(PHASES), "decode"),
    "context": (_positive_int, "a positive integer", None),
    "speculation": (_positive_int, "a positive integer", 1),
    "dtype": (_one_of(DTYPES), "one of " + ", ".join(DTYPES), "fp16"),
    "weight_dtype": (_one_of(DTYPES), "one of " + ", ".join(DTYPES), None),
    "activation_dtype": (_one_of(DTYPES), "one of " + ", ".join(DTYPES), None),
    "kv_dtype": (_one_of(DTYPES), "one of " + ", ".join(DTYPES), None),
    "layers": (_positive_int, "a positive integer", None),
    "only": (_text, "kernel kinds, comma-separated", None),
    "allow_overcommit": (_flag, "true or false", False),
    "symmetry": (_flag, "true or false", True),
}
#: other spellings of a key (gen's old option names, hyphens)
ALIASES = {"prompt": "prompt_tokens", "output": "output_tokens"}
#: keys that hold a path, resolved against the sweep file's directory when relative
PATH_KEYS = ("model", "system", "requests")
SET_PREFIX = "set."
#: top-level keys that are not inputs
RESERVED = ("version", "points", "keep", "set")


def canonical_key(key):
    """The canonical name of a sweep key (`prompt-tokens` and `prompt` are `prompt_tokens`; a
    `set.` key keeps its dotted path), or None if it names no input."""
    if not isinstance(key, str):
        return None
    if key.startswith(SET_PREFIX) and len(key) > len(SET_PREFIX):
        return key
    name = key.replace("-", "_")
    name = ALIASES.get(name, name)
    return name if name in OPTIONS else None


@dataclass(frozen=True)
class Point:
    """One point of a sweep: `inputs` as its table row shows them (the keys the sweep file gives,
    canonical names, in file order), `options` every gen/replay option with defaults filled in
    and paths resolved, `overrides` its `set.` values by dotted path."""
    index: int
    inputs: dict
    options: dict
    overrides: dict


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file. `fixed`: key -> value; `axes`: key -> values (a grid, in file order);
    `explicit`: a list of mappings (each one point's own values); `keep`: metric names or None
    (every metric)."""
    path: Path
    fixed: dict
    axes: dict
    explicit: tuple
    keep: tuple
    version: tuple = FORMAT_VERSION
    order: tuple = ()

    @property
    def columns(self):
        """The input keys in the order the table shows them: as the sweep file first names them."""
        seen = [k for k in self.order if k in self.fixed or k in self.axes]
        seen += [k for k in list(self.fixed) + list(self.axes) if k not in seen]
        for p in self.explicit:
            seen += [k for k in p if k not in seen]
        return seen

    def __len__(self):
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n * max(1, len(self.explicit))

    def points(self):
        """The points: every combination of the axes (the first axis varying slowest), each
        combined with every explicit point."""
        base = os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()
        out = []
        keys = list(self.axes)
        for combo in itertools.product(*(self.axes[k] for k in keys)):
            for extra in (self.explicit or ({},)):
                given = dict(self.fixed)
                given.update(zip(keys, combo))
                given.update(extra)
                inputs = {k: given.get(k) for k in self.columns}
                options = {k: default for k, (_, _, default) in OPTIONS.items()}
                overrides = {}
                for k, v in given.items():
                    if k.startswith(SET_PREFIX):
                        overrides[k[len(SET_PREFIX):]] = v
                    else:
                        options[k] = _resolve_path(base, v) if k in PATH_KEYS else v
                out.append(Point(len(out), inputs, options, overrides))
        return out

    def describe(self):
        """The sweep as plain data (what the results table's metadata records)."""
        return {"file": str(self.path) if self.path else None,
                "version": ".".join(map(str, self.version)),
                "fixed": dict(self.fixed), "axes": {k: list(v) for k, v in self.axes.items()},
                "points": [dict(p) for p in self.explicit], "keep": list(self.keep) if self.keep else None}


def _resolve_path(base, value):
    """A relative path is relative to the sweep file; a preset name stays a name."""
    text = str(value)
    if text.endswith((".yaml", ".yml", ".json", ".csv")) or os.sep in text:
        if not os.path.isabs(text):
            return os.path.normpath(os.path.join(base, text))
    return text


def parse_version(value, source):
    """(major, minor) of a sweep file's `version`; reject majors this pimdram cannot read."""
    text = str(value).strip()
    parts = text.split(".")
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        raise SweepError(f"{source}: version: expected MAJOR.MINOR (e.g. \"1.0\"), got {value!r}")
    major, minor = int(parts[0]), int(parts[1]) if len(parts) == 2 else 0
    reads = f"this pimdram reads {FORMAT} {FORMAT_VERSION[0]}.x"
    if major > FORMAT_VERSION[0]:
        raise VersionTooNewError(f"{source}: {FORMAT} version {major}.{minor}; {reads}: upgrade pimdram")
    if major < FORMAT_VERSION[0]:
        raise VersionTooOldError(f"{source}: {FORMAT} version {major}.{minor}; {reads}")
    return major, minor


def load_sweep(path):
    """Read and check a sweep file; every error names the file and the key."""
    path = Path(path)
    try:
        data = load_yaml(path)
    except ConfigError as exc:       # unreadable or not YAML: the same message, as a sweep error
        raise SweepError(str(exc)) from None
    return parse_sweep(data, path)


def parse_sweep(data, path=None, metrics=None):
    """A Sweep from the plain data of a sweep file (`path` names it in errors and resolves relative
    paths). `metrics`, the names `keep` may use (default: every metric of the results table)."""
    source = str(path) if path else "sweep"
    if not isinstance(data, dict):
        raise SweepError(f"{source}: expected a mapping of sweep keys")
    version = parse_version(data["version"], source) if "version" in data else FORMAT_VERSION
    fixed, axes, order = {}, {}, []

    def add(key, value, where):
        name = canonical_key(key)
        if name is None:
            raise SweepError(f"{source}: {where}: unknown key; use a pimdram gen option ({', '.join(OPTIONS)}), "
                             f"set.<dotted.path> for an override, or one of {', '.join(RESERVED)}")
        if name in fixed or name in axes:
            raise SweepError(f"{source}: {where}: given twice (as {name})")
        order.append(name)
        if isinstance(value, list):
            if not value:
                raise SweepError(f"{source}: {where}: an axis needs at least one value")
            axes[name] = tuple(_checked(name, v, f"{where}[{i}]", source) for i, v in enumerate(value))
        else:
            fixed[name] = _checked(name, value, where, source)

    for key, value in data.items():
        if key in ("version", "points", "keep"):
            continue
        if key == "set":
            if not isinstance(value, dict):
                raise SweepError(f"{source}: set: expected a mapping of dotted paths to values")
            for path_key, v in value.items():
                add(f"{SET_PREFIX}{path_key}", v, f"set.{path_key}")
            continue
        add(key, value, key)

    explicit = []
    points = data.get("points")
    if points is not None:
        if not isinstance(points, list) or not points:
            raise SweepError(f"{source}: points: expected a non-empty list of mappings")
        for i, p in enumerate(points):
            if not isinstance(p, dict) or not p:
                raise SweepError(f"{source}: points[{i}]: expected a mapping of keys to values")
            one = {}
            for key, value in p.items():
                where = f"points[{i}].{key}"
                name = canonical_key(key)
                if name is None:
                    raise SweepError(f"{source}: {where}: unknown key")
                if name in fixed or name in axes:
                    raise SweepError(f"{source}: {where}: {name} is also given at the top level")
                if isinstance(value, list):
                    raise SweepError(f"{source}: {where}: a point takes one value per key (lists are axes "
                                     "of the grid, at the top level)")
                if name in one:
                    raise SweepError(f"{source}: {where}: given twice (as {name})")
                one[name] = _checked(name, value, where, source)
            explicit.append(one)

    keep = data.get("keep")
    if keep is not None:
        if isinstance(keep, str):
            keep = [keep]
        if not isinstance(keep, list) or not keep or not all(isinstance(k, str) for k in keep):
            raise SweepError(f"{source}: keep: expected a list of result names")
        if metrics is None:
            from .results import METRICS
            metrics = [m.name for m in METRICS]
        unknown = [k for k in keep if k not in metrics]
        if unknown:
            raise SweepError(f"{source}: keep: unknown result {unknown[0]!r}; results are {', '.join(metrics)}")
        keep = tuple(dict.fromkeys(keep))

    sweep = Sweep(Path(path) if path else None, fixed, axes, tuple(explicit), keep, version, tuple(order))
    _check_points(sweep, source)
    return sweep


def _checked(name, value, where, source):
    """`value` if it is good for key `name`, else a SweepError naming where it is."""
    if name.startswith(SET_PREFIX):
        if isinstance(value, (dict, list)):
            raise SweepError(f"{source}: {where}: an override takes a scalar value "
                             "(a list at the top level is an axis)")
        if isinstance(value, float) and not math.isfinite(value):
            # NaN reached the results table's metadata, which JSON cannot hold: a traceback at the end
            raise SweepError(f"{source}: {where}: expected a finite number, got {value!r}")
        return value
    check, good, _ = OPTIONS[name]
    if not check(value):
        raise SweepError(f"{source}: {where}: expected {good}, got {value!r}")
    return value


def _check_points(sweep, source):
    """What every point needs: a model, a system, and batch + prompt + output tokens or requests."""
    keys = set(sweep.fixed) | set(sweep.axes)
    for i, extra in enumerate(sweep.explicit or ({},)):
        have = keys | set(extra)
        where = f"{source}: points[{i}]" if sweep.explicit else source
        for need in ("model", "system"):
            if need not in have:
                raise SweepError(f"{where}: no {need} (give {need}: NAME or a list of them)")
        uniform = {"batch", "prompt_tokens", "output_tokens"}
        if "requests" in have:
            if have & uniform:
                raise SweepError(f"{where}: requests replaces batch, prompt_tokens and output_tokens; "
                                 "give one or the other")
        elif not uniform <= have:
            missing = ", ".join(sorted(uniform - have))
            raise SweepError(f"{where}: no {missing} (or a requests file)")
        phases = set(sweep.axes.get("phase", ())) | ({sweep.fixed["phase"]} if "phase" in sweep.fixed else set()) \
            | ({extra["phase"]} if "phase" in extra else set())
        if "context" in have and (phases or {"decode"}) - {"decode"}:
            raise SweepError(f"{where}: context applies to phase decode only")
