"""Kernels of a forward pass: shapes, FLOPs and bytes on hand-computed cases (MHA, GQA, plain/gated FFN, MoE)."""
from pathlib import Path

import pytest

from pimdram.errors import WorkloadError
from pimdram.llm import StepBuilder, Workload, expert_loads, load_model

DATA = Path(__file__).parent / "data" / "llm"


def step_kernels(model, workload):
    m = load_model(model)
    step = workload.steps()[0]
    return StepBuilder(m, workload).build(step, step.groups)


def one(kernels, name, layer=0, **match):
    found = [k for k in kernels if k.name == name and k.layer == layer
             and all(getattr(k, a) == v for a, v in match.items())]
    assert len(found) == 1, (name, layer, match, len(found))
    return found[0]


def operand(kernel, name):
    return next(o for o in kernel.operands if o.name == name)


@pytest.fixture
def mha_decode():
    # tiny MHA: hidden 64, 4 heads of 16, plain FFN 256; batch 2, 10 cached tokens, one new token each
    return step_kernels(str(DATA / "tiny-mha.yaml"), Workload.uniform(2, 10, 5, phase="decode"))


def test_mha_qkv_projection(mha_decode):
    k = one(mha_decode, "qkv_projection")
    assert k.shape == {"M": 2, "N": 192, "K": 64} and k.op == "gemm"
    assert k.flops == 2 * 2 * 192 * 64
    assert operand(k, "w").bytes == 64 * 192 * 2 and operand(k, "w").role == "weight"
    assert operand(k, "x").bytes == 2 * 64 * 2
    assert operand(k, "y").bytes == 2 * 192 * 2
    assert k.intensity == pytest.approx(k.flops / (k.bytes_read + k.bytes_written))


def test_mha_decode_attention_is_gemv_per_request_and_head(mha_decode):
    s = one(mha_decode, "attention_score")
    assert s.form == "gemv"
    assert s.shape == {"M": 1, "N": 11, "K": 16, "instances": 2 * 4}
    assert s.flops == 2 * 1 * 11 * 16 * 8
    assert operand(s, "k_cache").role == "kv_cache"
    assert operand(s, "k_cache").bytes == 2 * 4 * 11 * 16 * 2
    assert operand(s, "q").bytes == 2 * 4 * 16 * 2
    assert operand(s, "scores").bytes == 2 * 4 * 11 * 2
    c = one(mha_decode, "attention_context")
    assert c.shape == {"M": 1, "N": 16, "K": 11, "instances": 8} and c.flops == s.flops
    assert operand(c, "v_cache").bytes == operand(s, "k_cache").bytes
    append = one(mha_decode, "kv_cache_append")
    # one new token per request: K and V of 4 heads of 16, fp16
    assert operand(append, "kv_cache").bytes == 2 * 1 * 2 * 4 * 16 * 2


def test_plain_ffn_uses_intermediate_size(mha_decode):
    up, down = one(mha_decode, "ffn_up"), one(mha_decode, "ffn_down")
    assert up.shape == {"M": 2, "N": 256, "K": 64} and down.shape == {"M": 2, "N": 64, "K": 256}
    assert up.flops == down.flops == 2 * 2 * 256 * 64
    assert not [k for k in mha_decode if k.name == "ffn_gate"]
    act = one(mha_decode, "activation")
    assert act.shape == {"elements": 2 * 256}


def test_learned_positions_no_rotary_and_tied_head(mha_decode):
    assert not [k for k in mha_decode if k.name == "rotary_embedding"]
    emb = one(mha_decode, "embedding", layer=None)
    assert [o.name for o in emb.operands if o.role == "weight"] == ["embedding_table", "position_table"]
    head = one(mha_decode, "lm_head", layer=None)
    assert head.shape == {"M": 2, "N": 1000, "K": 64}
    assert operand(head, "w").tensor == "embedding"      # tied to the embedding table


def test_prefill_is_gemm_over_the_prompt_and_head_on_last_token():
    ks = step_kernels(str(DATA / "tiny-mha.yaml"), Workload.uniform(3, 32, 4, phase="prefill"))
    qkv = one(ks, "qkv_projection")
    assert qkv.shape["M"] == 3 * 32
    s = one(ks, "attention_score")
    assert s.form == "gemm" and s.shape == {"M": 32, "N": 32, "K": 16, "instances": 3 * 4}
    assert one(ks, "lm_head", layer=None).shape["M"] == 3


