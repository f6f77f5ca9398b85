"""Stage-level pipelining of a request stream (pimdram.serve.pipeline), worked by hand."""
import pytest

from pimdram.config.system import load_system
from pimdram.errors import PimdramError
from pimdram.llm.models import load_model
from pimdram.serve.pipeline import (StageTimes, decode_residency, pipeline_schedule, stage_split, stream_figures,
                                    two_stages)
from pimdram.validate.runner import Run, stream_summary

P1D3 = StageTimes(1.0, 3.0)


def test_two_stages_overlap_the_next_prefill_with_the_current_decode():
    # prefill 0-1, 1-2, 2-3 on the GPUs; decode 1-4, 4-7, 7-10 on the NPUs
    s = pipeline_schedule([0, 0, 0], [P1D3] * 3)
    assert s == [(0, 1, 4), (1, 2, 7), (2, 3, 10)]
    assert stream_figures([0, 0, 0], [100] * 3, s) == pytest.approx(30.0)


def test_one_stage_serves_one_request_after_another():
    s = pipeline_schedule([0, 0, 0], [P1D3] * 3, pipelined=False)
    assert s == [(0, 1, 4), (4, 5, 8), (8, 9, 12)]
    assert stream_figures([0, 0, 0], [100] * 3, s) == pytest.approx(25.0)


def test_decode_memory_bounds_the_requests_in_flight():
    # one cache at a time: each prefill waits for the previous request's decode to end
    assert pipeline_schedule([0, 0, 0], [P1D3] * 3, max_resident=1) == [(0, 1, 4), (4, 5, 8), (8, 9, 12)]
    # two: the third prefill waits for the first request to finish (at 4), not for the second
    assert pipeline_schedule([0, 0, 0], [P1D3] * 3, max_resident=2) == [(0, 1, 4), (1, 2, 7), (4, 5, 10)]


def test_arrivals_and_units():
    # the second request arrives after the first finished: nothing to overlap
    assert pipeline_schedule([0, 5], [StageTimes(2, 1)] * 2) == [(0, 2, 3), (5, 7, 8)]
    # two decode units: the second request decodes beside the first, the third waits for unit one (at 4)
    assert pipeline_schedule([0, 0, 0], [P1D3] * 3, units=(1, 2)) == [(0, 1, 4), (1, 2, 5), (2, 3, 7)]
    # arrival order, not list order; ties by position
    assert pipeline_schedule([3, 0], [P1D3] * 2) == [(3, 4, 7), (0, 1, 4)]


def test_stage_split_and_its_errors():
    t = stage_split({"simulated_seconds": 5.0, "prefill_seconds": 1.25, "energy_j": 7.0})
    assert t == StageTimes(1.25, 3.75, 7.0)
    with pytest.raises(PimdramError, match="stage split"):
        stage_split({"simulated_seconds": 1.0, "prefill_seconds": 0.0})
    with pytest.raises(ValueError):
        pipeline_schedule([0], [P1D3], units=(0, 1))


def test_decode_residency_of_hybe():
    # (687,194,767,360 B of NPU HBM - 2 x 3,821,079,552 weights) / (2 x 32 KV heads x 96 x 32 layers x
    # 101,024 tokens x 2 B = 39,722,582,016 B) = 17.1 -> 17 Phi-3 caches of 100K + 1024 tokens
    hybe = load_system("hybe")
    assert decode_residency(hybe, load_model("phi3-mini"), 100_000, 1024) == 17
    assert two_stages(hybe) and not two_stages(load_system("dgx-h100"))
    assert decode_residency(load_system("dgx-h100"), load_model("phi3-mini"), 100_000, 1024) is None


def test_stream_summary_of_a_validate_run():
    # hybe: prefill 1 s, decode 4 s, 4 requests: 1 + 4 x 4 = 17 s for 4 x 1024 tokens;
    # dgx-h100 one after another: 4 x 5 = 20 s
    summary = {"simulated_seconds": 5.0, "prefill_seconds": 1.0, "energy_j": 1.0}
    runs = {name: Run("phi3-mini", name, 1, 100_000, 1024, "generate", None, 1, None, True)
            for name in ("hybe", "dgx-h100")}
    assert stream_summary(runs["hybe"], summary, 4)["stream_tokens_per_s"] == pytest.approx(4096 / 17)
    assert stream_summary(runs["dgx-h100"], summary, 4)["stream_tokens_per_s"] == pytest.approx(4096 / 20)
