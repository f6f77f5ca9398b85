"""The iteration-level scheduler (pimdram.serve.scheduler), worked by hand with fixed step times:
a prefill step takes 1 s, a decode step 0.5 s."""
import math

import pytest

from pimdram.errors import WorkloadError
from pimdram.serve.requests import ServedRequest as R
from pimdram.serve.scheduler import SchedulerOptions, percentiles, serve


class Clock:
    def __init__(self):
        self.calls = []

    def __call__(self, phase, groups):
        self.calls.append((phase, groups))
        return (1.0 if phase == "prefill" else 0.5), 2.0


def times(results):
    return [(r.first_token_s, r.finish_s, r.preemptions) for r in results]


def test_two_requests_share_prefill_and_decode_steps():
    clock = Clock()
    res, steps = serve([R(0, 0.0, 4, 3), R(1, 0.0, 4, 2)], SchedulerOptions(), clock)
    # prefill [0, 1) gives both their first token; decode [1, 1.5) finishes B; decode [1.5, 2) A
    assert times(res) == [(1.0, 2.0, 0), (1.0, 1.5, 0)]
    assert [(s.start_s, s.phase, s.batch, s.tokens, s.energy_j) for s in steps] == [
        (0.0, "prefill", 2, 8, 2.0), (1.0, "decode", 2, 2, 2.0), (1.5, "decode", 1, 1, 2.0)]
    # prefill: 4 new tokens on an empty cache, twice; decode: the last token against the 4 and 5 cached
    assert clock.calls == [("prefill", ((4, 0, 2),)), ("decode", ((1, 4, 2),)), ("decode", ((1, 5, 1),))]


def test_a_full_cache_preempts_the_latest_request_and_recomputes_it():
    # blocks of 2 tokens, 4 in all: each request takes 2 at admission (prompt 2 + first token)
    clock = Clock()
    res, steps = serve([R(0, 0.0, 2, 4), R(1, 0.0, 2, 4)], SchedulerOptions(block_size=2, kv_blocks=4), clock)
    # decode 3 (at 2.0) needs a third block for both: B (admitted last) is preempted, A finishes at
    # 2.5, then B is prefilled again over 2 + 3 tokens and gets its last token at 3.5
    assert times(res) == [(1.0, 2.5, 0), (1.0, 3.5, 1)]
    assert [(s.start_s, s.phase, s.batch, s.tokens, s.kv_blocks) for s in steps] == [
        (0.0, "prefill", 2, 4, 4), (1.0, "decode", 2, 2, 4), (1.5, "decode", 2, 2, 4),
        (2.0, "decode", 1, 1, 3), (2.5, "prefill", 1, 5, 3)]
    assert clock.calls[3:] == [("decode", ((1, 4, 1),)), ("prefill", ((5, 0, 1),))]


def test_arrivals_batch_and_token_limits():
    # nothing has arrived at 0: time jumps to 5
    res, steps = serve([R(0, 5.0, 4, 1)], SchedulerOptions(), Clock())
    assert times(res) == [(6.0, 6.0, 0)] and steps[0].start_s == 5.0
    # one request at a time: B waits for A (prefill 0-1, decode 1-1.5), then 1.5-2.5, 2.5-3
    res, _ = serve([R(0, 0.0, 4, 2), R(1, 0.0, 4, 2)], SchedulerOptions(max_batch=1), Clock())
    assert times(res) == [(1.0, 1.5, 0), (2.5, 3.0, 0)]
    # 5 prompt tokens a step: B's prefill (1-2) comes before the next decode, which serves both
    res, steps = serve([R(0, 0.0, 4, 2), R(1, 0.0, 4, 2)], SchedulerOptions(max_tokens=5), Clock())
    assert times(res) == [(1.0, 2.5, 0), (2.0, 2.5, 0)]
    # a prompt longer than max_tokens runs alone
    res, steps = serve([R(0, 0.0, 9, 1)], SchedulerOptions(max_tokens=5), Clock())
    assert steps[0].tokens == 9 and times(res) == [(1.0, 1.0, 0)]


def test_errors():
    with pytest.raises(WorkloadError, match=r"request 3: 30 \+ 10 tokens need 3 KV blocks; the cache holds 2"):
        serve([R(3, 0.0, 30, 10)], SchedulerOptions(block_size=16, kv_blocks=2), Clock())
    with pytest.raises(WorkloadError, match="max_batch"):
        SchedulerOptions(max_batch=0)


def test_percentiles_are_nearest_rank():
    assert percentiles([5, 1, 4, 2, 3]) == {50: 3, 90: 5, 99: 5}
    assert percentiles(range(1, 101), (50, 99)) == {50: 50, 99: 99}
    assert math.isnan(percentiles([])[50])


def test_in_memory_replay_equals_the_file_replay(tmp_path):
    from pimdram.llm import Workload
    from pimdram.mapping import generate_kernel_trace
    from pimdram.system import replay_kernels, simulate_kernel_trace

    kt = generate_kernel_trace("gpt2", "neupims", Workload.uniform(16, 256, 2, phase="generate"))
    kt.write(tmp_path / "t.jsonl")
    a = replay_kernels(tmp_path / "t.jsonl", tmp_path / "t.h5").summary
    b = simulate_kernel_trace(kt)
    for key in ("simulated_seconds", "energy_j", "tokens", "interference_ns", "cycles", "overlap_ns"):
        assert a[key] == b[key], key
