"""Systems, mapping and placement policies on cases whose answer is known."""
from pathlib import Path

import pytest
import yaml

from pimdram.config import find_config, list_configs
from pimdram.errors import ConfigError, WorkloadError
from pimdram.llm import Workload
from pimdram.llm.workload import Request
from pimdram.config.system import load_system, system_raw
from pimdram.mapping import generate_kernel_trace

DATA = Path(__file__).parent / "data" / "llm"
FC = {"qkv_projection", "output_projection", "ffn_gate", "ffn_up", "ffn_down", "lm_head"}


def devices_of(trace, names):
    return {k["device"] for k in trace.kernels if k["name"] in names}


def custom_system(tmp_path, base, edit):
    data = system_raw(base)
    edit(data)
    p = tmp_path / f"{base}-custom.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_required_system_presets_exist_and_load():
    need = {"dgx-a100", "dgx-attacc", "neupims", "ianus", "papi", "hybe", "attacc-stack-bank",
            "attacc-stack-bankgroup", "attacc-stack-buffer"}
    assert need <= set(list_configs("systems"))
    for name in need:
        s = load_system(name)
        for mem in s.memories.values():
            assert isinstance(mem.standard, str) and (mem.pim is None or isinstance(mem.pim, str))
    assert load_system("attacc-stack-bankgroup").memories["pim_hbm"].pim == "attacc-bankgroup"
    dgx = load_system("dgx-attacc")
    assert dgx.memories["attacc_hbm"].stacks == 40 and dgx.devices["gpu"].count == 8


def test_gpu_only_runs_everything_on_the_gpu():
    t = generate_kernel_trace("llama2-7b", "dgx-a100", Workload.uniform(4, 128, 8), layers=2)
    assert {k["device"] for k in t.kernels if k["op"] != "communication"} == {"gpu"}
    assert {k["name"] for k in t.kernels if k["op"] == "communication"} == {"all_reduce"}


def test_attacc_attention_on_pim_fc_on_gpu_with_transfers():
    t = generate_kernel_trace("gpt3-6.7b", "dgx-attacc", Workload.uniform(4, 128, 8), layers=2)
    assert devices_of(t, {"attention_score", "softmax", "attention_context", "kv_cache_append"}) == {"attacc"}
    assert devices_of(t, FC) == {"gpu"}
    transfers = [k for k in t.kernels if k["name"] == "transfer"]
    assert transfers and {k["device"] for k in transfers} == {"gpu_attacc"}
    # the score kernel waits for the query that crossed the link
    by_id = {k["id"]: k for k in t.kernels}
    score = next(k for k in t.kernels if k["name"] == "attention_score")
    assert any(by_id[d]["name"] == "transfer" for d in score["deps"])
    # KV cache lives in the AttAcc memory, one (request, head) per channel
    kv = [o for k in t.kernels for o in k["operands"] if o["role"] == "kv_cache"]
    assert kv and all(o["region"].startswith("attacc_hbm:") for o in kv)
    region = t.header["placement"]["regions"][kv[0]["region"]]
    assert region["layout"] == "head" and region["memory"] == "attacc_hbm"


@pytest.mark.parametrize("batch,spec,device", [(64, 4, "gpu"), (1, 1, "fc_pim")])
def test_papi_fc_by_estimated_intensity(batch, spec, device):
    t = generate_kernel_trace("llama-65b", "papi", Workload.uniform(batch, 256, 16, speculation=spec), layers=1)
    assert devices_of(t, FC) == {device}
    assert devices_of(t, {"attention_score", "attention_context"}) == {"attn_pim"}


def test_papi_updates_the_estimate_as_requests_finish(tmp_path):
    def alpha2(d):
        d["mapping"]["alpha"] = 2
    system = custom_system(tmp_path, "papi", alpha2)
    t = generate_kernel_trace("gpt2", system, Workload.from_csv(DATA / "requests.csv", phase="generate"))
    fc_device = {}
    for k in t.kernels:
        if k["name"] == "qkv_projection" and k["layer"] == 0:
            fc_device[k["step"]] = k["device"]
    # prefill: 3 live requests (3 > 2); decode steps with 3, 2, 1 live requests
    assert fc_device == {0: "gpu", 1: "gpu", 2: "fc_pim", 3: "fc_pim"}


def test_neupims_two_sub_batches_alternate():
    t = generate_kernel_trace("gpt3-6.7b", "neupims", Workload.uniform(4, 128, 8), layers=2)
    by_id = {k["id"]: k for k in t.kernels}
    subs = {k.get("sub_batch") for k in t.kernels}
    assert subs == {0, 1}
    reqs = [set(k["requests"]) for k in t.kernels if k["name"] == "qkv_projection" and k["layer"] == 0]
    assert len(reqs) == 2 and not reqs[0] & reqs[1] and reqs[0] | reqs[1] == {0, 1, 2, 3}
    assert devices_of(t, {"attention_score", "attention_context"}) == {"pim"}
    assert devices_of(t, FC) == {"npu"}
    # a sub-batch never waits on the other one: that is what lets NPU and PIM overlap
    for k in t.kernels:
        if "sub_batch" in k:
            assert all(by_id[d].get("sub_batch", k["sub_batch"]) == k["sub_batch"] for d in k["deps"])


