"""Step times for the scheduler from kernel replay: each step's kernels are generated and
replayed on the system (pimdram.mapping + pimdram.system), never taken from a fitted model.

A served stream has thousands of steps, each with its own mix of contexts. Three composition
rules make it affordable (docs/serving.md, "Step times and composition rules", states them with
their measured errors); `StepTimer.checks` records, for the first step of each phase and every
`check_every`-th step, the composed time against the step replayed without any of them (every
layer, the whole model placed, contexts as they are, every distinct PIM channel simulated):

1. Layers (`layers="extrapolate"`, the default): the step built once with two layers, replayed
   with one and two, t1 + (L - 1)(t2 - t1); exact when every layer repeats (checked on the first
   step of each phase; every layer from then on when not).
2. Ragged PIM attention (composition "instances", the default): a channel holding n instances of
   contexts L1..Ln takes sum_i t(n, Li) / n of uniform simulated channels (PimMemory.run_lengths).
3. Context granularity (off by default): contexts (and a prefill's new tokens) rounded up to a
   multiple of `granularity`, and equal rounded steps replayed once.

Kernel timings, PIM simulations and the shares of rule 2 persist across steps
(system.SimulationState).
"""
import math
from dataclasses import dataclass

from ..config.system import load_system
from ..errors import WorkloadError
from ..llm.models import load_model
from ..llm.workload import Request, Workload
from ..system.interference import InterferenceOptions

#: memoised steps, and kernel timings of the stream's state, kept before they are emptied: with
#: contexts as they are, steps rarely recur and a long stream's memo would only grow (2,000
#: GPT-3 requests: ~1 GB before these limits)
MEMO_LIMIT = 4096
TIMINGS_LIMIT = 50_000


@dataclass
class Check:
    step: int
    phase: str
    composed_s: float
    exact_s: float
    composed_j: float = math.nan
    exact_j: float = math.nan

    @property
    def error(self):
        """Relative error of the composed time against the exact one."""
        return (self.composed_s - self.exact_s) / self.exact_s if self.exact_s else 0.0


