"""Systems' schedules on cases worked out by hand: AttAcc's head-group pipelining and FF
co-processing, NeuPIMs' sub-batches against its blocked-mode baseline (docs/systems.md,
"Schedules")."""
import pytest

from pimdram.config.system import load_system
from pimdram.llm import Workload
from pimdram.mapping import generate_kernel_trace
from pimdram.mapping.policies import ffn_pim_columns
from pimdram.stats import open_stats
from pimdram.system import replay_kernels

SEQUENTIAL = {"mapping.head_groups": 1, "mapping.ffn_coprocessing": False}


def of(trace, name):
    return [k for k in trace.kernels if k["name"] == name]


def test_attacc_builds_attention_in_head_groups_one_head_of_each_gpu_per_group():
    # GPT-3 6.7B: 32 heads of 128 over 8 GPUs -> 4 groups of 8 heads
    t = generate_kernel_trace("gpt3-6.7b", "dgx-attacc", Workload.uniform(4, 128, 8, phase="decode"), layers=1)
    qkv, proj = of(t, "qkv_projection"), of(t, "output_projection")
    assert [k["shape"] for k in qkv] == [{"M": 4, "K": 4096, "N": 3 * 8 * 128}] * 4
    assert [k["shape"] for k in proj] == [{"M": 4, "K": 8 * 128, "N": 4096}] * 4
    assert [tuple(k["kv_heads"]) for k in of(t, "attention_score")] == [(0, 8), (8, 16), (16, 24), (24, 32)]
    # the groups' output projections add into one output: one all-reduce of it after the last,
    # and one after the FFN (4 requests x 4096 x 2 B)
    ar = of(t, "all_reduce")
    assert [k["shape"]["bytes"] for k in ar] == [32768, 32768]
    assert proj[-1]["id"] in ar[0]["deps"] and not any(p["id"] in ar[0]["deps"] for p in proj[:-1])
    # sequential: one group
    s = generate_kernel_trace("gpt3-6.7b", load_system("dgx-attacc", SEQUENTIAL),
                              Workload.uniform(4, 128, 8, phase="decode"), layers=1)
    assert [k["shape"]["N"] for k in of(s, "qkv_projection")] == [3 * 4096]


@pytest.mark.parametrize("batch,channels", [
    # 4 requests x 8 heads = 32 instances per group: 640 // 32 = 20 >= 4 slices, 160 channels each
    (4, [[0, 160], [160, 320], [320, 480], [480, 640]]),
    # 80 x 8 = 640 instances per group: as wide as the memory, every group on every channel
    (80, [[0, 640]] * 4),
])
def test_head_groups_take_slices_of_the_channels_or_all_of_them(batch, channels):
    t = generate_kernel_trace("gpt3-6.7b", "dgx-attacc", Workload.uniform(batch, 128, 8, phase="decode"), layers=1)
    regions = t.header["placement"]["regions"]
    kv = sorted(n for n, r in regions.items() if r["kind"] == "kv_cache")
    assert [regions[n]["channels"] for n in kv] == channels


def test_pipelined_groups_keep_the_gpu_busy_while_attacc_works(tmp_path):
    t = generate_kernel_trace("gpt3-6.7b", "dgx-attacc", Workload.uniform(80, 128, 8, phase="decode"), layers=1)
    t.write(tmp_path / "t.jsonl")
    replay_kernels(tmp_path / "t.jsonl", tmp_path / "s.h5")
    k = open_stats(tmp_path / "s.h5").table("kernels")
    rows = {}
    for i, name in enumerate(k["name"]):
        rows.setdefault(name, []).append((k["start_ns"][i], k["end_ns"][i]))
    qkv, transfers, scores = rows["qkv_projection"], rows["transfer"][0::2], rows["attention_score"]
    # the GPUs project group g+1 while group g crosses the link and runs on AttAcc
    for g in range(1, 4):
        assert qkv[g][0] == pytest.approx(qkv[g - 1][1])
        assert qkv[g][0] < scores[g - 1][1]
    # each group's QKV (80 x 3072 x 2 B) crosses the 8 paired 300 GB/s links in 204.8 ns and
    # arrives 3030 ns later; its attention starts once it has (after the KV append)
    for g in range(4):
        assert transfers[g][0] == pytest.approx(qkv[g][1])
        assert transfers[g][1] - transfers[g][0] == pytest.approx(204.8 + 3030)
        assert scores[g][0] >= transfers[g][1]