def test_ianus_fc_by_latency_estimate_attention_on_npu():
    decode = generate_kernel_trace("gpt2", "ianus", Workload.uniform(1, 128, 8), layers=1)
    # batch 1: FC is a GEMV, bound by bandwidth; AiM's 4 TB/s internal beats the NPU's 256 GB/s
    assert devices_of(decode, {"qkv_projection", "ffn_up", "ffn_down"}) == {"aim_pim"}
    assert devices_of(decode, {"attention_score", "attention_context", "softmax"}) == {"npu"}
    prefill = generate_kernel_trace("gpt2", "ianus", Workload.uniform(1, 1024, 8, phase="prefill"), layers=1)
    # 1024 tokens: compute-bound, the NPU's 91.8 TFLOPS beat AiM's 4.1 TFLOPS
    assert devices_of(prefill, {"qkv_projection", "ffn_up", "ffn_down"}) == {"npu"}


def test_hybe_prefill_on_gpu_decode_on_npu_kv_streamed_per_layer():
    t = generate_kernel_trace("llama3-8b", "hybe", Workload.uniform(2, 64, 3, phase="generate"), layers=2)
    assert {k["device"] for k in t.kernels if k["phase"] == "prefill" and k["op"] != "communication"} == {"gpu"}
    assert {k["device"] for k in t.kernels if k["phase"] == "decode" and k["op"] != "communication"} == {"npu"}
    kv_moves = [k for k in t.kernels if k["name"] == "transfer" and k["operands"][0]["role"] == "kv_cache"]
    assert sorted(k["layer"] for k in kv_moves) == [0, 1]
    assert all(k["device"] == "gpu_npu" for k in kv_moves)
    # each layer's KV cache: 2 requests × 64 prompt tokens × K and V × 8 heads × 128 × fp16
    assert all(k["shape"]["bytes"] == 2 * 64 * 2 * 8 * 128 * 2 for k in kv_moves)


def test_gqa_attention_leaves_pim_above_the_reuse_limit(tmp_path):
    def limit(d):
        d["mapping"]["attention_reuse_limit"] = 1
    system = custom_system(tmp_path, "dgx-attacc", limit)
    gqa = generate_kernel_trace("llama3-8b", system, Workload.uniform(2, 64, 4), layers=1)
    mha = generate_kernel_trace("gpt3-6.7b", system, Workload.uniform(2, 64, 4), layers=1)
    assert devices_of(gqa, {"attention_score", "attention_context"}) == {"gpu"}    # g = 4: a GEMM
    assert devices_of(mha, {"attention_score", "attention_context"}) == {"attacc"}  # g = 1: a GEMV
    kv = {o["region"].split(":")[0] for k in gqa.kernels for o in k["operands"] if o["role"] == "kv_cache"}
    assert kv == {"gpu_hbm"}


def test_kv_cache_split_by_layer_and_by_token(tmp_path):
    def by_layer(d):
        d["placement"]["kv_cache"]["split"] = [{"layers": [0, 1], "memory": "gpu_hbm"}]
    t = generate_kernel_trace("gpt3-6.7b", custom_system(tmp_path, "dgx-attacc", by_layer),
                              Workload.uniform(2, 64, 4), layers=2)
    score = {k["layer"]: k["device"] for k in t.kernels if k["name"] == "attention_score"}
    assert score == {0: "gpu", 1: "attacc"}

    def by_token(d):
        d["placement"]["kv_cache"]["split"] = [{"tokens": [0, 48], "memory": "attacc_hbm"},
                                               {"tokens": [48, 100000], "memory": "gpu_hbm"}]
        d["mapping"]["head_groups"] = 1             # one attention block (no pipelining groups)
    t = generate_kernel_trace("gpt3-6.7b", custom_system(tmp_path, "dgx-attacc", by_token),
                              Workload.uniform(2, 64, 4), layers=1)
    scores = [k for k in t.kernels if k["name"] == "attention_score"]
    assert sorted((k["tokens"][0], k["tokens"][1], k["device"]) for k in scores) == \
        [(0, 48, "attacc"), (48, 65, "gpu")]
    assert sum(k["shape"]["N"] for k in scores) == 65
    assert [k["device"] for k in t.kernels if k["name"] == "attention_merge"] == ["gpu"]


