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


def test_chunked_prefill_cuts_prompts_and_alternates_with_decode():
    # 4 prompt tokens a step. [0, 1): A's first 4 of 6; [1, 2): A's last 2 (after its 4) and B's
    # first 2; [2, 2.5) decodes A, which finishes; [2.5, 3.5) B's last 2 (after its 2); [3.5, 4) B
    clock = Clock()
    opts = SchedulerOptions(max_tokens=4, prefill="chunked")
    res, steps = serve([R(0, 0.0, 6, 2), R(1, 0.0, 4, 2)], opts, clock)
    assert times(res) == [(2.0, 2.5, 0), (3.5, 4.0, 0)]
    assert clock.calls == [("prefill", ((4, 0, 1),)), ("prefill", ((2, 0, 1), (2, 4, 1))), ("decode", ((1, 6, 1),)),
                           ("prefill", ((2, 2, 1),)), ("decode", ((1, 4, 1),))]
    assert [(s.phase, s.batch, s.tokens, s.waiting) for s in steps] == [
        ("prefill", 1, 4, 1), ("prefill", 2, 4, 0), ("decode", 1, 1, 1), ("prefill", 1, 2, 0), ("decode", 1, 1, 0)]
    # a prompt that fits the budget is not cut; whole prefill runs the long prompt alone
    res, _ = serve([R(0, 0.0, 3, 1)], opts, Clock())
    assert times(res) == [(1.0, 1.0, 0)]
    clock = Clock()
    serve([R(0, 0.0, 6, 2), R(1, 0.0, 4, 2)], SchedulerOptions(max_tokens=4), clock)
    assert [c[1] for c in clock.calls[:2]] == [((6, 0, 1),), ((4, 0, 1),)]


def test_swap_preemption_moves_the_blocks_to_host_and_back():
    # as the recompute case: at 2.0 B is preempted, its 2 blocks go out (0.25 s and 1 J a block,
    # added to A's last decode, 2.0-3.0); at 3.0 they come back (added to B's decode, 3.0-4.0)
    clock = Clock()
    opts = SchedulerOptions(block_size=2, kv_blocks=4, preemption="swap")
    res, steps = serve([R(0, 0.0, 2, 4), R(1, 0.0, 2, 4)], opts, clock, swap_time=lambda b: (0.25 * b, 1.0 * b))
    assert times(res) == [(1.0, 3.0, 0), (1.0, 4.0, 1)]
    assert [(s.start_s, s.seconds, s.phase, s.batch, s.kv_blocks, s.energy_j, s.waiting, s.preempted, s.swap_s)
            for s in steps] == [
        (0.0, 1.0, "prefill", 2, 4, 2.0, 0, 0, 0.0), (1.0, 0.5, "decode", 2, 4, 2.0, 0, 0, 0.0),
        (1.5, 0.5, "decode", 2, 4, 2.0, 0, 0, 0.0), (2.0, 1.0, "decode", 1, 3, 4.0, 1, 1, 0.5),
        (3.0, 1.0, "decode", 1, 3, 4.0, 0, 0, 0.5)]
    # no recompute: B is never prefilled again
    assert [c[0] for c in clock.calls] == ["prefill", "decode", "decode", "decode", "decode"]
    with pytest.raises(WorkloadError, match="swap"):
        serve([R(0, 0.0, 2, 4)], opts, Clock())


def test_a_swapped_request_comes_back_before_new_ones_are_admitted():
    # blocks of 2, 4 in all. A and B as above; C (2 + 1 tokens: 2 blocks) arrives at 1.2 and waits
    # for blocks. B is swapped out at 2.0; A leaves at 3.0; at 3.0 B comes back (2 blocks, then a
    # third to grow) and C is not admitted in that iteration; at 4.0 B has left and C runs
    clock = Clock()
    opts = SchedulerOptions(block_size=2, kv_blocks=4, preemption="swap")
    res, steps = serve([R(0, 0.0, 2, 4), R(1, 0.0, 2, 4), R(2, 1.2, 2, 1)], opts, clock,
                       swap_time=lambda b: (0.25 * b, 1.0 * b))
    assert times(res)[:2] == [(1.0, 3.0, 0), (1.0, 4.0, 1)]
    assert times(res)[2] == (5.0, 5.0, 0)
    assert [s.phase for s in steps][-2:] == ["decode", "prefill"]


