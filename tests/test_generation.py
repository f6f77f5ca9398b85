"""Whole generations: the steps of a run share one template whose growth is exact (each step equals
the decode step built outright at its context), the trace's size grows with its runs, and the
replayed generation matches its decode steps."""
import json

import pytest

from pimdram.llm import Request, Workload
from pimdram.mapping import generate_kernel_trace
from pimdram.stats import open_stats
from pimdram.system import replay_kernels
from pimdram.trace.kernels import kernel_at

NUMBERS = ("flops", "bytes_read", "bytes_written", "shape", "tokens", "name", "device", "layer", "op")


def numbers(k):
    return {key: k.get(key) for key in NUMBERS} | {"operands": [(o["name"], o["bytes"], o["shape"])
                                                               for o in k["operands"]]}


@pytest.mark.parametrize("system", ["dgx-attacc", "neupims", "dgx-a100"])
def test_every_step_of_a_template_equals_the_step_built_outright(system):
    prompt, output = 30, 7
    gen = generate_kernel_trace("gpt2", system, Workload.uniform(2, prompt, output, phase="generate"))
    runs = gen.step_runs()
    assert [(first, count) for _, first, count in runs] == [(0, 1), (1, output - 1)]
    kernels = {t: ks for t, ks, _ in gen.templates()}
    decode = kernels[runs[1][0]]
    for step in range(1, output):
        # decode step s: each request has prompt + s - 1 tokens cached and adds one
        alone = generate_kernel_trace("gpt2", system, Workload.uniform(2, prompt, output, phase="decode",
                                                                        context=prompt + step - 1))
        assert len(alone.kernels) == len(decode)
        for a, b in zip(alone.kernels, decode):
            assert numbers(a) == numbers(kernel_at(b, step - 1)), (step, a["name"], a["layer"])
    # attention grows by one cached token per step; the FC layers do not grow
    score = next(k for k in decode if k["name"] == "attention_score")
    assert score["grow"]["shape.N"] == 1 and score["shape"]["N"] == prompt + 1
    assert "grow" not in next(k for k in decode if k["name"] == "qkv_projection")


def test_the_trace_grows_with_runs_not_steps():
    short = generate_kernel_trace("gpt2", "dgx-attacc", Workload.uniform(2, 30, 10, phase="generate"))
    long = generate_kernel_trace("gpt2", "dgx-attacc", Workload.uniform(2, 30, 1000, phase="generate"))
    assert len(long.kernels) == len(short.kernels)
    assert long.step_runs()[-1][2] == 999


def test_requests_that_finish_early_start_a_new_run():
    # request 1 stops after 3 tokens: steps 1-2 decode both requests, steps 3.. only request 0
    wl = Workload((Request(0, 20, 6), Request(1, 20, 3)), phase="generate")
    t = generate_kernel_trace("gpt2", "dgx-attacc", wl)
    runs = t.step_runs()
    assert [(first, count) for _, first, count in runs] == [(0, 1), (1, 2), (3, 3)]
    assert [r["tokens"] for r in t.header["steps"]] == [2, 2, 1]
    last = {t_: ks for t_, ks, _ in t.templates()}[runs[-1][0]]
    assert {tuple(k.get("requests", ())) for k in last if k["op"] != "communication"} == {(0,)}


def test_a_generation_replays_at_the_tokens_per_second_of_its_mean_context(tmp_path):
    # GPT-2 on dgx-a100 (attention on the GPU, linear in the context): prompt 128, 64 outputs;
    # decode steps 1..63 attend to 128..190 cached tokens, 159 on average
    gen = generate_kernel_trace("gpt2", "dgx-a100", Workload.uniform(8, 128, 64, phase="generate"))
    gen.write(tmp_path / "g.jsonl")
    whole = replay_kernels(tmp_path / "g.jsonl", tmp_path / "g.h5").summary
    step = generate_kernel_trace("gpt2", "dgx-a100", Workload.uniform(8, 128, 64, phase="decode", context=159))
    step.write(tmp_path / "s.jsonl")
    mean = replay_kernels(tmp_path / "s.jsonl", tmp_path / "s.h5").summary
    assert whole["tokens"] == 8 * 64 and whole["decode_tokens"] == 8 * 63
    assert whole["decode_tokens_per_s"] == pytest.approx(mean["tokens_per_s"], rel=0.01)
    steps = open_stats(tmp_path / "g.h5").table("steps")
    assert list(steps["step"]) == list(range(64)) and list(steps["phase"][:2]) == ["prefill", "decode"]
    assert steps["tokens"].sum() == 8 * 64
    # steps run one after the other
    assert (steps["start_ns"][1:] >= steps["end_ns"][:-1] - 1e-6).all()
    kernels = open_stats(tmp_path / "g.h5").table("kernels")
    assert kernels["instances"].max() == 63 and kernels["instances"].min() == 1


