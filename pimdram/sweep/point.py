"""One point of a sweep: its inputs resolved to plain data (model, system, workload), the content
hash that names it, and `run_point`, what a worker runs for it (gen -> replay -> summary)."""
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..errors import PimdramError


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run a point, resolved in the driver (a cluster's workers need
    neither the sweep file nor the user's config files): picklable plain data."""
    model: object            # llm.ModelSpec
    system: object           # config.system.System, with the point's overrides applied
    workload: object         # llm.Workload
    layers: object
    only: object
    allow_overcommit: bool
    symmetry: bool

    def identity(self):
        """The resolved inputs as plain data: what the point's hash is taken over."""
        return {"pimdram": __version__, "model": self.model.to_dict(), "system": self.system.to_dict(),
                "workload": self.workload.describe(), "layers": self.layers, "only": self.only,
                "allow_overcommit": self.allow_overcommit, "symmetry": self.symmetry}


def point_hash(task):
    """sha256 (hex) of a point's resolved inputs and the pimdram version: equal for equal inputs,
    whatever they were called (a preset name or its file, `prompt` or `prompt_tokens`)."""
    text = json.dumps(task.identity(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Resolver:
    """Turns points into Tasks, loading each distinct model, system (with its overrides) and
    requests file once."""

    def __init__(self):
        self._models = {}
        self._systems = {}

    def task(self, point):
        """The Task of `point`; a PimdramError if its model, system, overrides or workload are bad."""
        from ..config.system import load_system
        from ..llm import Workload, load_model

        o = point.options
        if o["model"] not in self._models:
            self._models[o["model"]] = _cached(lambda: load_model(o["model"]))
        key = (o["system"], json.dumps(point.overrides, sort_keys=True, default=str))
        if key not in self._systems:
            self._systems[key] = _cached(lambda: load_system(o["system"], dict(point.overrides)))
        model, system = self._models[o["model"]](), self._systems[key]()
        workload = Workload.from_options(o["batch"], o["prompt_tokens"], o["output_tokens"], requests=o["requests"],
                                         phase=o["phase"], context=o["context"], speculation=o["speculation"],
                                         dtype=o["dtype"], weight_dtype=o["weight_dtype"],
                                         activation_dtype=o["activation_dtype"], kv_dtype=o["kv_dtype"])
        return Task(model, system, workload, o["layers"], o["only"], o["allow_overcommit"], o["symmetry"])


def _cached(load):
    """A thunk returning load()'s value, or raising its error again (a bad name fails every point
    that uses it, with one load)."""
    try:
        value = load()
    except PimdramError as exc:
        error = exc

        def fail():
            raise error
        return fail
    return lambda: value


def error_text(exc):
    """One line for the table's error column: a PimdramError's message; anything else (a bug in
    pimdram) with its type."""
    text = str(exc) if isinstance(exc, PimdramError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def run_point(task):
    """Run one point in this process: gen, replay, summary. Returns {status, error, metrics,
    version}; an error of the point is returned, not raised, so one bad point does not stop a sweep."""
    from ..mapping import generate_kernel_trace
    from ..system import replay_kernels
    from .results import STATUS_FAILED, STATUS_OK, metrics_of_stats

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="pimdram-point-") as tmp:
            trace_path, stats_path = Path(tmp) / "trace.jsonl", Path(tmp) / "stats.h5"
            trace = generate_kernel_trace(task.model, task.system, task.workload, layers=task.layers,
                                          only=task.only, allow_overcommit=task.allow_overcommit)
            trace.write(trace_path)
            replay_kernels(trace_path, stats_path, system=task.system, symmetry=task.symmetry)
            metrics = metrics_of_stats(stats_path, time.perf_counter() - started)
        return {"status": STATUS_OK, "error": "", "metrics": metrics, "version": __version__}
    except Exception as exc:     # recorded in the point's row; the sweep goes on
        return {"status": STATUS_FAILED, "error": error_text(exc), "metrics": None, "version": __version__}