@pytest.mark.parametrize("batch,choice,groups", [
    (54, "heads_per_device", 12),       # GPT-3 175B: 96 KV heads / 8 GPUs
    # auto, batch 54: one group takes ceil(54 x 96 / 640) = 9 rounds of the 640 channels. 12
    # groups of 8 heads (432 instances) take 12 x 1; 10 groups of 10 heads (540) take 10; 9
    # groups of 11 heads (594) take 9 x 1 = 9: the most groups that lose nothing
    (54, "auto", 9),
    (78, "auto", 12),                   # 12 x ceil(624 / 640) = 12 = ceil(7488 / 640)
    # batch 1: 8 instances a group; 12 groups in 12 slices of 53 channels, 1 round each
    (1, "auto", 12),
    (54, 5, 5),
])
def test_head_groups_by_rule(batch, choice, groups):
    from pimdram.llm import load_model
    from pimdram.mapping.policies import attacc_head_groups
    assert attacc_head_groups(load_system("dgx-attacc"), load_model("gpt3-175b"), batch, choice) == groups


def test_ffn_coprocessing_split_balances_whole_row_groups_per_channel():
    s = load_system("dgx-attacc")
    # batch 54, FFN up (12288 -> 49152): a GPU column is memory-bound, 12288 x 2 B at 26.816 TB/s
    # x 0.85 = 1.0782 ns; an AttAcc column compute-bound, 2 x 54 x 12288 FLOPs at 1704.4 TFLOP/s
    # = 0.7786 ns. AttAcc takes whole groups of 16 rows on each of its 640 channels: multiples of
    # 10240. 20480 -> max(28672 x 1.0782, 20480 x 0.7786) = 30.9 us; 30720 -> max(19.9, 23.9)
    # = 23.9 us; 40960 -> 31.9 us: 30720
    assert ffn_pim_columns(s, 54, 12288, 49152, 2) == 30720
    # FFN down (49152 -> 12288): 10240 columns on AttAcc (31.9 us against 2048 GPU columns, 8.8
    # us) beat the GPU alone (12288 x 4.313 ns = 53.0 us); 12288 would pad to 20480 rows
    assert ffn_pim_columns(s, 54, 49152, 12288, 2) == 10240
    # batch 1: AttAcc's internal bandwidth (284 TB/s) beats the GPUs': it takes every column
    assert ffn_pim_columns(s, 1, 12288, 49152, 2) == 49152


@pytest.mark.parametrize("batch,gpu_cols,pim_cols", [(54, 49152 - 30720, 30720), (1, None, 49152)])
def test_ffn_coprocessing_splits_products_by_columns_and_reduces_once(batch, gpu_cols, pim_cols):
    system = load_system("dgx-attacc", {"mapping.ffn_coprocessing": True})
    t = generate_kernel_trace("gpt3-175b", system, Workload.uniform(batch, 2048, 8, phase="decode"), layers=1,
                              allow_overcommit=True)
    up = of(t, "ffn_up")
    want = ([("gpu", [0, 2], gpu_cols)] if gpu_cols else []) + [("attacc", [1, 2], pim_cols)]
    assert [(k["device"], k["split"], k["shape"]["N"]) for k in up] == want
    # one all-reduce after the FFN, of the whole output (batch x 12288 x 2 B), after its last part
    down = of(t, "ffn_down")
    ar = of(t, "all_reduce")[-1]
    assert ar["shape"]["bytes"] == batch * 12288 * 2 and down[-1]["device"] == "attacc"
    by_id = {k["id"]: k for k in t.kernels}
    assert any(by_id[d]["name"] == "transfer" for d in ar["deps"])
    # AttAcc's share of the weights lives in its memory
    w = next(o for o in up[-1]["operands"] if o["role"] == "weight" and o["name"] == "w")
    assert w["region"].startswith("attacc_hbm:")


@pytest.mark.parametrize("system, makespan", [("neupims", 4.0), ("neupims-naive", 6.0)])
def test_two_sub_batches_overlap_npu_and_pim_unless_the_pim_blocks_the_memory(system, makespan):
    # each sub-batch: FC on the NPU (1 us), attention on PIM (1 us), FC again (1 us). With dual row
    # buffers the NPU runs one sub-batch's FC while PIM runs the other's attention:
    #   NPU  F0 [0,1)  F1 [1,2)  G0 [2,3)  G1 [3,4)
    #   PIM            A0 [1,2)  A1 [2,3)                    -> 4 us = max(NPU 4, PIM 2 + 2 transitions)
    # a blocked PIM memory makes the NPU's kernels wait for PIM and the other way round: 6 us
    from pimdram.system.schedule import Resources, list_schedule
    spec = load_system(system)
    kernels = []
    for sb in (0, 1):
        base = len(kernels)
        kernels += [{"id": base, "device": "npu", "deps": [], "operands": []},
                    {"id": base + 1, "device": "pim", "deps": [base], "operands": []},
                    {"id": base + 2, "device": "npu", "deps": [base + 1], "operands": []}]
    held = Resources(spec, kernels, {})
    starts, ends = list_schedule(kernels, [1000.0] * 6, [held.of(k) for k in kernels])
    assert max(ends) == makespan * 1000
    if system == "neupims":
        assert starts == [0.0, 1000.0, 2000.0, 1000.0, 2000.0, 3000.0]
