"""Attention over requests of different contexts in one kernel (a ragged batch, as a paged
attention kernel serves it): the kernel builder's record, its trace format, its xPU timing and its
PIM lowering, on cases worked out by hand."""
import math
from pathlib import Path

import numpy as np
import pytest

from pimdram.config.memory import load_memory
from pimdram.config.system import load_system
from pimdram.errors import TraceError
from pimdram.llm import StepBuilder, Workload, load_model
from pimdram.llm.workload import Request
from pimdram.lower.attacc import attacc_head_counts, attention_instances, attention_layer
from pimdram.mapping import generate_kernel_trace
from pimdram.system.pim import PimMemory, channel_lengths, pim_work
from pimdram.system.xpu import occupancy, onchip_bytes
from pimdram.trace.kernels import kernel_at, parse_grow, read_kernel_trace

from test_pim_attacc import one_channel_cycles
from test_system_model import device

DATA = Path(__file__).parent / "data" / "llm"
TINY = str(DATA / "tiny-mha.yaml")       # hidden 64, 4 heads of 16 (MHA), 2 layers


def decode_step(contexts, model=TINY):
    m = load_model(model)
    wl = Workload(tuple(Request(i, c, 2) for i, c in enumerate(contexts)), phase="decode")
    step = wl.steps()[0]
    return StepBuilder(m, wl).build(step, step.groups)


def layer0(kernels, name):
    found = [k for k in kernels if k.name == name and k.layer == 0]
    assert len(found) == 1
    return found[0]


def test_one_kernel_serves_requests_of_different_contexts():
    # contexts 10, 10, 30: one new token each; 11, 11 and 31 tokens attended over 4 heads of 16
    ks = decode_step([10, 30, 10])
    s = layer0(ks, "attention_score")
    assert s.requests == (0, 1, 2) and s.contexts == ((11, 2), (31, 1))
    assert s.shape == {"M": 1, "N": 31, "K": 16, "instances": 12}
    assert s.flops == 2 * 1 * 16 * 4 * (11 + 11 + 31)              # 6,784
    k_cache = s.operands[1]
    assert k_cache.shape == (1, 4, 53, 16) and k_cache.bytes == 53 * 4 * 16 * 2
    sm = layer0(ks, "softmax")
    assert sm.shape == {"elements": 4 * 53} and sm.contexts == s.contexts
    c = layer0(ks, "attention_context")
    assert c.shape == {"M": 1, "N": 16, "K": 31, "instances": 12} and c.flops == s.flops
    assert c.operands[-1].shape == (3, 1, 64)                      # each request's context row
    ap = layer0(ks, "kv_cache_append")
    assert ap.operands[-1].shape == (3, 1, 2, 4, 16)               # one new token per request
    assert s.record()["contexts"] == [[11, 2], [31, 1]]


def test_equal_contexts_keep_the_plain_kernel():
    s = layer0(decode_step([20, 20]), "attention_score")
    assert s.contexts is None and "contexts" not in s.record()
    assert s.shape == {"M": 1, "N": 21, "K": 16, "instances": 8}
    assert s.operands[1].shape == (2, 4, 21, 16)


def ragged_kernel(contexts, heads=96, g=1, d=128):
    R = sum(n for _, n in contexts)
    total = sum(t * n for t, n in contexts)
    q, kv, sc = R * heads * g * d * 2, total * heads * d * 2, total * heads * g * 2
    return {"name": "attention_score", "op": "attention_score", "form": "gemv",
            "shape": {"M": g, "N": max(t for t, _ in contexts), "K": d, "instances": R * heads},
            "flops": 2 * g * d * heads * total, "bytes_read": q + kv, "bytes_written": sc,
            "kv_heads": [0, heads], "tokens": [0, max(t for t, _ in contexts)], "reuse": g,
            "requests": list(range(R)), "contexts": [list(c) for c in contexts],
            "operands": [{"name": "q", "access": "read", "bytes": q, "shape": [R, heads * g, 1, d]},
                         {"name": "k_cache", "access": "read", "bytes": kv, "shape": [1, heads, total, d]},
                         {"name": "scores", "access": "write", "bytes": sc, "shape": [1, heads * g, 1, total]}]}


