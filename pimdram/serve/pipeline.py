"""Stage-level pipelining of a request stream (Hybe, ISCA 2025: "stage-wise pipelining that
dynamically assigns queued requests to idle hardware").

A system whose mapping puts prefill and decode on different devices (preset `hybe`: prefill on
the GPUs, decode on the NPUs) serves a stream in two stages: a request's prefill runs on the
prefill devices as soon as they are free and it has arrived, its decode on the decode devices as
soon as its prefill is done and they are free, so the next request's prefill overlaps the
current request's decode. A system that runs both phases on the same devices serves the stream
one request after another (one stage: prefill then decode).

The rules, which tests/test_serve_pipeline.py checks by hand:

- Requests are taken in arrival order (ties by position), first come first served in each stage.
- Each stage has `units` identical servers; a request takes the unit that frees first.
- A request's KV cache moves to the decode devices' memory while its prefill runs (Hybe's
  fine-grained KV transmission), so a prefill may start only while fewer than `max_resident`
  requests hold KV cache there (requests whose prefill started and whose decode has not ended).
- Stage times come from kernel replay of one request's whole generation on the system
  (`stage_split`): the prefill stage is the prefill's span, the decode stage the rest of the run
  (the tail of the KV transfer after the last layer, then the decode steps).
"""
import heapq
import math
from dataclasses import dataclass

from ..errors import PimdramError


@dataclass(frozen=True)
class StageTimes:
    """One request's times on a system (seconds) and its energy (joules)."""
    prefill_s: float
    decode_s: float
    energy_j: float = 0.0


def stage_split(summary):
    """StageTimes of one request from the summary of its generation's kernel replay."""
    total = summary["simulated_seconds"]
    prefill = summary["prefill_seconds"]
    if not (math.isfinite(total) and math.isfinite(prefill)) or prefill <= 0 or prefill > total:
        raise PimdramError("a stage split needs a generation (prefill and decode) replayed with finite times")
    return StageTimes(prefill, total - prefill, summary.get("energy_j", 0.0))


def decode_residency(system, model, prompt, output, kv_bytes=2, weight_bytes=2):
    """How many requests' KV caches the decode devices' memory holds at once: its capacity less a
    copy of the weights, over one request's KV cache at its largest (prompt + output tokens)."""
    decode = system.roles.get("decode")
    if decode is None or decode not in system.devices:
        return None
    capacity = system.memories[system.devices[decode].memory].capacity
    per_request = 2 * model.kv_heads * model.head_dim * model.layers * (prompt + output) * kv_bytes
    free = capacity - model.param_count() * weight_bytes
    return max(1, int(free // per_request)) if per_request > 0 else None


def two_stages(system):
    """True where the system's mapping runs prefill and decode on different devices."""
    p, d = system.roles.get("prefill"), system.roles.get("decode")
    return p is not None and d is not None and p != d


def pipeline_schedule(arrivals, times, pipelined=True, units=(1, 1), max_resident=None):
    """Per request (prefill start, first token, finish) in seconds, for requests arriving at
    `arrivals` (seconds) with StageTimes `times`. `pipelined=False`: one stage on shared
    hardware (prefill then decode on `units[0]` units)."""
    if len(arrivals) != len(times):
        raise ValueError("one StageTimes per arrival")
    if any(u < 1 for u in units) or (max_resident is not None and max_resident < 1):
        raise ValueError("units and max_resident must be positive")
    order = sorted(range(len(arrivals)), key=lambda i: (arrivals[i], i))
    first = [0] * units[0]              # heaps of unit free times
    second = [0.0] * units[1]
    result = [None] * len(arrivals)
    resident = []                       # heap of the finish times of requests holding a cache
    for i in order:
        t = times[i]
        start = max(arrivals[i], heapq.heappop(first))
        if not pipelined:
            done = start + t.prefill_s + t.decode_s
            heapq.heappush(first, done)
            result[i] = (start, start + t.prefill_s, done)
            continue
        # the decode memory holds max_resident caches: drop those finished by the start, and wait
        # for the earliest to finish while it is full
        while resident and (resident[0] <= start or (max_resident is not None and len(resident) >= max_resident)):
            start = max(start, heapq.heappop(resident))
        first_token = start + t.prefill_s
        heapq.heappush(first, first_token)
        dstart = max(first_token, heapq.heappop(second))
        done = dstart + t.decode_s
        heapq.heappush(second, done)
        heapq.heappush(resident, done)
        result[i] = (start, first_token, done)
    return result


def stream_figures(arrivals, output_tokens, schedule):
    """Tokens/s of a served stream: its output tokens over the time from the first arrival to the
    last finish."""
    span = max(f for _, _, f in schedule) - min(arrivals)
    return sum(output_tokens) / span
