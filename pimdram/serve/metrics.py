"""The metrics of a served stream, from its per-request and per-step records (docs/serving.md,
"Metrics"): TTFT and TPOT percentiles, throughput, goodput under SLOs, energy per token, peak KV
occupancy. Percentiles are nearest-rank (scheduler.percentiles: the smallest value with at least
q% of the values at or below it; no interpolation).
"""
import math

import numpy as np

from .scheduler import percentiles


def request_times(arrival_s, first_token_s, finish_s, output_tokens):
    """(TTFT, TPOT) arrays: TTFT = first token - arrival; TPOT = (finish - first token) /
    (output tokens - 1), NaN for a request of one output token."""
    arrival, first, finish = (np.asarray(a, dtype=float) for a in (arrival_s, first_token_s, finish_s))
    output = np.asarray(output_tokens, dtype=np.int64)
    ttft = first - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(output > 1, (finish - first) / np.maximum(output - 1, 1), math.nan)
    return ttft, tpot


def meets_slos(ttft, tpot, slo_ttft_s=None, slo_tpot_s=None):
    """Boolean array: the requests whose TTFT is at most slo_ttft_s and whose TPOT is at most
    slo_tpot_s (an SLO not given holds for all; a one-token request has no TPOT and meets it)."""
    ok = np.ones(len(ttft), dtype=bool)
    if slo_ttft_s is not None and not math.isnan(slo_ttft_s):
        ok &= ttft <= slo_ttft_s
    if slo_tpot_s is not None and not math.isnan(slo_tpot_s):
        ok &= np.isnan(tpot) | (tpot <= slo_tpot_s)
    return ok


def stream_metrics(requests, steps, slo_ttft_s=None, slo_tpot_s=None, idle_power_w=0.0, block_bytes=0):
    """The serve_summary figures (without the run's bookkeeping) of `requests` (columns: arrival_s,
    first_token_s, finish_s, prompt_tokens, output_tokens, preemptions) and `steps` (columns:
    start_s, seconds, phase, kv_blocks, energy_j), both mappings of arrays.

    simulated_seconds is the span from the first arrival to the last finish; throughput and
    goodput are output tokens over it. Energy is the steps' energy plus `idle_power_w` (static
    power) over the span's time without a step."""
    arrival = np.asarray(requests["arrival_s"], dtype=float)
    finish = np.asarray(requests["finish_s"], dtype=float)
    output = np.asarray(requests["output_tokens"], dtype=np.int64)
    ttft, tpot = request_times(arrival, requests["first_token_s"], finish, output)
    done = ~np.isnan(finish)
    span = float(finish[done].max() - arrival.min()) if done.any() else math.nan
    seconds = np.asarray(steps["seconds"], dtype=float)
    busy = math.fsum(seconds)
    phases = np.asarray(steps["phase"]).astype(str)
    out_tokens = int(output[done].sum())
    t = percentiles(ttft[done].tolist())
    valid_tpot = tpot[done & ~np.isnan(tpot)]
    p = percentiles(valid_tpot.tolist())
    lat = percentiles((finish - arrival)[done].tolist(), (50, 99))
    slo_given = any(x is not None and not math.isnan(x) for x in (slo_ttft_s, slo_tpot_s))
    met = meets_slos(ttft, tpot, slo_ttft_s, slo_tpot_s) & done
    step_energy = math.fsum(np.asarray(steps["energy_j"], dtype=float))
    idle = max(0.0, span - busy) if not math.isnan(span) else 0.0
    idle_energy = idle * idle_power_w
    energy = step_energy + idle_energy
    kv = np.asarray(steps["kv_blocks"], dtype=np.int64)
    peak = int(kv.max()) if len(kv) else 0

    def per_s(x):
        return x / span if span and not math.isnan(span) else math.nan

    return {
        "requests": len(arrival),
        "requests_completed": int(done.sum()),
        "prompt_tokens": int(np.asarray(requests["prompt_tokens"], dtype=np.int64).sum()),
        "output_tokens": out_tokens,
        "steps": len(seconds),
        "prefill_steps": int((phases == "prefill").sum()),
        "decode_steps": int((phases == "decode").sum()),
        "preemptions": int(np.asarray(requests["preemptions"], dtype=np.int64).sum()),
        "simulated_seconds": span,
        "busy_seconds": busy,
        "throughput_tokens_per_s": per_s(out_tokens),
        "requests_per_s": per_s(int(done.sum())),
        "ttft_mean_s": float(ttft[done].mean()) if done.any() else math.nan,
        "ttft_p50_s": t[50], "ttft_p90_s": t[90], "ttft_p99_s": t[99],
        "tpot_mean_s": float(valid_tpot.mean()) if len(valid_tpot) else math.nan,
        "tpot_p50_s": p[50], "tpot_p90_s": p[90], "tpot_p99_s": p[99],
        "latency_p50_s": lat[50], "latency_p99_s": lat[99],
        "slo_ttft_s": math.nan if slo_ttft_s is None else float(slo_ttft_s),
        "slo_tpot_s": math.nan if slo_tpot_s is None else float(slo_tpot_s),
        "slo_met_requests": int(met.sum()) if slo_given else int(done.sum()),
        "goodput_tokens_per_s": per_s(int(output[met].sum())) if slo_given else math.nan,
        "energy_j": energy,
        "step_energy_j": step_energy,
        "idle_energy_j": idle_energy,
        "energy_per_token_j": energy / out_tokens if out_tokens else math.nan,
        "kv_peak_blocks": peak,
        "kv_peak_bytes": float(peak * block_bytes),
    }
