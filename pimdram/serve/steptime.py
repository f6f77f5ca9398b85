"""Step times for the scheduler from kernel replay: each step's kernel trace is generated and
replayed on the system, and results with equal inputs are reused.

Two composition rules make a stream affordable; both are stated here and in docs/serving.md,
and both are checked while the stream runs (`StepTimer.checks`):

- Context granularity. A decode request's cached tokens are rounded up to a multiple of
  `granularity` (default: the KV block size) before the step is replayed, so that steps whose
  contexts differ by less than a block share one replay. Rounding up can only lengthen a step.
- Layers. With `layers="extrapolate"`, a step is replayed with its first one and two decoder
  layers and the time (and energy) of all L layers is t1 + (L - 1)(t2 - t1): exact when every
  layer repeats the same kernels on the same devices, as in the presets. The first step of each
  phase is also replayed whole and the two compared.

Every `check_every`-th step (and the first of each phase) is also replayed exactly (unrounded
contexts, all layers); the relative error of the composed time is recorded.
"""
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..llm.models import load_model
from ..llm.workload import Request, Workload


@dataclass
class Check:
    step: int
    phase: str
    composed_s: float
    exact_s: float

    @property
    def error(self):
        return (self.composed_s - self.exact_s) / self.exact_s if self.exact_s else 0.0


class StepTimer:
    """`timer(phase, groups)` -> (seconds, joules) of one step on `system` (scheduler.serve's
    step_time)."""

    def __init__(self, model, system, granularity=16, layers="all", check_every=0, workdir=None, dtype="fp16"):
        self.model = load_model(model)
        self.system = system
        self.granularity = max(1, int(granularity))
        if layers not in ("all", "extrapolate"):
            raise ValueError("layers must be 'all' or 'extrapolate'")
        self.layers = layers
        self.check_every = check_every
        self.dtype = dtype
        self._tmp = tempfile.TemporaryDirectory(prefix="pimdram-serve-") if workdir is None else None
        self.workdir = Path(workdir) if workdir is not None else Path(self._tmp.name)
        self.memo = {}
        self.checks = []
        self.replays = 0
        self.steps = 0
        self._phases_checked = set()

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()

    def __call__(self, phase, groups):
        index = self.steps
        self.steps += 1
        key_groups = self.representative(phase, groups)
        key = (phase, key_groups)
        if key not in self.memo:
            self.memo[key] = self._composed(phase, key_groups)
        seconds, joules = self.memo[key]
        if phase not in self._phases_checked or (self.check_every and index % self.check_every == 0):
            first = phase not in self._phases_checked
            self._phases_checked.add(phase)
            exact, _ = self._replay(phase, groups, None)
            self.checks.append(Check(index, phase, seconds, exact))
            if first and self.layers == "extrapolate" and abs(seconds - exact) > 1e-9 * exact and key_groups == groups:
                # the layers do not repeat exactly on this system: replay every layer from here on
                self.layers = "all"
                self.memo.clear()
                seconds, joules = self.memo.setdefault(key, self._composed(phase, key_groups))
        return seconds, joules

    def representative(self, phase, groups):
        """The step replayed in place of `groups`: a decode step as its requests all at their mean
        context rounded up to the granularity; a prefill with each prompt rounded up to it."""
        g = self.granularity
        if phase == "prefill":
            return tuple(sorted(_merge((_round_up(n, g), c, k) for n, c, k in groups)))
        count = sum(k for _, _, k in groups)
        new = max(n for n, _, _ in groups)
        mean = sum(c * k for _, c, k in groups) / count
        return ((new, _round_up(math.ceil(mean), g), count),)

    def _composed(self, phase, groups):
        if self.layers == "all":
            return self._replay(phase, groups, None)
        t1, e1 = self._replay(phase, groups, 1)
        L = self.model.layers
        if L == 1:
            return t1, e1
        t2, e2 = self._replay(phase, groups, 2)
        return t1 + (L - 1) * (t2 - t1), e1 + (L - 1) * (e2 - e1)

    def _replay(self, phase, groups, layers):
        from ..mapping import generate_kernel_trace
        from ..system import simulate_kernel_trace

        requests, i = [], 0
        for n, c, k in groups:
            for _ in range(k):
                # prefill: n prompt tokens; decode: one token against c cached ones (context = prompt)
                requests.append(Request(i, n if phase == "prefill" else c, 2))
                i += 1
        wl = Workload(tuple(requests), phase=phase, weight_dtype=self.dtype, activation_dtype=self.dtype,
                      kv_cache_dtype=self.dtype)
        trace = generate_kernel_trace(self.model, self.system, wl, layers=layers, allow_overcommit=True)
        s = simulate_kernel_trace(trace, self.system)
        self.replays += 1
        return s["simulated_seconds"], s["energy_j"]


def _round_up(x, g):
    return -(-x // g) * g


def _merge(triples):
    counts = {}
    for n, c, k in triples:
        counts[(n, c)] = counts.get((n, c), 0) + k
    return [(n, c, k) for (n, c), k in counts.items()]


def error_summary(checks):
    """(largest |relative error|, mean relative error) of the checks, NaN without any."""
    if not checks:
        return math.nan, math.nan
    errs = [c.error for c in checks]
    return max(abs(e) for e in errs), sum(errs) / len(errs)
