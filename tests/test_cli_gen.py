"""`pimdram gen` and `pimdram model show` through click's CliRunner."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.config import list_configs
from pimdram.trace.kernels import read_kernel_trace

DATA = Path(__file__).parent / "data" / "llm"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


GEN = ("gen", "--batch", 2, "--prompt-tokens", 64, "--output-tokens", 4)


@pytest.mark.parametrize("system", list_configs("systems"))
def test_every_model_on_every_system_writes_a_valid_trace(system, tmp_path):
    for model in list_configs("models"):
        out = tmp_path / f"{model}.jsonl"
        # a model larger than a small system (a100) is a capacity study: a warning, still a trace
        r = run(*GEN, "--model", model, "--system", system, "--layers", 1, "--allow-overcommit", "-o", out)
        assert r.exit_code == 0, (model, system, r.output)
        t = read_kernel_trace(out)
        assert ("warning: the workload does not fit" in r.output) == bool(t.header.get("warnings"))
        assert t.header["model"]["name"] == model and t.header["system"]["name"] == system
        assert {k["name"] for k in t.kernels} >= {"qkv_projection", "attention_score", "lm_head"}


def test_whole_model_generate(tmp_path):
    out = tmp_path / "g.jsonl"
    r = run("gen", "--model", "gpt2", "--system", "dgx-attacc", "--batch", 2, "--prompt", 16, "--output", 3,
            "--phase", "generate", "-o", out)
    assert r.exit_code == 0, r.output
    t = read_kernel_trace(out)
    # the prefill, then one template for both decode steps (they differ only in context length)
    assert t.step_runs() == [(0, 0, 1), (1, 1, 2)]
    assert sorted({k["step"] for k in t.kernels}) == [0, 1]
    assert {k["layer"] for k in t.kernels} == {None, *range(12)}


def test_summary_table():
    r = run(*GEN, "--model", "llama3-8b", "--system", "dgx-attacc", "--layers", 1, "--summary")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:6] == ["id", "step", "layer", "kernel", "device", "op"]
    score = next(line for line in lines if " attention_score " in line)
    assert "attacc" in score and "4x65x128 x16" in score and "attention_score/gemm" in score
    assert "totals by device:" in r.output


def test_only_attention_for_microbenchmarks(tmp_path):
    out = tmp_path / "a.jsonl"
    r = run("gen", "--model", "gpt3-6.7b", "--system", "attacc-stack-bank", "--batch", 1, "--prompt", 2048,
            "--output", 1, "--only", "attention", "-o", out)
    assert r.exit_code == 0, r.output
    t = read_kernel_trace(out)
    assert {k["name"] for k in t.kernels} == {"kv_cache_append", "attention_score", "softmax",
                                             "attention_context"}
    assert {k["device"] for k in t.kernels} == {"pim"}
    assert len([k for k in t.kernels if k["name"] == "attention_score"]) == 32
    # dependencies survive selection: context still waits for its softmax
    by_id = {k["id"]: k for k in t.kernels}
    ctx = next(k for k in t.kernels if k["name"] == "attention_context")
    assert "softmax" in {by_id[d]["name"] for d in ctx["deps"]}


# tests/data/llm/requests.csv in decode: one new token against prompts 128, 256, 128
CONTEXTS = [[129, 2], [257, 1]]


def test_requests_csv_and_dtypes(tmp_path):
    out = tmp_path / "r.jsonl"
    r = run("gen", "--model", "gpt2", "--system", "dgx-a100", "--requests", DATA / "requests.csv",
            "--phase", "decode", "--kv-dtype", "int8", "--weight-dtype", "int4", "-o", out)
    assert r.exit_code == 0, r.output
    t = read_kernel_trace(out)
    assert t.header["workload"]["dtypes"] == {"weights": "int4", "activations": "fp16", "kv_cache": "int8"}
    assert len(t.header["workload"]["requests"]) == 3
    # two distinct prompt lengths, one ragged attention kernel (a paged kernel's single launch):
    # each request's one new token against its cached prompt, GPT-2's 12 heads of 64
    scores = [k for k in t.kernels if k["name"] == "attention_score" and k["layer"] == 0]
    assert len(scores) == 1
    s = scores[0]
    assert s["contexts"] == CONTEXTS and s["shape"] == {"M": 1, "N": CONTEXTS[-1][0], "K": 64, "instances": 36}
    assert s["flops"] == 2 * 64 * 12 * sum(t * n for t, n in CONTEXTS)
    # int8 K cache: a byte per element, each request's tokens once
    assert s["operands"][1]["bytes"] == 12 * 64 * sum(t * n for t, n in CONTEXTS)


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "t.jsonl"
    out.write_text("keep me")
    args = (*GEN, "--model", "gpt2", "--system", "dgx-a100", "--layers", 1, "-o", out)
    r = run(*args)
    assert r.exit_code != 0 and "--overwrite" in r.output and out.read_text() == "keep me"
    assert run(*args, "--overwrite").exit_code == 0
    assert read_kernel_trace(out).header["kernels"] > 0


@pytest.mark.parametrize("args,message", [
    (("--model", "gpt5", "--system", "dgx-a100"), "unknown models preset 'gpt5'"),
    (("--model", DATA / "missing-heads.config.json", "--system", "dgx-a100"), "missing field num_attention_heads"),
    (("--model", "gpt2", "--system", "nope"), "unknown systems preset 'nope'"),
    (("--model", "gpt3-175b", "--system", "dgx-a100", "--batch", 512), "does not fit memory 'gpu_hbm'"),
    (("--model", "gpt2", "--system", "dgx-a100", "--speculation", 0), "'--speculation': must be positive"),
    (("--model", "gpt2", "--system", "dgx-a100", "--only", "fft"), "unknown kernel kind 'fft'"),
    (("--model", "gpt2", "--system", "dgx-a100", "--phase", "prefill", "--context", 9), "--context applies"),
])
def test_bad_inputs_give_one_clear_error(tmp_path, args, message):
    base = ["gen", "--prompt", 2048, "--output", 2048, "-o", tmp_path / "x.jsonl"]
    if "--batch" not in args:
        base += ["--batch", 1]
    r = run(*base, *args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "x.jsonl").exists()


def test_zero_batch_is_a_bad_parameter():
    r = run("gen", "--model", "gpt2", "--system", "dgx-a100", "--batch", 0, "--prompt", 8, "--output", 2,
            "--summary")
    assert r.exit_code == 2 and "Invalid value for '--batch'" in r.output


def test_gen_help_has_examples():
    r = run("gen", "--help")
    assert r.exit_code == 0 and "Examples:" in r.output and "pimdram gen --model" in r.output


def test_model_show_json():
    r = run("model", "show", "llama3-8b", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["params"] == 8030261248
    assert (d["layers"], d["hidden"], d["heads"], d["kv_heads"], d["head_dim"]) == (32, 4096, 32, 8, 128)
    assert d["kv_cache_bytes_per_token"] == 2 * 8 * 128 * 2 * 32


def test_model_show_hf_config_and_text():
    r = run("model", "show", DATA / "mixtral.config.json", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["experts"] == 8
    r = run("model", "show", "gpt2")
    assert r.exit_code == 0 and "124,439,808" in r.output
    assert "Examples:" in run("model", "show", "--help").output


def test_old_token_options_still_work_with_a_warning(tmp_path):
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    args = ("--model", "gpt2", "--system", "dgx-a100", "--batch", 2, "--layers", 1)
    r = run("gen", *args, "--prompt-tokens", 64, "--output-tokens", 4, "-o", new)
    assert r.exit_code == 0 and "deprecated" not in r.output
    r = run("gen", *args, "--prompt", 64, "--output", 4, "-o", old)
    assert r.exit_code == 0, r.output
    assert "warning: --prompt is deprecated; use --prompt-tokens" in r.output
    assert "warning: --output is deprecated; use --output-tokens" in r.output
    assert read_kernel_trace(old).kernels == read_kernel_trace(new).kernels
    assert read_kernel_trace(old).header["workload"]["prompt"] == 64
    r = run("gen", *args, "--prompt-tokens", 64, "--prompt", 64, "--output-tokens", 4, "--summary")
    assert r.exit_code == 2 and "same option" in r.output
    assert "--prompt-tokens" in run("gen", "--help").output
    # a file name given to --output (replay's meaning) says where the trace file goes
    r = run("gen", *args, "--prompt-tokens", 64, "--output", "t.jsonl")
    assert r.exit_code == 2 and "the trace file is -o/--out" in r.output
