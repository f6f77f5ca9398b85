"""The serving step timer: step times by kernel replay, its composition rules checked against
exact replays, chunked-prefill chunks, and the GEMV/GEMM difference of MHA and GQA attention."""
import math

import pytest

from pimdram.errors import WorkloadError
from pimdram.llm import Workload
from pimdram.llm.workload import Request
from pimdram.mapping import generate_kernel_trace
from pimdram.mapping.generate import step_traces
from pimdram.serve.scheduler import SchedulerOptions, serve
from pimdram.serve.requests import generate_requests
from pimdram.serve.steptime import StepTimer, error_summary
from pimdram.system import SimulationState, simulate_kernel_trace


def exact(model, system, requests, phase="decode", **kw):
    wl = Workload(tuple(requests), phase=phase, **kw)
    s = simulate_kernel_trace(generate_kernel_trace(model, system, wl, allow_overcommit=True), system)
    return s["simulated_seconds"], s["energy_j"]


@pytest.mark.parametrize("system", ["dgx-attacc", "dgx-h100", "neupims"])
def test_a_mixed_decode_step_is_the_exact_replay_within_the_composition_error(system):
    # gpt2 (12 layers, MHA): 9 requests at 7 contexts; extrapolated layers and composed PIM
    # channels against the step generated whole and every PIM channel simulated
    contexts = [40, 40, 75, 130, 130, 300, 511, 700, 1000]
    groups = {}
    for c in contexts:
        groups[c] = groups.get(c, 0) + 1
    timer = StepTimer("gpt2", system, check_every=1)
    seconds, joules = timer("decode", [(1, c, k) for c, k in sorted(groups.items())])
    want_s, want_j = exact("gpt2", system, [Request(i, c, 2) for i, c in enumerate(contexts)])
    assert seconds == pytest.approx(want_s, rel=0.01) and joules == pytest.approx(want_j, rel=0.01)
    (check,) = timer.checks
    assert check.exact_s == want_s and check.composed_s == seconds and abs(check.error) <= 0.01


def test_layers_extrapolate_exactly_on_a_preset():
    # t(L) = t1 + (L - 1)(t2 - t1): on dgx-h100 every layer repeats, so the rule is exact
    timer = StepTimer("gpt2", "dgx-h100", layers="extrapolate")
    t, _ = timer("decode", [(1, 100, 4)])
    whole = StepTimer("gpt2", "dgx-h100", layers="all")
    assert t == pytest.approx(whole("decode", [(1, 100, 4)])[0], rel=1e-12)
    assert timer.layers == "extrapolate" and timer.checks[0].error == pytest.approx(0, abs=1e-12)


def test_granularity_rounds_contexts_up_and_shares_the_replay():
    timer = StepTimer("gpt2", "dgx-h100", granularity=16)
    assert timer.representative("decode", [(1, 17, 2), (1, 30, 1), (1, 33, 1)]) == ((1, 32, 3), (1, 48, 1))
    # a prefill's new tokens are rounded too; its cached ones (a chunk) as a context
    assert timer.representative("prefill", [(100, 0, 1), (64, 20, 1)]) == ((64, 32, 1), (112, 0, 1))
    a = timer("decode", [(1, 17, 2)])
    replays = timer.replays
    assert timer("decode", [(1, 31, 2)]) == a and timer.replays == replays      # the same rounded step


def test_a_chunk_of_a_prompt_attends_over_the_cached_part_too():
    # Request.cached: the chunk's 64 new tokens against 192 cached ones; attention over 256
    wl = Workload((Request(0, 256, 2, cached=192),), phase="prefill")
    (step,) = wl.steps()
    assert [(g.new_tokens, g.context) for g in step.groups] == [(64, 192)]
    trace = generate_kernel_trace("gpt2", "dgx-h100", wl, layers=1, allow_overcommit=True)
    score = next(k for k in trace.kernels if k["name"] == "attention_score")
    assert score["shape"] == {"M": 64, "N": 256, "K": 64, "instances": 12}
    assert score["flops"] == 2 * 64 * 256 * 64 * 12
    timer = StepTimer("gpt2", "dgx-h100")
    chunk, _ = timer("prefill", [(64, 192, 1)])
    assert chunk == pytest.approx(exact("gpt2", "dgx-h100", [Request(0, 256, 2, cached=192)], "prefill")[0],
                                  rel=1e-9)
    # more than the same 64 tokens prefilled alone, less than the whole 256-token prompt
    alone, _ = timer("prefill", [(64, 0, 1)])
    whole, _ = timer("prefill", [(256, 0, 1)])
    assert alone < chunk < whole
    with pytest.raises(WorkloadError, match="cached prompt tokens"):
        Workload((Request(0, 64, 2, cached=64),), phase="prefill")