def test_workload_that_does_not_fit_shows_the_numbers():
    with pytest.raises(WorkloadError, match=r"does not fit memory 'gpu_hbm'.*capacity 687\.2 GB.*"
                                            r"weights 349\.2 GB \+ KV cache"):
        generate_kernel_trace("gpt3-175b", "dgx-a100", Workload.uniform(256, 2048, 2048, phase="decode"))


def test_layers_beyond_the_model_is_an_error():
    with pytest.raises(WorkloadError, match="exceeds the 12 layers"):
        generate_kernel_trace("gpt2", "dgx-a100", Workload.uniform(1, 8, 2), layers=13)


@pytest.mark.parametrize("edit,match", [
    (lambda d: d["memories"]["gpu_hbm"].update(pim=3), "gpu_hbm.pim: expected a string"),
    (lambda d: d["memories"]["gpu_hbm"].update(standard=["hbm3"]), "standard: expected a string"),
    (lambda d: d["devices"]["attacc"].update(memory="gpu_hbm"), "needs a memory with a pim design"),
    (lambda d: d["mapping"].update(policy="magic"), "mapping.policy: expected one of"),
    (lambda d: d["mapping"].update(pim="gpu"), "must be a PIM device"),
    (lambda d: d["devices"]["gpu"].update(flops=1), "devices.gpu.flops: unknown key"),
    (lambda d: d["placement"]["kv_cache"].update(split=[{"layers": [3, 1], "memory": "gpu_hbm"}]),
     r"split\[0\]\.layers: expected \[lo, hi\)"),
])
def test_bad_system_configs(tmp_path, edit, match):
    with pytest.raises(ConfigError, match=match):
        load_system(custom_system(tmp_path, "dgx-attacc", edit))


def test_missing_link_is_a_clear_error(tmp_path):
    def drop(d):
        del d["links"]["gpu_attacc"]
    with pytest.raises(ConfigError, match="between devices gpu and attacc but no link"):
        generate_kernel_trace("gpt2", custom_system(tmp_path, "dgx-attacc", drop), Workload.uniform(1, 8, 2))


def test_a_generations_prefill_cache_is_the_union_of_the_decode_head_groups():
    # GPT-3 175B at batch 4 on dgx-attacc: the decode runs 12 head groups of 4 x 8 instances, each
    # in its own slice of 640 // 12 = 53 channels (the last takes the rest); the prefill writes the
    # cache whole, which is the same memory: channels [0, 640), no rows of its own, its bytes
    # (4 requests x 68 tokens x 2 x 96 heads x 128 x 2 B = 13,369,344) the groups' together.
    # Before, the whole region counted once more and forced the groups into one slice: batch 4 of
    # 2048 + 2048 "did not fit" (39,946 of 16,384 rows per bank).
    kt = generate_kernel_trace("gpt3-175b", "dgx-attacc", Workload.uniform(4, 64, 4, phase="generate"), layers=1)
    regs = kt.header["placement"]["regions"]
    whole = regs["attacc_hbm:kv_cache.L0.kv.p0"]
    groups = [regs[f"attacc_hbm:kv_cache.L0.kv.p0.g{g}"] for g in range(12)]
    assert [g["channels"] for g in groups] == [[53 * g, 53 * (g + 1)] for g in range(11)] + [[583, 640]]
    assert whole["channels"] == [0, 640] and whole["rows"] == [0, 1]
    assert whole["bytes"] == 13_369_344 == sum(g["bytes"] for g in groups)
    fits = generate_kernel_trace("gpt3-175b", "dgx-attacc", Workload.uniform(4, 2048, 2048, phase="generate"),
                                 layers=1)
    assert "warnings" not in fits.header


def test_a_generation_whose_request_fills_a_kv_part_starts_a_new_template_there(tmp_path):
    # requests of 40 and 60 prompt tokens, KV cache split at token 48: the second has filled the
    # first part from its prefill on; the first fills it at decode step 8 (47 cached + 1 new:
    # both then have 48 tokens there and share the part's kernel) and crosses at step 9. Each
    # change starts a template (before, the run went on and the growth check failed)
    def by_token(d):
        d["placement"]["kv_cache"]["split"] = [{"tokens": [0, 48], "memory": "attacc_hbm"},
                                               {"tokens": [48, 100000], "memory": "gpu_hbm"}]
        d["mapping"]["head_groups"] = 1
    wl = Workload((Request(0, 40, 20), Request(1, 60, 20)), phase="generate")
    t = generate_kernel_trace("gpt2", custom_system(tmp_path, "dgx-attacc", by_token), wl, allow_overcommit=True)
    assert [(r["first_step"], r["count"]) for r in t.header["steps"]] == [(0, 1), (1, 1), (2, 6), (8, 1), (9, 1),
                                                                         (10, 10)]
