"""`pimdram serve`'s run: a request file served on a system by the iteration-level scheduler, each
step timed by kernel replay (StepTimer), the results written to one stats file (docs/serving.md)."""
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .._atomic import one_run, output_path
from ..config.files import SafeDumper, names_a_file
from ..config.system import load_system
from ..errors import WorkloadError
from ..llm.models import load_model
from ..llm.workload import dtype_bytes
from ..stats import StatsWriter, schema, standard_table
from .capacity import plan_kv_cache, swap_time
from .metrics import request_times, stream_metrics
from .requests import read_requests
from .scheduler import SchedulerOptions, serve


@dataclass(frozen=True)
class ServeResult:
    output: Path
    summary: dict                 # the serve_summary row


@one_run
def serve_requests(requests, output, *, model, system, options=SchedulerOptions(), slo_ttft_s=None, slo_tpot_s=None,
                   granularity=1, layers="extrapolate", check_every=0, dtype="fp16", overwrite=False, progress=None,
                   step_timer=None, ragged_pim="composed", stages="auto", interference=True):
    """Serve the requests of request file `requests` with `model` on `system` (names, paths or specs)
    and write the stats file `output`. Returns a ServeResult.

    options: SchedulerOptions; its kv_blocks None means the capacity the system's memories give
    (serve.capacity). granularity, layers, check_every and ragged_pim ('composed' or 'exact'): the
    StepTimer's composition rules (serve.steptime; docs/serving.md); interference: simulate shared
    memories' interference in each step's replay (as `pimdram replay`) or let devices take turns. stages: 'one', 'two' or
    'auto' (two where the system runs prefill and decode on different devices, as hybe; else
    one), overriding options.stages.
    step_timer: a callable `(phase, groups) -> (seconds, joules)` in place of the StepTimer (for
    tests); it may have `checks` and `replays` as StepTimer has."""
    started = time.perf_counter()
    for name, v in (("slo_ttft_s", slo_ttft_s), ("slo_tpot_s", slo_tpot_s)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise WorkloadError(f"{name} must be a positive number of seconds, got {v!r}")
    requests = Path(requests)
    inputs = [requests] + [f for f in (model, system) if isinstance(f, (str, Path)) and names_a_file(f)]
    output_path(output, overwrite=overwrite, inputs=inputs)          # before the run, not after it
    reqs = read_requests(requests)
    model = load_model(model)
    system = load_system(system)
    plan = plan_kv_cache(model, system, options.block_size, options.max_tokens, dtype, options.kv_blocks)
    if stages not in ("auto", "one", "two"):
        raise WorkloadError(f"stages must be auto, one or two, got {stages!r}")
    if stages == "auto":
        from .pipeline import two_stages
        stages = "two" if two_stages(system) else options.stages
    opts = dataclasses.replace(options, kv_blocks=plan.blocks, stages=stages)
    swap = swap_time(system, plan) if opts.preemption == "swap" else None
    own_timer = step_timer is None
    if own_timer:
        from .steptime import StepTimer
        if ragged_pim not in ("composed", "exact"):
            raise WorkloadError(f"ragged_pim must be 'composed' or 'exact', got {ragged_pim!r}")
        step_timer = StepTimer(model, system, granularity=granularity or 1, layers=layers,
                               check_every=check_every, dtype=dtype,
                               composition="instances" if ragged_pim == "composed" else "exact",
                               interference=interference)
    try:
        results, steps = serve(reqs, opts, step_timer, swap, progress)
    finally:
        if own_timer:
            step_timer.close()
    checks = list(getattr(step_timer, "checks", ()))
    replays = int(getattr(step_timer, "replays", 0))

    req_cols = _fields(results, "id", "arrival_s", "first_token_s", "finish_s", "prompt_tokens", "output_tokens",
                       "preemptions")
    req_cols["ttft_s"], req_cols["tpot_s"] = request_times(req_cols["arrival_s"], req_cols["first_token_s"],
                                                           req_cols["finish_s"], req_cols["output_tokens"])
    kv_blocks = np.array([s.kv_blocks for s in steps], dtype=np.int64)
    step_cols = {
        "step": np.arange(len(steps), dtype=np.int64),
        **_fields(steps, "start_s", "seconds"),
        "phase": np.array([s.phase for s in steps], dtype=str) if steps else np.zeros(0, dtype="U1"),
        **_fields(steps, "batch", "waiting", "tokens", "output_tokens", "preempted", "swap_s"),
        "kv_blocks": kv_blocks,
        **_fields(steps, "energy_j"),
    }
    kv_names = [m.memory for m in plan.memories]
    for m in plan.memories:
        step_cols[schema.kv_bytes_column(m.memory)] = kv_blocks * float(plan.block_bytes) * m.share
    idle_w = _static_power_w(system)
    summary = stream_metrics(req_cols, step_cols, slo_ttft_s, slo_tpot_s, idle_w, plan.block_bytes)
    errors = [c.error for c in checks]
    summary.update({
        "block_size": opts.block_size,
        "kv_block_bytes": plan.block_bytes,
        "kv_blocks": plan.blocks,
        "kv_capacity_bytes": float(plan.blocks * plan.block_bytes),
        "composition_checks": len(checks),
        "composition_error_max": max((abs(e) for e in errors), default=math.nan),
        "composition_error_mean": sum(errors) / len(errors) if errors else math.nan,
        "step_replays": replays,
    })
    peak = summary["kv_peak_blocks"]
    memories = {
        "memory": kv_names,
        "capacity_bytes": [m.capacity_bytes for m in plan.memories],
        "weights_bytes": [m.weights_bytes for m in plan.memories],
        "activations_bytes": [m.activations_bytes for m in plan.memories],
        "share": [m.share for m in plan.memories],
        "kv_capacity_bytes": [plan.blocks * plan.block_bytes * m.share for m in plan.memories],
        "kv_peak_bytes": [peak * plan.block_bytes * m.share for m in plan.memories],
    }
    check_cols = {
        "step": [c.step for c in checks],
        "phase": np.array([c.phase for c in checks], dtype=str) if checks else np.zeros(0, dtype="U1"),
        "composed_s": [c.composed_s for c in checks],
        "exact_s": [c.exact_s for c in checks],
        "error": errors,
    }
    config = {
        "serve": {
            "requests": str(requests),
            "model": model.name,
            "dtype": dtype,
            "scheduler": dataclasses.asdict(opts),
            "kv_blocks": "given" if options.kv_blocks is not None else "derived",
            "kv_blocks_derived": plan.derived_blocks,
            "step_timer": {"granularity": granularity or 1, "layers": layers,
                           "check_every": check_every, "ragged_pim": ragged_pim,
                           "interference": bool(interference)} if own_timer else {"custom": True},
            "slo": {"ttft_s": slo_ttft_s, "tpot_s": slo_tpot_s},
        },
        "model": model.summary(kv_bytes=dtype_bytes(dtype, 1)),
        "system": system.to_dict(),
    }
    attrs = {
        schema.ATTR_CONFIG: yaml.dump(config, Dumper=SafeDumper, sort_keys=False),
        schema.ATTR_TRACE_SHA256: hashlib.sha256(requests.read_bytes()).hexdigest(),
        schema.ATTR_TRACE_PATH: str(requests),
        schema.ATTR_SEED: 0,
        schema.ATTR_COMMAND_NAMES: [],
        schema.ATTR_LEVELS: [],
        "description": f"{len(reqs)} requests of {requests.name} served with {model.name} on {system.name}",
    }
    summary["wall_seconds"] = time.perf_counter() - started
    with StatsWriter(output, attrs, overwrite=overwrite, inputs=inputs) as writer:
        writer.write_table(schema.SERVE_SUMMARY, standard_table(schema.SERVE_SUMMARY,
                                                                {k: [v] for k, v in summary.items()}))
        writer.write_table(schema.REQUESTS, standard_table(schema.REQUESTS, req_cols))
        writer.write_table(schema.SERVE_STEPS, standard_table(schema.SERVE_STEPS, step_cols, kv_memories=kv_names))
        writer.write_table(schema.SERVE_CHECKS, standard_table(schema.SERVE_CHECKS, check_cols))
        writer.write_table(schema.KV_MEMORIES, standard_table(schema.KV_MEMORIES, memories))
    return ServeResult(Path(output), summary)


def _static_power_w(system):
    """W the system draws whether busy or not (its devices' and memories' static power)."""
    from ..system.tables import static_powers

    return math.fsum(w for _, w in static_powers(system).values() if math.isfinite(w))


def _fields(items, *names):
    """{name: [item.name for each item]} for the columns of a stats table, in the order given."""
    return {name: [getattr(x, name) for x in items] for name in names}
