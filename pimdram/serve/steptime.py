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
(system.SimulationState). Consecutive decode steps of an unchanged batch differ only in their
contexts, each one token longer: once two such steps have been built, their kernel records'
difference is the growth per step (trace.growth.record_growth, checked exact on the second
step), and the steps that follow are the first one grown (system.StepRun) instead of being
built, linked and placed again: the same kernels and the same timings, not an estimate.
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
#: GPT-3 requests: ~1 GB before these limits). A ragged attention kernel's timing is keyed by its
#: contexts (up to a few hundred pairs, ~20 kB a key), hence the low limit on timings; what they
#: are worth keeping for (a layer's FC products at a batch size) is timed again at little cost
MEMO_LIMIT = 4096
TIMINGS_LIMIT = 5_000


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
        self.grown = 0              # of the replays: steps timed as an earlier step grown (StepRun)
        self.steps = 0
        self._last = None           # (phase, groups, counts, traces, results) of the last step built
        self._run = None            # (phase, groups, counts, [StepRun], layout) grown from a step built
        self._pending = None        # (step built, the next one built, layout): a run's growth to derive
        self._bounds = None         # KV-cache parts' token bounds (_layout)
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
        step built once (mapping.step_traces) and its traces replayed with the stream's state;
        or, for a decode step that is an earlier one with every context d tokens longer, that
        step's traces grown d times (StepRun)."""
        from ..mapping.generate import step_traces
        from ..system import StepRun

        if len(self.state.timings) > TIMINGS_LIMIT:
            self.state.timings.clear()
        run = self._run
        if run is not None and run[0] == phase and run[2] == counts:
            d = _shift(run[1], groups)
            if d and self._layout(phase, groups) == run[4]:
                self.replays += len(counts)
                self.grown += len(counts)
                return [step(d) for step in run[3]]
        pending, self._pending = self._pending, None
        if pending is not None and pending[0][0] == phase and pending[0][2] == counts:
            # the third step of an unchanged batch: derive the growth from the first two now
            earlier, later, layout = pending
            d = _shift(earlier[1], groups)
            if d and self._layout(phase, groups) == layout:
                runs = self._grown_runs(earlier[3], earlier[5], later[3], later[4])
                if runs is not None:
                    self._run = (phase, earlier[1], counts, runs, layout)
                    self.replays += len(counts)
                    self.grown += len(counts)
                    return [step(d) for step in runs]
        if self._system_record is None:
            self._system_record = self.system.to_dict()
        traces = step_traces(self.model, self.system, self._workload(phase, groups), counts, self._system_record)
        steps = [StepRun(trace, self.system, self.interference, self.state) for trace in traces]
        out = [step(0) for step in steps]
        self.replays += len(steps)
        last, self._last = self._last, (phase, groups, counts, traces, out, steps)
        if phase == "decode" and last is not None and last[0] == phase and last[2] == counts \
                and _shift(last[1], groups) == 1:
            layout = self._layout(phase, groups)
            if layout == self._layout(phase, last[1]):
                # two steps of an unchanged batch: the growth is derived if a third comes (a
                # batch often changes after two, and deriving costs about as much as building)
                self._pending = (last, self._last, layout)
        return out

    def _layout(self, phase, groups):
        """What decides a step's kernels besides its numbers, as far as contexts change it: on
        which side of each KV-cache part's token bounds every group's cached and new tokens lie
        (a part a group fills no longer grows, and groups of equal tokens in a part share its
        kernel's context), and NeuPIMs' sub-batches (packed by request length). A grown step must
        have its run's."""
        from ..mapping.generate import _sub_batches, _token_bounds

        if self._bounds is None:
            self._bounds = _token_bounds(self.system)
        sides = tuple((c >= b, c + n >= b, c + n > b) for n, c, _ in groups for b in self._bounds)
        if self.system.policy != "neupims" or self.system.options.get("sub_batches", 1) <= 1:
            return sides, None
        _, owner = _sub_batches(self.system, self._workload(phase, groups))
        return sides, tuple(owner[i] for i in sorted(owner))

    def _grown_runs(self, earlier, steps, later, results):
        """The StepRuns `steps` of the traces `earlier` with the growth that takes them to
        `later` (one step on), or None when the traces differ in more than their numbers or a
        grown step does not reproduce `results` (later's replays) exactly."""
        from ..trace.growth import kernel_at, parse_grow, record_growth

        runs = []
        # the traces of one step share each kernel's numbers (step_traces): a kernel's growth is
        # derived once, by the operand lists its records share in both steps
        derived = {}
        for a, b, step, (seconds, joules) in zip(earlier, later, steps, results):
            if len(a.kernels) != len(b.kernels) or _where(a) != _where(b):
                return None
            records, parsed = [], []
            for x, y in zip(a.kernels, b.kernels):
                key = (id(x["operands"]), id(y["operands"]))
                hit = derived.get(key)
                if hit is None:
                    grow = record_growth(x, y)
                    if grow is None:
                        return None
                    hit = derived[key] = (grow, parse_grow({"grow": grow, "contexts": x.get("contexts")}))
                grow, p = hit
                r = dict(x, grow=grow) if grow else x
                z = kernel_at(r, 1, p)
                if any(z[f] != y[f] for f in y if f not in ("step", "intensity")):
                    return None
                records.append(r)
                parsed.append(p)
            grown = step.grown(records, parsed)
            got = grown(1)
            if abs(got[0] - seconds) > 1e-12 * seconds or abs(got[1] - joules) > 1e-12 * abs(joules):
                return None
            runs.append(grown)
        return runs


def _where(trace):
    """A trace's regions as far as timing sees them: their memory, kind, channels, banks and
    first row (a region's bytes, tokens and last row grow with the contexts)."""
    return {name: {f: (v[0] if f == "rows" else v) for f, v in r.items() if f not in ("bytes", "tokens")}
            for name, r in trace.header["placement"]["regions"].items()}


def _shift(base, groups):
    """d > 0 when `groups` are `base` with every context d tokens longer (the same new tokens
    and counts), else 0."""
    if len(base) != len(groups) or not base:
        return 0
    d = groups[0][1] - base[0][1]
    if d <= 0:
        return 0
    for (n0, c0, k0), (n1, c1, k1) in zip(base, groups):
        if n0 != n1 or k0 != k1 or c1 - c0 != d:
            return 0
    return d


def _round_up(x, g):
    return -(-x // g) * g


def error_summary(checks):
    """(largest |relative error|, mean relative error) of the checks, NaN without any."""
    if not checks:
        return math.nan, math.nan
    errs = [c.error for c in checks]
    return max(abs(e) for e in errs), sum(errs) / len(errs)
