"""Runs claims: generates and replays the kernel traces each needs (every distinct run once, shared
between claims), forms each point's ratio and the claim's figure, and returns plain rows."""
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .claims import CLAIMS, Claim, ValidateError

#: a run's summary figure each metric reads
_FIGURE = {"throughput": "tokens_per_s", "decode_throughput": "decode_tokens_per_s",
           "energy_efficiency": "energy_per_token_j", "stream_throughput": "stream_tokens_per_s"}


@dataclass(frozen=True)
class Run:
    """One generate + replay: what makes two claims' runs the same run."""
    model: str
    system: str
    batch: int
    prompt: int
    output: int
    phase: str
    context: int
    speculation: int
    layers: int
    overcommit: bool
    overrides: tuple = ()      # (key, value) pairs set on the system


def select_claims(names):
    """The claims `names` ask for: 'all', claim names or paper names (case-insensitive), in
    registry order, each once; Claim objects (claims of your own) are taken as they are, after
    the registry's. An unknown name is an error listing the known ones."""
    own = [n for n in (names or []) if isinstance(n, Claim)]
    names = [n.lower() for n in (names or ["all"]) if not isinstance(n, Claim)] or ([] if own else ["all"])
    known = {c.name: c for c in CLAIMS}
    papers = {}
    for c in CLAIMS:
        papers.setdefault(c.paper.lower(), []).append(c.name)
    wanted = set()
    for n in names:
        if n == "all":
            wanted.update(known)
        elif n in known:
            wanted.add(n)
        elif n in papers:
            wanted.update(papers[n])
        else:
            raise ValidateError(f"unknown claim {n!r}; known: all, {', '.join(known)} (or a paper: "
                                f"{', '.join(sorted(papers))})")
    return [c for c in CLAIMS if c.name in wanted] + own


def point_ratio(metric, system_value, baseline_value):
    """The paper-style ratio of one point: tokens/s of the system over the baseline's, or for
    energy efficiency the baseline's energy per token over the system's."""
    if metric == "energy_efficiency":
        return baseline_value / system_value
    return system_value / baseline_value


def aggregate(kind, ratios):
    """pimdram's figure for a claim from its points' ratios."""
    ratios = list(ratios)
    if kind == "max":
        return max(ratios)
    if kind == "geomean":
        return math.exp(math.fsum(math.log(r) for r in ratios) / len(ratios))
    if len(ratios) != 1:
        raise ValidateError("a single-point claim has one ratio")
    return ratios[0]


class Runner:
    """Generates and replays runs in a scratch directory, each distinct run once."""

    def __init__(self, workdir, progress=None):
        self.workdir = Path(workdir)
        self.progress = progress
        self.results = {}
        self.total = 0

    def plan(self, claims, quick):
        """Register the runs the claims need (for the progress total)."""
        runs = {r for c in claims for r in self.runs_of(c, quick)}
        self.total = len(runs | set(self.results))

    @staticmethod
    def runs_of(claim, quick):
        points = claim.quick_points() if quick else claim.points
        return [r for p in points for r in point_runs(claim, p)]

    def summary(self, run):
        if run not in self.results:
            self.results[run] = self._execute(run)
            if self.progress is not None:
                self.progress(len(self.results), max(self.total, len(self.results)))
        return self.results[run]

    def _execute(self, run):
        from ..llm import Workload
        from ..mapping import generate_kernel_trace
        from ..system import replay_kernels

        warnings = []
        workload = Workload.uniform(run.batch, run.prompt, run.output, phase=run.phase, context=run.context,
                                    speculation=run.speculation)
        from ..config.system import load_system
        system = load_system(run.system, dict(run.overrides)) if run.overrides else run.system
        trace = generate_kernel_trace(run.model, system, workload, layers=run.layers,
                                      allow_overcommit=run.overcommit, warn=warnings.append)
        path = self.workdir / f"run{len(self.results)}.jsonl"
        trace.write(path)
        s = replay_kernels(path, path.with_suffix(".h5"), overwrite=True).summary
        path.unlink()
        path.with_suffix(".h5").unlink()
        return {"tokens_per_s": s["tokens_per_s"], "decode_tokens_per_s": s["decode_tokens_per_s"],
                "energy_per_token_j": s["energy_per_token_j"], "overcommitted": bool(warnings),
                "prefill_seconds": s["prefill_seconds"], "simulated_seconds": s["simulated_seconds"],
                "energy_j": s["energy_j"]}

    def claim_row(self, claim, quick, variant=None):
        """One row: the claim, the paper's figure, pimdram's, their ratio, and every point."""
        figure = _FIGURE[claim.metric]
        points = []
        for p in (claim.quick_points() if quick else claim.points):
            sys_run, base_run = point_runs(claim, p)
            a, b = self.summary(sys_run), self.summary(base_run)
            if claim.metric == "stream_throughput":
                a, b = stream_summary(sys_run, a, p.stream), stream_summary(base_run, b, p.stream)
            points.append({
                "model": p.model, "batch": p.batch, "prompt": p.prompt, "output": p.output, "phase": p.phase,
                "context": p.context, "speculation": p.speculation, "layers": p.layers, "stream": p.stream,
                "system_value": a[figure], "baseline_value": b[figure], "unit": _UNITS[figure],
                "ratio": point_ratio(claim.metric, a[figure], b[figure]),
                "overcommitted": [r.system for r, s in ((sys_run, a), (base_run, b)) if s["overcommitted"]],
            })
        value = aggregate(claim.aggregate, [pt["ratio"] for pt in points])
        row = {
            "name": claim.name, "paper": claim.paper, "claim": claim.claim,
            "reference": claim.reference, "pimdram": value, "ratio": value / claim.reference, "unit": "x",
            "bound": claim.bound, "metric": claim.metric, "aggregate": claim.aggregate,
            "system": claim.system, "baseline": claim.baseline, "quick": bool(quick), "points": points,
        }
        if variant is not None:
            row["variant"] = variant
        return row