def test_prefill_attention_is_tiled_its_scores_stay_on_chip(mha_decode):
    # tiny MHA (4 heads of 16), 3 requests x 32-token prompts, FP16: 12 instances
    ks = step_kernels(str(DATA / "tiny-mha.yaml"), Workload.uniform(3, 32, 4, phase="prefill"))
    s, sm, c = one(ks, "attention_score"), one(ks, "softmax"), one(ks, "attention_context")
    # score reads q and K: 12 x 32 x 16 x 2 B each = 12,288 B; its 12 x 32 x 32 scores (24,576 B)
    # stay on chip, as do the probabilities
    assert operand(s, "scores").on_chip and operand(s, "scores").bytes == 24576
    assert (s.bytes_read, s.bytes_written) == (2 * 12288, 0)
    assert (sm.bytes_read, sm.bytes_written) == (0, 0) and sm.flops == 5 * 12 * 32 * 32
    assert (c.bytes_read, c.bytes_written) == (12288, 12288)        # V in, context out
    assert c.flops == 2 * 32 * 16 * 32 * 12
    assert operand(s, "scores").record()["on_chip"] is True and "region" not in operand(s, "scores").record()
    # a decode step's scores go to memory (2 requests x 4 heads x 11 tokens x 2 B)
    d = one(mha_decode, "attention_score")
    assert not operand(d, "scores").on_chip and d.bytes_written == 2 * 4 * 11 * 2


@pytest.fixture
def gqa_moe():
    # 8 heads over 2 KV heads (g = 4), head_dim 8, gated FFN 128, 4 experts top-2;
    # batch 3, 20 cached tokens, speculation 2
    return step_kernels(str(DATA / "tiny-gqa-moe.yaml"),
                        Workload.uniform(3, 20, 8, phase="decode", speculation=2))


def test_gqa_attention_is_gemm_with_reuse_g(gqa_moe):
    s = one(gqa_moe, "attention_score")
    assert s.form == "gemm"
    assert s.shape == {"M": 4 * 2, "N": 22, "K": 8, "instances": 3 * 2}
    assert s.flops == 2 * 8 * 22 * 8 * 6
    assert operand(s, "k_cache").bytes == 3 * 2 * 22 * 8 * 2     # kv_heads, not heads
    assert operand(s, "q").bytes == 3 * 8 * 2 * 8 * 2
    qkv = one(gqa_moe, "qkv_projection")
    assert qkv.shape == {"M": 6, "N": (8 + 2 * 2) * 8, "K": 64}


def test_moe_top2_balanced_experts(gqa_moe):
    # 6 tokens × top-2 = 12 assignments over 4 experts: 3 tokens each
    assert expert_loads(6, 4, 2) == [3, 3, 3, 3]
    router = one(gqa_moe, "router")
    assert router.shape == {"M": 6, "N": 4, "K": 64}
    for e in range(4):
        gate = one(gqa_moe, "ffn_gate", expert=e)
        up = one(gqa_moe, "ffn_up", expert=e)
        down = one(gqa_moe, "ffn_down", expert=e)
        assert gate.shape == up.shape == {"M": 3, "N": 128, "K": 64}
        assert down.shape == {"M": 3, "N": 64, "K": 128}
        assert gate.flops == 2 * 3 * 128 * 64
        assert operand(gate, "w").tensor == f"L0.ffn_gate.e{e}"
    act = one(gqa_moe, "activation", expert=0)
    assert act.shape == {"elements": 3 * 128} and len(act.operands) == 3   # reads gate and up


def test_moe_batch_one_reads_only_top_k_experts():
    ks = step_kernels(str(DATA / "tiny-gqa-moe.yaml"), Workload.uniform(1, 20, 8, phase="decode"))
    gates = [k for k in ks if k.name == "ffn_gate" and k.layer == 0]
    assert sorted(k.expert for k in gates) == [0, 1]
    weight_bytes = sum(k.bytes_of("weight") for k in ks if k.layer == 0 and k.expert is not None)
    assert weight_bytes == 2 * 3 * 64 * 128 * 2


def test_dtypes_change_bytes_not_flops():
    wl16 = Workload.uniform(2, 10, 5)
    wl4 = Workload.uniform(2, 10, 5, weight_dtype="int4", kv_cache_dtype="int8")
    a = one(step_kernels(str(DATA / "tiny-mha.yaml"), wl16), "ffn_up")
    b = one(step_kernels(str(DATA / "tiny-mha.yaml"), wl4), "ffn_up")
    assert a.flops == b.flops
    assert operand(b, "w").bytes * 4 == operand(a, "w").bytes
    s = one(step_kernels(str(DATA / "tiny-mha.yaml"), wl4), "attention_score")
    assert operand(s, "k_cache").bytes == 2 * 4 * 11 * 16 * 1