def test_flash_decoding_blocks_count_each_requests_own_chunks():
    # split_kv_tokens 256: a request of 300 tokens runs 2 chunks per head, one of 1,000 runs 4;
    # 96 heads x (2 + 4) = 576 blocks over 8 GPUs: 72 per GPU on 108 SMs
    split = device(cores=108, count=8, split_kv_tokens=256)
    assert occupancy(ragged_kernel([(300, 1), (1000, 1)]), split) == pytest.approx(72 / 108)
    # at the longest length for both it would be 96 x 8 = 768 blocks, 96 per GPU
    assert occupancy(dict(ragged_kernel([(300, 1), (1000, 1)]), contexts=None, tokens=[0, 1000]), split) == \
        pytest.approx(96 / 108)


def test_onchip_traffic_of_a_ragged_score_reads_the_queries_per_requests_tiles():
    k = ragged_kernel([(100, 1), (300, 1)], heads=2, d=16)
    tiles = {"thread_block": (128, 128), "register": (16, 16)}
    l2, l1, reg = onchip_bytes(k, tiles)
    q = 2 * 2 * 16 * 2                    # 2 requests x 2 heads x 16 dims, 2 B
    kv, sc = 400 * 2 * 16 * 2, 400 * 2 * 2
    # q re-read per 128-token tile of its own request: request 0 once, request 1 three times
    assert l2 == q / 2 * 1 + q / 2 * 3 + kv + sc
    assert l1 == q / 2 * math.ceil(100 / 16) + q / 2 * math.ceil(300 / 16) + kv + sc
    assert reg == 3 * (k["flops"] // 2) * 2   # three 2-byte operands per MAC


def test_channels_take_instances_round_robin_in_the_kernels_order():
    pm = PimMemory(load_system("dgx-attacc").memories["attacc_hbm"], devices=1)
    k = ragged_kernel([(100, 2), (300, 1)], heads=3)
    # 3 requests x 3 heads = 9 instances over 4 channels: 100,100,100 | 100,100,100 | 300,300,300
    assert channel_lengths(pm, k, 3, channels=4).lists() == [[100, 100, 300], [100, 100], [100, 300], [100, 300]]
    # the request layout (NeuPIMs): a request's heads in one channel per device; 2 devices: 2
    # units of 2 heads per request, units round robin: r0 -> 0, 1; r1 -> 2, 3; r2 -> 0, 1
    pm.kv_placement, pm.devices = "request", 2
    assert channel_lengths(pm, k, 3, channels=4).lists() == [[100, 100, 300, 300], [100, 100, 300, 300], [100, 100], [100, 100]]


def test_a_channel_of_mixed_contexts_issues_each_instances_own_commands():
    L1, L2, d = 40, 300, 32
    run = {}

    def build(b):
        attention_instances(b, [L1, L2, L2], d)
        run["b"] = b

    spec = load_memory("attacc-bank", {"controller.refresh": "none"})
    cycles = one_channel_cycles("attacc-bank", build)
    counts = {}
    for L in (L1, L2, L2):
        for name, v in attacc_head_counts("bank", L, d).items():
            counts[name] = counts.get(name, 0) + v
    # 40 tokens: 3 groups of 16 (one MAC each per GEMV); 300: 19 groups; 1 MAC group per 64 dims
    assert counts["MACAB"] == 2 * (3 + 19 + 19)
    assert counts["MVGB"] == 8 * (1 + 2 + 2) and counts["SFM"] == 3
    # equal lengths: the same program as the uniform layer
    assert one_channel_cycles("attacc-bank", lambda b: attention_instances(b, [L2, L2], d)) == \
        one_channel_cycles("attacc-bank", lambda b: attention_layer(b, 2, L2, d))
    # the mixed channel lies between all-short and all-long
    assert one_channel_cycles("attacc-bank", lambda b: attention_layer(b, 3, L1, d)) < cycles < \
        one_channel_cycles("attacc-bank", lambda b: attention_layer(b, 3, L2, d))


def test_a_ragged_pim_kernel_counts_every_instances_macs():
    pm = PimMemory(load_system("dgx-attacc").memories["attacc_hbm"], devices=1)
    k = ragged_kernel([(40, 3), (300, 2)], heads=4, d=32)
    kind, lists, shape = pim_work(pm, k, 8)
    assert kind == "layer" and shape == (32, 1) and sorted(map(len, lists.lists())) == [2] * 4 + [3] * 4
    t = pm.run_lengths(kind, lists, shape, symmetry=True, channels=8)
    mac = pm.spec.command_index("MACAB")
    # 12 instances of 40 tokens (3 MACs per GEMV) and 8 of 300 (19), two GEMVs each
    assert t.per_command[mac] == 2 * (12 * 3 + 8 * 19)
    full = pm.run_lengths(kind, lists, shape, symmetry=False, channels=8)
    assert full.duration_ns == t.duration_ns and full.per_command[mac] == t.per_command[mac]
    # composed from uniform channels (the serving step timer's rule): the same MACs, one share
    # per instance, and the slowest channel within 1%
    pm.composition = "instances"
    c = pm.run_lengths(kind, lists, shape, symmetry=True, channels=8)
    assert c.source == "composed" and c.per_command[mac] == t.per_command[mac]
    assert c.duration_ns == pytest.approx(t.duration_ns, rel=0.01)
    L = {i: pm.run("layer", [(n, 1)], (ctx, 32, 1), True, 1).duration_ns / n
         for i, (n, ctx) in enumerate(((2, 40), (2, 300), (3, 40), (3, 300)))}
    # channels 0-3 hold 3 instances, 4-7 two; by hand from the round robin of 20 instances
    want = max(sum(L[2 + (x == 300)] for x in lst) if len(lst) == 3 else sum(L[(x == 300)] for x in lst)
               for lst in lists.lists())
    assert c.duration_ns == pytest.approx(want, rel=1e-12)


def test_a_mixed_generation_grows_each_requests_context():
    # prompts 10 and 30, six output tokens: decode steps 1..5; step 1 is a template of its own,
    # steps 2..5 share one whose ragged kernel's two lengths grow by one token a step
    wl = Workload((Request(0, 10, 6), Request(1, 30, 6)), phase="generate")
    trace = generate_kernel_trace(TINY, "dgx-a100", wl)
    decode = [k for k in trace.kernels if k["phase"] == "decode" and k["name"] == "attention_score"
              and k["layer"] == 0]
    assert [k["contexts"] for k in decode] == [[[11, 1], [31, 1]], [[12, 1], [32, 1]]]
    k = decode[1]
    assert k["grow"]["contexts.0"] == 1 and k["grow"]["contexts.1"] == 1 and k["grow"]["shape.N"] == 1
    later = kernel_at(k, 3, parse_grow(k))             # step 5: 15 and 35 tokens
    assert later["contexts"] == [[15, 1], [35, 1]] and later["shape"]["N"] == 35
    assert later["flops"] == 2 * 16 * 4 * (15 + 35) and k["contexts"] == [[12, 1], [32, 1]]


def test_bad_contexts_are_refused_with_the_line(tmp_path):
    wl = Workload((Request(0, 10, 2), Request(1, 30, 2)), phase="decode")
    trace = generate_kernel_trace(TINY, "dgx-a100", wl)
    path = tmp_path / "t.jsonl"
    trace.write(path)
    lines = path.read_text().splitlines()
    import json
    i = next(j for j, line in enumerate(lines) if '"contexts"' in line)
    k = json.loads(lines[i])
    for bad, match in ((k["contexts"][::-1], "ascending"), ([[11, 1], [31, 2]], "counts 3 requests"),
                       ([[11, 1], [40, 1]], "longest")):
        lines2 = list(lines)
        lines2[i] = json.dumps(dict(k, contexts=bad))
        path.write_text("\n".join(lines2) + "\n")
        with pytest.raises(TraceError, match=match) as e:
            read_kernel_trace(path)
        assert f":{i + 1}:" in str(e.value)