_UNITS = {"tokens_per_s": "tokens/s", "decode_tokens_per_s": "tokens/s", "energy_per_token_j": "J/token",
          "stream_tokens_per_s": "tokens/s"}


def stream_summary(run, summary, n):
    """A run's summary with the tokens/s of `n` copies of its batch queued at time 0 and served as
    the system's mapping allows: stage-pipelined where prefill and decode run on different devices
    (at most as many requests in flight as the decode memory holds), else one after another."""
    from ..config.system import load_system
    from ..llm.models import load_model
    from ..serve.pipeline import decode_residency, pipeline_schedule, stage_split, stream_figures, two_stages

    system, model = load_system(run.system), load_model(run.model)
    times = [stage_split(summary)] * n
    resident = decode_residency(system, model, run.prompt, run.output)
    if resident is not None:
        resident = max(1, resident // run.batch)
    schedule = pipeline_schedule([0.0] * n, times, pipelined=two_stages(system), max_resident=resident)
    return dict(summary, stream_tokens_per_s=stream_figures([0.0] * n, [run.batch * run.output] * n, schedule))


def point_runs(claim, point):
    """The (system, baseline) runs of one of a claim's points."""
    phase = "decode" if point.phase == "mean-decode" else point.phase
    return tuple(Run(point.model, system, point.batch, point.prompt, point.output, phase, point.context,
                     point.speculation, point.layers, claim.overcommit, tuple(claim.overrides))
                 for system in (claim.system, claim.baseline))


def _variant_text(alternative):
    """`key=value, ...` of an assumption's alternative (a system override as its dotted key)."""
    parts = []
    for k, v in alternative.items():
        parts.extend(f"{key}={value}" for key, value in v) if k == "overrides" else parts.append(f"{k}={v}")
    return ", ".join(parts)


def run_claims(names=None, quick=False, sensitivity=False, progress=None):
    """Rows of `pimdram validate`: one per claim `names` selects ('all' or None: every claim; see
    select_claims), in registry order; with `sensitivity`, after each claim one row per alternative of its
    assumptions (its `variant` names the change). `quick` runs each claim's quick points only.
    `progress(done, total)` is called after each generate + replay."""
    claims = select_claims(names)
    jobs = []
    for c in claims:
        jobs.append((c, None))
        if sensitivity:
            for a in c.assumptions:
                for alt in a.alternatives:
                    jobs.append((c.vary(alt), _variant_text(alt)))
    with tempfile.TemporaryDirectory(prefix="pimdram-validate-") as work:
        runner = Runner(work, progress)
        runner.plan([c for c, _ in jobs], quick)
        return [runner.claim_row(c, quick, variant) for c, variant in jobs]