def test_generate_steps_and_live_batch():
    wl = Workload.from_csv(DATA / "requests.csv", phase="generate")
    steps = wl.steps()
    assert steps[0].phase == "prefill" and steps[0].tokens == 128 + 256 + 128
    # outputs 4, 2, 3: the prefill yields one token each, then 3 decode steps with 3, 2, 1 live requests
    assert [s.live_batch for s in steps[1:]] == [3, 2, 1]
    assert [g.context for g in steps[1].groups] == [128, 256]
    wl = Workload.uniform(2, 100, 9, phase="generate", speculation=4)
    assert [s.tokens for s in wl.steps()[1:]] == [8, 8]     # 8 further tokens in steps of 4


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch=0, prompt=1, output=1), "batch must be a positive integer"),
    (dict(batch=1, prompt=-3, output=1), "prompt must be a positive integer"),
    (dict(batch=1, prompt=1, output=1, speculation=0), "speculation length must be positive"),
    (dict(batch=1, prompt=1, output=1, phase="train"), "phase must be one of"),
    (dict(batch=1, prompt=1, output=1, kv_cache_dtype="fp8"), "kv_cache_dtype must be one of"),
    (dict(batch=1, prompt=1, output=1, phase="prefill", context=5), "only meaningful for --phase decode"),
])
def test_bad_workloads(kwargs, match):
    with pytest.raises(WorkloadError, match=match):
        Workload.uniform(**kwargs)


def test_requests_csv_errors_name_the_line(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("arrival,prompt_tokens,output_tokens\n0,10,2\n1,zero,2\n")
    with pytest.raises(WorkloadError, match=r"r\.csv:3:"):
        Workload.from_csv(p)
    p.write_text("arrival,prompt\n0,10\n")
    with pytest.raises(WorkloadError, match="missing column"):
        Workload.from_csv(p)


# --- FLOPs and bytes of the non-product kernels, by hand (docs/workloads.md) ------------------

def test_norm_kernels_flops_and_bytes(mha_decode):
    # LayerNorm over T = 2 tokens of hidden 64: 7 FLOPs per element; gamma and beta are weights
    for name in ("attention_norm", "ffn_norm"):
        k = one(mha_decode, name)
        assert k.op == "norm" and k.shape == {"elements": 2 * 64}
        assert k.flops == 7 * 2 * 64
        assert operand(k, "x").bytes == 2 * 64 * 2 and operand(k, "y").bytes == 2 * 64 * 2
        assert operand(k, "gamma").bytes == 2 * 64 * 2 and operand(k, "gamma").role == "weight"
        assert (k.bytes_read, k.bytes_written) == (2 * 64 * 2 + 2 * 64 * 2, 2 * 64 * 2)
    rms = one(step_kernels(str(DATA / "tiny-gqa-moe.yaml"), Workload.uniform(1, 4, 2, phase="decode")),
              "attention_norm")
    assert rms.flops == 4 * 64 and operand(rms, "gamma").bytes == 64 * 2      # RMSNorm: gamma only


def test_softmax_flops_count_every_query_row(gqa_moe):
    # GQA g = 4, speculation 2: 8 query rows per (request, KV head), 3 requests x 2 KV heads,
    # 22 cached tokens: 3 x 2 x 8 x 22 scores, 5 FLOPs each
    k = one(gqa_moe, "softmax")
    assert k.shape == {"elements": 3 * 2 * 8 * 22}
    assert k.flops == 5 * 3 * 2 * 8 * 22
    assert k.bytes_read == k.bytes_written == 3 * 2 * 8 * 22 * 2


def test_elementwise_kernels_flops_and_bytes(mha_decode):
    for name in ("attention_residual", "ffn_residual"):      # y = x + f(x): 1 FLOP per element
        k = one(mha_decode, name)
        assert k.op == "elementwise" and k.flops == 2 * 64
        assert (k.bytes_read, k.bytes_written) == (2 * (2 * 64 * 2), 2 * 64 * 2)
    act = one(mha_decode, "activation")                      # plain FFN: act(x), 1 FLOP per element
    assert act.flops == 2 * 256 and (act.bytes_read, act.bytes_written) == (2 * 256 * 2, 2 * 256 * 2)
    append = one(mha_decode, "kv_cache_append")               # a copy: no FLOPs
    assert append.flops == 0 and append.bytes_read == append.bytes_written == 2 * 2 * 4 * 16 * 2


def test_rotary_embedding_flops_and_bytes(gqa_moe):
    # rotary on q and k: T = 3 requests x 2 new tokens, (8 + 2) heads x 8 dims, 3 FLOPs per element
    k = one(gqa_moe, "rotary_embedding")
    el = 6 * (8 + 2) * 8
    assert k.shape == {"elements": el} and k.flops == 3 * el
    assert k.bytes_read == k.bytes_written == el * 2
    act = one(gqa_moe, "activation", expert=0)                # gated: act(gate) x up, 2 FLOPs per element
    assert act.flops == 2 * 3 * 128 and act.bytes_read == 2 * 3 * 128 * 2