def test_batch_limit_counts_prefilling_and_decoding_requests():
    # max_batch 1 with chunks: B waits until A has left
    res, steps = serve([R(0, 0.0, 6, 2), R(1, 0.0, 2, 1)], SchedulerOptions(max_batch=1, max_tokens=4,
                                                                             prefill="chunked"), Clock())
    # A: [0, 1) 4 tokens, [1, 2) 2 tokens (first token), decode [2, 2.5); B: [2.5, 3.5)
    assert times(res) == [(2.0, 2.5, 0), (3.5, 3.5, 0)]


def test_options_are_checked():
    with pytest.raises(WorkloadError, match="prefill must be one of whole, chunked"):
        SchedulerOptions(prefill="sarathi")
    with pytest.raises(WorkloadError, match="preemption must be one of recompute, swap"):
        SchedulerOptions(preemption="drop")


def test_two_stages_prefill_the_next_request_while_the_first_decodes():
    # Hybe's split: prefill (1 s) and decode (0.5 s) on their own devices. A arrives at 0, B at 0.5.
    # Prefill A [0, 1); prefill B [1, 2) while A decodes [1, 1.5) and [1.5, 2) (B's cache is not
    # ready before 2); then B decodes [2, 2.5). One stage would finish A at 3.0 (B's prefill first,
    # then both decode together).
    clock = Clock()
    reqs = [R(0, 0.0, 4, 3), R(1, 0.5, 4, 2)]
    res, steps = serve(reqs, SchedulerOptions(stages="two"), clock)
    assert times(res) == [(1.0, 2.0, 0), (2.0, 2.5, 0)]
    assert [(s.start_s, s.phase, s.batch) for s in steps] == [
        (0.0, "prefill", 1), (1.0, "prefill", 1), (1.0, "decode", 1), (1.5, "decode", 1), (2.0, "decode", 1)]
    assert clock.calls[2:] == [("decode", ((1, 4, 1),)), ("decode", ((1, 5, 1),)), ("decode", ((1, 4, 1),))]
    one, _ = serve(reqs, SchedulerOptions(), Clock())
    assert times(one) == [(1.0, 3.0, 0), (2.0, 2.5, 0)]


def test_two_stages_free_blocks_only_when_the_leaving_step_ends():
    # blocks of 2 tokens, 3 in all: A (prompt 2, 3 out) takes 2; B (prompt 2) needs 2 and waits. A decodes
    # [1, 1.5) and [1.5, 2) and leaves at 2.0: B's prefill starts at 2.0, not when its stage was
    # first free (1.0), and B decodes [3, 3.5)
    reqs = [R(0, 0.0, 2, 3), R(1, 0.0, 2, 2)]
    res, steps = serve(reqs, SchedulerOptions(stages="two", block_size=2, kv_blocks=3), Clock())
    assert times(res) == [(1.0, 2.0, 0), (3.0, 3.5, 0)]
    assert [(s.start_s, s.phase) for s in steps] == [
        (0.0, "prefill"), (1.0, "decode"), (1.5, "decode"), (2.0, "prefill"), (3.0, "decode")]


def test_two_stages_refuse_swap():
    with pytest.raises(WorkloadError, match="recompute only"):
        SchedulerOptions(stages="two", preemption="swap")


def test_a_stream_runs_with_fewer_garbage_collections_and_restores_the_thresholds():
    import gc
    from pimdram.serve import scheduler
    seen = []

    def step_time(phase, groups):
        seen.append(gc.get_threshold())
        return 0.01, 1.0

    before = gc.get_threshold()
    reqs = [R(i, 0.0, 8, 3) for i in range(2)]
    scheduler.serve(reqs, SchedulerOptions(), step_time)
    assert seen and all(t[0] == max(scheduler.YOUNG_COLLECTION, before[0]) for t in seen)
    assert gc.get_threshold() == before
