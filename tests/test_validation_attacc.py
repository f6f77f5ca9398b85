"""End to end against the AttAcc authors' simulator (docs/validation.md): GPT-3 175B decode at the
generation's mean context on the AttAcc paper's systems, batch 1, 54 and 78, against the tokens/s
our run of it printed (tools/attacc_simulator_results.csv), in both of its schedules: sequential
(within 10%) and the paper's pipelining with FF co-processing (--pipeopt --ffopt)."""
import importlib.util
from pathlib import Path

import pytest

from pimdram.llm import Workload
from pimdram.mapping import generate_kernel_trace
from pimdram.system import replay_kernels

_spec = importlib.util.spec_from_file_location(
    "attacc_validation", Path(__file__).resolve().parents[1] / "tools" / "attacc_validation.py")
validation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(validation)

SEQUENTIAL = validation.reference_points("sequential")
PIPELINED = validation.reference_points("pipelined+ff")


@pytest.mark.parametrize("point", SEQUENTIAL, ids=[f"{p['system']}-b{p['batch']}" for p in SEQUENTIAL])
def test_decode_step_within_ten_percent_of_the_attacc_simulator(tmp_path, point):
    ours = validation.pimdram_tokens_per_s(point["system"], point["batch"], point["context"], tmp_path)
    assert ours == pytest.approx(point["tokens_per_s"], rel=0.10)


@pytest.mark.parametrize("point", PIPELINED, ids=[f"{p['system']}-b{p['batch']}" for p in PIPELINED])
def test_pipelined_decode_step_against_the_attacc_simulator(tmp_path, point):
    """Batch 54 and 78 within 12%. At batch 1 pimdram is 0.78-0.79 of the reference, by mechanisms
    docs/validation.md names: the reference's FF co-processing scales each FFN product by
    1 / (1 + internal-to-GPU bandwidth ratio / batch) with free GPU-AttAcc transfers, where
    pimdram simulates the products' commands (the input vector written into every channel's GEMV
    buffers, output rows in whole 16-row MAC groups) and charges the link's latency on the four
    transfers around them; the band pins that gap so that a change either way is seen."""
    ours = validation.pimdram_tokens_per_s(point["system"], point["batch"], point["context"], tmp_path,
                                           "pipelined+ff")
    ratio = ours / point["tokens_per_s"]
    if point["batch"] == 1:
        assert 0.74 <= ratio <= 0.84
    else:
        assert ratio == pytest.approx(1.0, abs=0.12)


# The AttAcc simulator's cycles for one decode layer of GPT-3 175B's attention (96 heads of 128,
# 2048 tokens) on one HBM3 stack with the power limit (our run of it; docs/pim-configs.md)
LAYER_CYCLES = {"attacc-stack-bank": 24_023, "attacc-stack-bankgroup": 80_927, "attacc-stack-buffer": 217_431}


@pytest.mark.parametrize("system", sorted(LAYER_CYCLES))
def test_one_attention_layer_on_one_stack_within_five_percent_of_the_attacc_simulator(tmp_path, system):
    workload = Workload.uniform(1, 2047, 2, phase="decode")          # 2047 cached + 1 new = 2048
    trace = generate_kernel_trace("gpt3-175b", system, workload, layers=1, only="attention")
    trace.write(tmp_path / "t.jsonl")
    replay_kernels(tmp_path / "t.jsonl", tmp_path / "s.h5")
    from pimdram.stats import open_stats
    t = open_stats(tmp_path / "s.h5").table("kernels")
    names = list(t["name"])
    start = t["start_cycle"][names.index("attention_score")]
    end = t["end_cycle"][names.index("attention_context")]
    assert end - start == pytest.approx(LAYER_CYCLES[system], rel=0.05)
    # the layer is simulated as one program (AttAcc's overlap of heads): softmax and context are fused
    assert [s for n, s in zip(names, t["source"]) if n in ("softmax", "attention_context")] == ["fused", "fused"]