class StepTimer:
    """`timer(phase, groups)` -> (seconds, joules) of one step on `system`; `groups` are
    (new_tokens, context, count) triples (scheduler.serve's step_time). A prefill group with a
    context is a chunk of a prompt whose first `context` tokens are cached."""

    def __init__(self, model, system, granularity=1, layers="extrapolate", check_every=0, dtype="fp16",
                 composition="instances", interference=True):
        from ..system import SimulationState

        self.model = load_model(model)
        self.system = load_system(system)
        if isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 1:
            raise WorkloadError(f"granularity must be a positive whole number of tokens, got {granularity!r}")
        self.granularity = granularity
        if layers not in ("all", "extrapolate"):
            raise WorkloadError(f"layers must be 'all' or 'extrapolate', got {layers!r}")
        self.layers = layers
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 0:
            raise WorkloadError(f"check_every must be a whole number of steps (0: first steps only), got {check_every!r}")
        self.check_every = check_every
        self.dtype = dtype
        self.interference = InterferenceOptions(enabled=bool(interference))
        self.state = SimulationState(composition)
        self.exact_state = SimulationState("exact")
        self.memo = {}
        self._system_record = None
        self.checks = []
        self.replays = 0
        self.steps = 0
        self._phases_checked = set()

    def close(self):
        """Nothing is held outside memory; kept for callers that close what they open."""

    def __call__(self, phase, groups):
        index = self.steps
        self.steps += 1
        groups = tuple(groups)
        rep = self.representative(phase, groups)
        key = (phase, rep)
        if key not in self.memo:
            if len(self.memo) >= MEMO_LIMIT:
                self.memo.clear()
            self.memo[key] = self._composed(phase, rep)
        seconds, joules = self.memo[key]
        first = phase not in self._phases_checked
        if first or (self.check_every and index % self.check_every == 0):
            self._phases_checked.add(phase)
            exact_s, exact_j = self._replay(phase, groups, None, exact=True)
            if first and self.layers == "extrapolate":
                whole_s, whole_j = self._replay(phase, rep, None)
                t, _ = self.memo[key]
                if abs(t - whole_s) > 1e-9 * whole_s:
                    # the layers do not repeat exactly on this system: every layer from here on
                    self.layers = "all"
                    self.memo.clear()
                    self.memo[key] = seconds, joules = whole_s, whole_j
            self.checks.append(Check(index, phase, seconds, exact_s, joules, exact_j))
        return seconds, joules

    def representative(self, phase, groups):
        """The step replayed in place of `groups`: every context (and a prefill's new tokens)
        rounded up to the granularity, equal groups merged, sorted."""
        g = self.granularity
        counts = {}
        for n, c, k in groups:
            key = (_round_up(n, g) if phase == "prefill" else n, _round_up(c, g))
            counts[key] = counts.get(key, 0) + k
        return tuple((n, c, k) for (n, c), k in sorted(counts.items()))

    def _composed(self, phase, groups):
        L = self.model.layers
        if self.layers == "all" or L == 1:
            return self._replay(phase, groups, None)
        (t1, e1), (t2, e2) = self._replay_layers(phase, groups, (1, 2))
        return t1 + (L - 1) * (t2 - t1), e1 + (L - 1) * (e2 - e1)

    def _workload(self, phase, groups):
        requests, i = [], 0
        news = {n for n, _, _ in groups}
        if phase == "decode" and len(news) > 1:
            raise WorkloadError(f"a decode step's requests must process equal numbers of new tokens, got {sorted(news)}")
        for n, c, k in groups:
            for _ in range(k):
                if phase == "prefill":     # n prompt tokens, the first c of them cached (a later chunk)
                    requests.append(Request(i, c + n, 2, cached=c))
                else:                      # n new tokens against c cached ones (context = prompt)
                    requests.append(Request(i, c, 2))
                i += 1
        return Workload(tuple(requests), phase=phase, speculation=next(iter(news)) if phase == "decode" else 1,
                        weight_dtype=self.dtype, activation_dtype=self.dtype, kv_cache_dtype=self.dtype)

    def _replay(self, phase, groups, layers, exact=False):
        """(seconds, joules) of one step of `groups` with its first `layers` layers (None: all).
        `exact`: generated as `pimdram gen` generates it (the whole model placed) and every
        distinct PIM channel simulated."""
        if not exact:
            return self._replay_layers(phase, groups, (layers or self.model.layers,))[0]
        from ..mapping import generate_kernel_trace
        from ..system import simulate_kernel_trace

        trace = generate_kernel_trace(self.model, self.system, self._workload(phase, groups), layers=layers,
                                      allow_overcommit=True)
        s = simulate_kernel_trace(trace, self.system, interference=self.interference, state=self.exact_state)
        self.replays += 1
        return s["simulated_seconds"], s["energy_j"]

    def _replay_layers(self, phase, groups, counts):
        """[(seconds, joules)] of the step with its first n layers for each n of `counts`, the
        step built once (mapping.step_traces) and its traces replayed with the stream's state."""
        from ..mapping.generate import step_traces
        from ..system import simulate_kernel_trace

        if self._system_record is None:
            self._system_record = self.system.to_dict()
        out = []
        if len(self.state.timings) > TIMINGS_LIMIT:
            self.state.timings.clear()
        for trace in step_traces(self.model, self.system, self._workload(phase, groups), counts, self._system_record):
            s = simulate_kernel_trace(trace, self.system, interference=self.interference, state=self.state)
            self.replays += 1
            out.append((s["simulated_seconds"], s["energy_j"]))
        return out


def _round_up(x, g):
    return -(-x // g) * g


def error_summary(checks):
    """(largest |relative error|, mean relative error) of the checks, NaN without any."""
    if not checks:
        return math.nan, math.nan
    errs = [c.error for c in checks]
    return max(abs(e) for e in errs), sum(errs) / len(errs)
