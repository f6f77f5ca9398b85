"""Checks of a served stream that cannot be fooled, on long random streams with made-up step times
(a prefill takes 2 ms + 10 us a token, a decode step 5 ms + 20 us a request): every request
finishes, tokens out equal the tokens asked for, the KV cache never holds more blocks than it has,
and Little's law holds."""
import math

import numpy as np
import pytest

from pimdram.serve.requests import generate_requests
from pimdram.serve.scheduler import SchedulerOptions, serve


def step_time(phase, groups):
    if phase == "prefill":
        return 2e-3 + 10e-6 * sum(n * k for n, _, k in groups), 1.0
    return 5e-3 + 20e-6 * sum(k for _, _, k in groups), 0.5


def swap_time(blocks):
    return 1e-4 * blocks, 0.0


OPTIONS = [
    SchedulerOptions(max_batch=32, max_tokens=2048, block_size=16, kv_blocks=400),
    SchedulerOptions(max_batch=32, max_tokens=512, block_size=16, kv_blocks=400, prefill="chunked"),
    SchedulerOptions(max_batch=64, max_tokens=2048, block_size=8, kv_blocks=500, preemption="swap"),
    SchedulerOptions(max_batch=8, max_tokens=256, block_size=32, kv_blocks=200, prefill="chunked",
                     preemption="swap"),
]


@pytest.mark.parametrize("opts", OPTIONS, ids=["whole-recompute", "chunked-recompute", "whole-swap", "chunked-swap"])
def test_every_request_finishes_with_its_tokens_within_the_cache(opts):
    reqs = generate_requests(600, rate=20, lengths="sharegpt", seed=3)
    reqs = [r for r in reqs if r.prompt_tokens + r.output_tokens <= opts.kv_blocks * opts.block_size]
    res, steps = serve(reqs, opts, step_time, swap_time)
    assert all(not math.isnan(r.finish_s) and r.arrival_s < r.first_token_s <= r.finish_s for r in res)
    assert sum(s.output_tokens for s in steps) == sum(r.output_tokens for r in reqs)
    assert max(s.kv_blocks for s in steps) <= opts.kv_blocks
    assert all(s.batch <= opts.max_batch for s in steps)
    assert all(s.tokens <= opts.max_tokens for s in steps if s.phase == "prefill" and opts.prefill == "chunked")
    # steps follow one another: none starts before the previous one ends
    assert all(b.start_s >= a.start_s + a.seconds - 1e-12 for a, b in zip(steps, steps[1:]))
    assert sum(r.preemptions for r in res) > 0          # the cache is small enough to preempt


def littles_law(res, steps):
    """(mean number in the system from the step records, arrival rate x mean time in the system)."""
    span = max(r.finish_s for r in res) - min(r.arrival_s for r in res)
    in_system = math.fsum((s.batch + s.waiting) * s.seconds for s in steps) / span
    rate = len(res) / span
    mean_time = sum(r.finish_s - r.arrival_s for r in res) / len(res)
    return in_system, rate * mean_time


@pytest.mark.parametrize("opts", OPTIONS[:3], ids=["whole-recompute", "chunked-recompute", "whole-swap"])
def test_littles_law_holds_on_a_long_run(opts):
    reqs = generate_requests(3000, rate=15, lengths="alpaca", seed=11)
    res, steps = serve(reqs, opts, step_time, swap_time)
    n, lam_w = littles_law(res, steps)
    assert n > 1                                        # a queue, not one request at a time
    assert abs(n - lam_w) / lam_w < 0.02, (n, lam_w)


def test_nothing_waits_when_requests_arrive_far_apart():
    reqs = generate_requests(50, rate=1, arrivals="fixed", lengths=(100, 20))
    res, steps = serve(reqs, SchedulerOptions(), step_time)
    prefill, decode = step_time("prefill", ((100, 0, 1),))[0], step_time("decode", ((1, 100, 1),))[0]
    assert np.allclose([r.first_token_s - r.arrival_s for r in res], prefill, rtol=0, atol=1e-12)
    assert np.allclose([(r.finish_s - r.first_token_s) / 19 for r in res], decode, rtol=0, atol=1e-12)
    assert all(s.waiting == 0 and s.batch == 1 for s in steps)