def test_step_traces_equal_the_generators_traces():
    wl = Workload(tuple(Request(i, c, 2) for i, c in enumerate([30, 90, 90, 200])), phase="decode")
    one, two = step_traces("gpt2", "dgx-attacc", wl, (1, 2))
    for n, t in ((1, one), (2, two)):
        ref = generate_kernel_trace("gpt2", "dgx-attacc", wl, layers=n, allow_overcommit=True, place_selected=True)
        assert t.kernels == ref.kernels
        a, b = simulate_kernel_trace(t, "dgx-attacc"), simulate_kernel_trace(ref, "dgx-attacc")
        for key in ("simulated_seconds", "energy_j", "tokens"):
            assert a[key] == b[key]


def test_a_stream_records_its_checks_and_stays_within_one_percent():
    reqs = generate_requests(24, 200.0, "poisson", "alpaca", seed=3)
    timer = StepTimer("gpt2", "dgx-attacc", check_every=5)
    results, steps = serve(reqs, SchedulerOptions(max_batch=16), timer)
    assert all(math.isfinite(r.finish_s) for r in results)
    assert len(timer.checks) >= 1 + len(steps) // 5 - 1
    worst, _ = error_summary(timer.checks)
    assert worst <= 0.01


def test_mha_attention_is_a_gemv_and_gqa_a_gemm_and_time_goes_accordingly():
    # Llama-2-7B (MHA, 32 KV heads) and Llama-3-8B (GQA, 8 KV heads of 4 query heads each), the
    # same hidden size and head dim 128, a decode step of 8 requests at 1,024 cached tokens,
    # attention on dgx-attacc's bank-level PIM under the same placement policy
    from pimdram.config.system import load_system
    from pimdram.system.pim import PimMemory, pim_timing

    system = load_system("dgx-attacc")
    pm = PimMemory(system.memories["attacc_hbm"], devices=8)
    mac = pm.spec.command_index("MACAB")
    wl = Workload.uniform(8, 1024, 2, phase="decode")
    seen = {}
    for model, form, reuse, kv_heads in (("llama2-7b", "gemv", 1, 32), ("llama3-8b", "gemm", 4, 8)):
        trace = generate_kernel_trace(model, system, wl, layers=1)
        regions = trace.header["placement"]["regions"]
        scores = [k for k in trace.kernels if k["name"] == "attention_score"]
        assert {(k["form"], k["reuse"], k["device"]) for k in scores} == {(form, reuse, "attacc")}
        # K read: 8 requests x KV heads x 1,025 tokens x 128 dims x 2 B, over the head groups
        assert sum(k["operands"][1]["bytes"] for k in scores) == 8 * kv_heads * 1025 * 128 * 2
        timings = []
        for k in scores:
            lo, hi = regions[k["operands"][1]["region"]]["channels"]
            timings.append(pim_timing(pm, k, True, hi - lo))
        # per (request, KV head): ceil(1025 / 16) x ceil(128 / 64) = 130 MACABs per GEMV, two GEMVs
        assert sum(t.per_command[mac] for t in timings) == 8 * kv_heads * 2 * 130
        seen[model] = (len(scores), max(t.duration_ns for t in timings), sum(t.duration_ns for t in timings))
    (mha_groups, mha_kernel, mha_total), (gqa_groups, gqa_kernel, gqa_total) = seen["llama2-7b"], seen["llama3-8b"]
    # MHA: AttAcc's 4 head groups of 8 KV heads (64 instances, one per channel of a quarter of the
    # memory) one after the other; GQA: one kernel of 64 instances over all the channels
    assert (mha_groups, gqa_groups) == (4, 1)
    # the same bytes per channel, but each GQA byte feeds 4 query rows: the GEMM takes longer
    # per instance than the GEMV, so GQA's attention takes more than the quarter of MHA's time
    # its quarter of the bytes would give
    assert gqa_kernel > mha_kernel
    assert 0.25 < gqa_total / mha_total < 0.5
