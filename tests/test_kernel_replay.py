"""Kernel-trace replay (`pimdram replay TRACE.jsonl`): every system preset, symmetry against
simulating every channel, dependencies and overlap, AttAcc command counts end to end, errors."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.config import list_configs
from pimdram.config.system import load_system, system_raw
from pimdram.stats import open_stats
from pimdram.system import replay_kernels


def gen(tmp_path, *args, name="t.jsonl"):
    out = tmp_path / name
    r = CliRunner().invoke(cli, ["gen", *args, "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("system", list_configs("systems"))
def test_gen_then_replay_writes_stats_on_every_system(tmp_path, system):
    # --allow-overcommit: a one-device preset (ianus-device, 4 GB) does not hold Llama-3-8B's weights
    trace = gen(tmp_path, "--model", "llama3-8b", "--system", system, "--batch", "4", "--prompt", "128",
                "--output", "4", "--layers", "1", "--allow-overcommit")
    stats = tmp_path / "s.h5"
    r = CliRunner().invoke(cli, ["replay", str(trace), "-o", str(stats), "--no-progress"])
    assert r.exit_code == 0, r.output
    report = json.loads(CliRunner().invoke(cli, ["report", str(stats), "--json"]).output)
    assert report["tokens_per_s"] > 0 and report["tokens"] == 4
    kernels = report["kernels"]
    assert len(kernels) == report["kernel_count"] > 0
    assert all(k["end_cycle"] >= k["start_cycle"] >= 0 for k in kernels)
    assert {"name", "layer", "device", "start_cycle", "end_cycle"} <= set(kernels[0])
    t = open_stats(stats).table("kernels")
    pim = t["channels_total"] > 0
    gemv = pim & (t["commands"] > 0) & (t["name"] != "softmax")     # softmax: unit ops, not counted
    assert (t["energy_j"][gemv] > 0).all()
    # every preset gives every figure its kernels need: finite energy, split by device and kind
    assert np.isfinite(t["energy_j"]).all() and report["energy_j"] > 0
    assert report["energy_j"] == pytest.approx(sum(d["total_j"] for d in report["device_energy"]))


def attention_trace(tmp_path, system="attacc-stack-bank", prompt=300):
    return gen(tmp_path, "--model", "gpt2", "--system", system, "--batch", "2", "--prompt", str(prompt),
               "--output", "1", "--layers", "1", "--only", "attention")


def test_symmetry_agrees_with_simulating_every_channel(tmp_path):
    trace = attention_trace(tmp_path)
    fast = replay_kernels(trace, tmp_path / "a.h5", symmetry=True)
    full = replay_kernels(trace, tmp_path / "b.h5", symmetry=False)
    ta, tb = open_stats(tmp_path / "a.h5").table("kernels"), open_stats(tmp_path / "b.h5").table("kernels")
    np.testing.assert_array_equal(ta["end_cycle"], tb["end_cycle"])
    np.testing.assert_array_equal(ta["commands"], tb["commands"])
    pim = (ta["channels_total"] > 0) & (ta["source"] != "fused")     # fused: inside the score's program
    assert (ta["channels_simulated"][pim] <= 2).all() and (tb["channels_simulated"][pim] == 16).all()
    assert fast.summary["cycles"] == full.summary["cycles"]


def test_attacc_command_counts_end_to_end(tmp_path):
    trace = attention_trace(tmp_path, prompt=300)
    replay_kernels(trace, tmp_path / "s.h5")
    sf = open_stats(tmp_path / "s.h5")
    commands = {n: int(sf.table("channels")[f"cmd_{n}"].sum()) for n in ("MACAB", "WRGB", "SFM")}
    heads, L, d = 12, 301, 64             # gpt2: 12 heads of 64; 300 cached tokens + the new one
    instances = 2 * heads
    assert commands["MACAB"] == instances * 2 * math.ceil(L / 16) * math.ceil(d / 64)
    assert commands["WRGB"] == instances * 4 * math.ceil(d / 64)
    assert commands["SFM"] == instances


def test_dependencies_are_honoured_and_devices_overlap(tmp_path):
    trace = gen(tmp_path, "--model", "llama3-8b", "--system", "neupims", "--batch", "8", "--prompt", "128",
                "--output", "4", "--layers", "2")
    replay_kernels(trace, tmp_path / "s.h5")
    t = open_stats(tmp_path / "s.h5").table("kernels")
    kernels = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
    for k in kernels:
        for d in k["deps"]:
            assert t["start_ns"][k["id"]] >= t["end_ns"][d] - 1e-9
    # some kernels on different devices run at the same time (NeuPIMs' two sub-batches)
    overlap = False
    for i in range(len(kernels)):
        for j in range(i + 1, len(kernels)):
            if t["device"][i] != t["device"][j] and t["start_ns"][i] < t["end_ns"][j] and t["start_ns"][j] < t["end_ns"][i] \
                    and t["end_ns"][i] > t["start_ns"][i] and t["end_ns"][j] > t["start_ns"][j]:
                overlap = True
                break
        if overlap:
            break
    assert overlap


def test_layers_and_steps_tables(tmp_path):
    trace = gen(tmp_path, "--model", "gpt2", "--system", "dgx-attacc", "--batch", "2", "--prompt", "64",
                "--output", "3", "--phase", "generate")
    result = replay_kernels(trace, tmp_path / "s.h5")
    sf = open_stats(tmp_path / "s.h5")
    steps, layers = sf.table("steps"), sf.table("layers")
    assert list(steps["step"]) == [0, 1, 2]
    assert set(layers["layer"]) == set(range(-1, 12))
    assert result.summary["kernels_reused"] > 0        # identical layers are simulated once


def test_a_trace_for_another_system_is_one_error(tmp_path):
    trace = attention_trace(tmp_path)
    r = CliRunner().invoke(cli, ["replay", str(trace), "--system", "dgx-a100", "-o", str(tmp_path / "x.h5")])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "does not have" in r.output and not (tmp_path / "x.h5").exists()
    r = CliRunner().invoke(cli, ["replay", str(trace), "--memory", "hbm2_2gbps", "-o", str(tmp_path / "x.h5")])
    assert r.exit_code != 0 and "--memory is for request traces" in r.output


@pytest.mark.parametrize("system", ["neupims", "ianus"])
def test_gemv_designs_simulate_their_pim_kernels(tmp_path, system):
    # --allow-overcommit: a one-device preset (ianus-device, 4 GB) does not hold Llama-3-8B's weights
    trace = gen(tmp_path, "--model", "llama3-8b", "--system", system, "--batch", "4", "--prompt", "128",
                "--output", "4", "--layers", "1", "--allow-overcommit")
    replay_kernels(trace, tmp_path / "s.h5")
    t = open_stats(tmp_path / "s.h5").table("kernels")
    pim = [i for i in range(len(t["name"])) if t["channels_total"][i] > 0]
    assert pim and all(t["source"][i] in ("simulated", "reused") for i in pim)
    assert all(t["commands"][i] > 0 for i in pim)


def test_neupims_keeps_a_requests_kv_cache_in_one_channel():
    import dataclasses
    from pimdram.system.pim import PimMemory
    pool = load_system("neupims").memories["pim_hbm"]
    pm = PimMemory(dataclasses.replace(pool, stacks=1))          # one device: 32 channels
    assert pm.kv_placement == "request"
    # 40 requests x 8 KV heads over 32 channels: 8 channels hold two requests (16 instances)
    assert pm.loads(40, 8) == [(16, 8), (8, 24)]


def test_neupims_splits_a_requests_kv_heads_over_its_tensor_parallel_devices():
    # 8 NeuPIMs devices of 32 channels; GPT-3 13B (40 heads, 768 tokens cached): tensor
    # parallelism leaves 5 heads of each request on each device, in one of its channels. 128
    # requests: 1,024 (request, device) units over 256 channels, 4 each: 20 instances per channel;
    # 256 requests: 40. (Before the split, 128 requests sat whole in 128 channels, 40 instances
    # each, and half a batch took as long as all of it.)
    from pimdram.system.pim import PimMemory, pim_timing
    system = load_system("neupims")
    pm = PimMemory(system.memories["pim_hbm"], devices=system.devices["pim"].count)
    assert pm.devices == 8 and pm.channels == 256

    def score(requests):
        return {"name": "attention_score", "op": "gemv", "kv_heads": [0, 40], "requests": list(range(requests)),
                "shape": {"M": 1, "N": 768, "K": 128, "instances": 40 * requests}}

    calls = []
    pm.run = lambda kind, loads, shape, symmetry, channels=None: calls.append((kind, loads, shape))
    pim_timing(pm, score(128), True, 256)
    pim_timing(pm, score(256), True, 256)
    pim_timing(pm, score(100), True, 256)        # 800 units: 32 channels hold 4, 224 hold 3
    assert calls == [("score", [(20, 256)], (768, 128, 1)), ("score", [(40, 256)], (768, 128, 1)),
                     ("score", [(20, 32), (15, 224)], (768, 128, 1))]


def test_compute_utilization_scales_compute_bound_kernels(tmp_path):
    import yaml
    raw = system_raw("dgx-a100")
    raw["devices"]["gpu"]["utilization"]["compute"] = 0.4       # half of the preset's 0.8
    slow = tmp_path / "slow.yaml"
    slow.write_text(yaml.safe_dump(raw))
    trace = gen(tmp_path, "--model", "gpt2", "--system", "dgx-a100", "--batch", "64", "--prompt", "512",
                "--output", "1", "--phase", "prefill", "--layers", "1")
    full = replay_kernels(trace, tmp_path / "a.h5").summary
    half = replay_kernels(trace, tmp_path / "b.h5", system=slow).summary
    assert half["simulated_seconds"] > full["simulated_seconds"]
    ta, tb = open_stats(tmp_path / "a.h5").table("kernels"), open_stats(tmp_path / "b.h5").table("kernels")
    up = list(ta["name"]).index("ffn_up")          # 64 x 512 tokens: compute-bound on an A100
    assert tb["end_ns"][up] - tb["start_ns"][up] == pytest.approx(2 * (ta["end_ns"][up] - ta["start_ns"][up]))


@pytest.mark.parametrize("system", ["attacc-stack-bankgroup", "neupims", "papi"])
def test_kernel_replay_command_log_passes_the_checker_across_kernel_boundaries(tmp_path, system):
    trace = gen(tmp_path, "--model", "llama3-8b", "--system", system, "--batch", "4", "--prompt", "128",
                "--output", "4", "--layers", "2")
    stats = tmp_path / "s.h5"
    r = CliRunner().invoke(cli, ["replay", str(trace), "--command-log", "-o", str(stats), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert open_stats(stats).nrows("command_log") > 0
    r = CliRunner().invoke(cli, ["check", str(stats)])
    assert r.exit_code == 0, r.output
    assert " 0 violations" in r.output


def test_devices_sharing_a_blocked_pim_memory_take_turns():
    from pimdram.system.schedule import Resources, list_schedule
    ianus = load_system("ianus")
    held = Resources(ianus, [], {})
    npu = {"device": "npu", "operands": []}
    pim = {"device": "aim_pim", "operands": []}
    assert held.of(npu) == ("npu", "aim[0:512)") and held.of(pim) == ("aim[0:512)",)
    held = Resources(load_system("dgx-attacc"), [], {})      # attacc-bank runs concurrently: no sharing
    assert held.of({"device": "gpu", "operands": []}) == ("gpu",)
    assert held.of({"device": "attacc", "operands": []}) == ("attacc_hbm[0:640)",)
    # two independent kernels: they overlap on two resources and take turns on one
    kernels = [{"id": 0, "device": "npu", "deps": []}, {"id": 1, "device": "aim_pim", "deps": []}]
    assert list_schedule(kernels, [10.0, 10.0], ["npu", "aim_pim"])[0] == [0.0, 0.0]
    assert list_schedule(kernels, [10.0, 10.0], ["memory:aim", "memory:aim"]) == ([0.0, 10.0], [10.0, 20.0])


TINY_SYSTEM = {
    "name": "tiny", "description": "one device whose fixed cost bounds every kernel",
    "memories": {"hbm": {"standard": "hbm3_5.2gbps", "stacks": 1, "channels_per_stack": 16,
                         "banks_per_channel": 64, "rows_per_bank": 16384, "row_bytes": 1024,
                         "static_power_w_per_stack": 5}},
    "devices": {"gpu": {"kind": "gpu", "memory": "hbm", "peak_tflops": 1, "bandwidth_gbs": 100,
                        "kernel_overhead_us": 10, "static_power_w": 20,
                        "energy": {"memory_pj_per_byte": 10, "mac_pj": 1, "l2_pj_per_byte": 0,
                                   "l1_pj_per_byte": 0, "register_pj_per_byte": 0}}},
    "mapping": {"policy": "gpu-only", "xpu": "gpu"},
}


def test_a_decode_step_on_a_tiny_system_by_hand(tmp_path):
    import yaml
    from pathlib import Path
    system = tmp_path / "tiny.yaml"
    system.write_text(yaml.safe_dump(TINY_SYSTEM))
    model = Path(__file__).parent / "data" / "llm" / "tiny-mha.yaml"
    # tiny-mha: 2 layers, hidden 64, 4 heads of 16, plain FFN 256, vocab 1000, learned positions;
    # batch 2, 10 cached tokens, one new token each
    trace = gen(tmp_path, "--model", str(model), "--system", str(system), "--batch", "2", "--prompt", "10",
                "--output", "5")
    s = replay_kernels(trace, tmp_path / "s.h5").summary
    # 13 kernels per layer x 2 + embedding, final norm, LM head = 29 kernels in a chain on one
    # device, each at its 10 us fixed cost (the largest roofline, the LM head's 132 kB, is 1.3 us)
    assert s["kernels"] == 29
    assert s["simulated_seconds"] == pytest.approx(29 * 10e-6)
    assert s["tokens"] == s["decode_tokens"] == 2
    assert s["tokens_per_s"] == pytest.approx(2 / 290e-6) and s["decode_tokens_per_s"] == pytest.approx(2 / 290e-6)
    assert s["prefill_seconds"] == 0.0
    # bytes per layer: norms 768 x 2, QKV 25,600, KV append 1,024, score and context 3,248 each,
    # softmax 352, output projection 8,704, residuals 768 x 2, FFN up and down 34,048 each,
    # activation 2,048 = 115,392; embedding 772, final norm 768, LM head 132,256
    moved = 2 * 115_392 + 772 + 768 + 132_256
    # FLOPs per layer: norms 896 x 2, QKV 49,152, score and context 2,816 each, softmax 440,
    # output projection 16,384, residuals 128 x 2, FFN 65,536 x 2, activation 512 = 205,240;
    # embedding 128, final norm 896, LM head 256,000
    flops = 2 * 205_240 + 128 + 896 + 256_000
    # static: the GPU's 20 W and the memory's 5 W over the 290 us: 7.25 mJ
    assert s["static_power_w"] == 25.0 and s["static_energy_j"] == pytest.approx(25.0 * 290e-6)
    assert s["energy_j"] == pytest.approx(moved * 10e-12 + flops / 2 * 1e-12 + 7.25e-3)
    assert s["energy_per_token_j"] == pytest.approx(s["energy_j"] / 2)


def test_an_overcommitted_workload_is_a_warning_recorded_in_trace_and_stats(tmp_path):
    args = ("--model", "gpt3-175b", "--system", "a100", "--batch", "1", "--prompt", "128", "--output", "2",
            "--layers", "1")
    r = CliRunner().invoke(cli, ["gen", *args, "-o", str(tmp_path / "x.jsonl")])
    assert r.exit_code == 1 and "does not fit memory 'hbm2e'" in r.output and "--allow-overcommit" in r.output
    trace = gen(tmp_path, *args, "--allow-overcommit")
    warning = json.loads(trace.read_text().splitlines()[0])["warnings"][0]
    # GPT-3 175B's FP16 weights on one 80 GB (85.9 GB decimal) A100
    assert warning.startswith("the workload does not fit memory 'hbm2e' of system a100: capacity 85.9 GB")
    assert "needed weights 349.2 GB" in warning        # 174.6 B parameters x 2 B
    replay_kernels(trace, tmp_path / "s.h5")
    sf = open_stats(tmp_path / "s.h5")
    assert bool(sf.table("run")["overcommitted"][0]) and json.loads(sf.attrs["warnings"]) == [warning]


def test_a_format_1_1_trace_replays_on_the_preset_its_header_names(tmp_path):
    trace = gen(tmp_path, "--model", "gpt2", "--system", "dgx-a100", "--batch", "2", "--prompt", "64",
                "--output", "2", "--layers", "1")
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    header = lines[0]
    header["version"] = [1, 1]
    for m in header["system"]["memories"].values():
        del m["config"]
    for k in lines[1:]:
        if k.get("collective"):          # 1.1: an all-reduce carried the bytes moved per device
            del k["collective"]
            del k["shape"]["devices"]
            k["shape"]["bytes"] = 14 * k["shape"]["bytes"] // 8
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    s = replay_kernels(old, tmp_path / "s.h5").summary
    t = open_stats(tmp_path / "s.h5").table("kernels")
    ar = list(t["name"]).index("all_reduce")
    k = lines[1 + ar]
    # a transfer of its bytes on the NVLink: latency + bytes / bandwidth
    assert t["end_ns"][ar] - t["start_ns"][ar] == pytest.approx(3030 + k["shape"]["bytes"] / 300)
    assert s["tokens"] == 2