def test_a_generation_replays_each_step_as_its_own_decode_step(tmp_path):
    # on one device every kernel waits for the previous one: the generation's decode time is the
    # sum of its steps replayed alone
    gen = generate_kernel_trace("gpt2", "dgx-attacc", Workload.uniform(2, 40, 5, phase="generate"), layers=1)
    gen.write(tmp_path / "g.jsonl")
    replay_kernels(tmp_path / "g.jsonl", tmp_path / "g.h5")
    steps = open_stats(tmp_path / "g.h5").table("steps")
    for s in range(1, 5):
        one = generate_kernel_trace("gpt2", "dgx-attacc", Workload.uniform(2, 40, 5, phase="decode",
                                                                           context=40 + s - 1), layers=1)
        one.write(tmp_path / f"{s}.jsonl")
        alone = replay_kernels(tmp_path / f"{s}.jsonl", tmp_path / f"{s}.h5").summary
        span = steps["end_ns"][s] - steps["start_ns"][s]
        assert span == pytest.approx(alone["simulated_seconds"] * 1e9, rel=1e-9)


def test_an_edited_template_reference_is_one_clean_error(tmp_path):
    gen = generate_kernel_trace("gpt2", "dgx-attacc", Workload.uniform(2, 30, 4, phase="generate"), layers=1)
    gen.write(tmp_path / "g.jsonl")
    lines = (tmp_path / "g.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    header["steps"][1]["first_step"] = 5
    (tmp_path / "bad.jsonl").write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    from pimdram.errors import TraceError
    from pimdram.trace.kernels import read_kernel_trace
    with pytest.raises(TraceError, match=r"bad\.jsonl:1: steps\[1\]: first_step 5 does not follow"):
        read_kernel_trace(tmp_path / "bad.jsonl")
    k = json.loads(lines[-1])
    k["grow"] = {"shape.Q": 1}
    (tmp_path / "bad2.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(k)]) + "\n")
    with pytest.raises(TraceError, match=r"grow\.shape\.Q: expected an integer change"):
        read_kernel_trace(tmp_path / "bad2.jsonl")


def _program(spec, build):
    from pimdram._engine import Engine
    from pimdram.lower.program import assemble
    from pimdram.replay import engine_params
    import dataclasses
    one = dataclasses.replace(spec, counts=[1] + list(spec.counts[1:]))
    b = build(one, Engine(engine_params(one)).node_id)
    cols, _ = assemble(one, [(0, b)])
    return tuple(v.tobytes() for v in cols.values())


@pytest.mark.parametrize("design", ["attacc-bank", "attacc-bankgroup", "attacc-buffer", "papi-attn"])
def test_contexts_with_equal_attention_keys_give_identical_programs(design):
    from pimdram.config.memory import load_memory
    from pimdram.lower.attacc import _Builder, attacc_mode, attention_key, attention_layer
    spec = load_memory(design)
    mode = attacc_mode(spec)
    seen = {}
    for L in range(236, 290):
        for reuse in (1, 4):
            key = attention_key(spec, L, 64, reuse)

            def build(s, node_id):
                b = _Builder(s, node_id, mode, reuse)
                attention_layer(b, 3, L, 64)
                return b
            program = _program(spec, build)
            assert seen.setdefault(key, program) == program, (L, reuse)
    # and different keys do differ: 16-token groups at bank level
    assert len({k for k in seen if k[-1] == 1}) >= (4 if mode != "buffer" else 27)


@pytest.mark.parametrize("design", ["neupims", "aim", "hbm-pim"])
def test_gemvs_with_equal_keys_give_identical_programs(design):
    from pimdram.config.memory import load_memory
    from pimdram.lower.generic import GemvBuilder, gemv_key
    spec = load_memory(design)
    seen = {}
    for L in range(120, 160):
        for rows, cols in ((L, 64), (64, L)):
            def build(s, node_id):
                b = GemvBuilder(s, node_id, 1)
                b.gemv(0, rows, cols)
                return b
            key = (rows == L,) + gemv_key(spec, rows, cols)
            program = _program(spec, build)
            assert seen.setdefault(key, program) == program, (rows, cols)


def test_a_long_prompt_needs_no_memory_for_its_score_matrix():
    # Llama-3-8B, one 100,000-token prompt on 8 H100s (640 GB). Tiled, the prefill holds no
    # 100,000^2 x 32-head score matrix (640 GB in FP16); the largest activations are the FFN's:
    # gate and up outputs, 100,000 x 14,336 x 2 B each (2.87 GB), read by the activation kernel
    # with its 2.87 GB output: 8.60 GB per GPU memory region.
    trace = generate_kernel_trace("llama3-8b", "dgx-h100", Workload.uniform(1, 100_000, 1, phase="prefill"),
                                  layers=1)
    assert "warnings" not in trace.header
    acts = trace.header["placement"]["regions"]["gpu_hbm:activations"]["bytes"]
    assert acts == 3 * 100_000 * 14_336 * 2
