"""Kernel-trace replay (`pimdram replay TRACE.jsonl`): every system preset, symmetry against
simulating every channel, dependencies and overlap, AttAcc command counts end to end, errors."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.config import list_configs
from pimdram.kernel_replay import replay_kernels
from pimdram.stats import open_stats


def gen(tmp_path, *args, name="t.jsonl"):
    out = tmp_path / name
    r = CliRunner().invoke(cli, ["gen", *args, "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("system", list_configs("systems"))
def test_gen_then_replay_writes_stats_on_every_system(tmp_path, system):
    trace = gen(tmp_path, "--model", "llama3-8b", "--system", system, "--batch", "4", "--prompt", "128",
                "--output", "4", "--layers", "1")
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
    if system == "dgx-a100":
        assert report["energy_j"] is None          # nothing in the system gives an energy figure


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
    pim = ta["channels_total"] > 0
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
    trace = gen(tmp_path, "--model", "llama3-8b", "--system", system, "--batch", "4", "--prompt", "128",
                "--output", "4", "--layers", "1")
    replay_kernels(trace, tmp_path / "s.h5")
    t = open_stats(tmp_path / "s.h5").table("kernels")
    pim = [i for i in range(len(t["name"])) if t["channels_total"][i] > 0]
    assert pim and all(t["source"][i] in ("simulated", "reused") for i in pim)
    assert all(t["commands"][i] > 0 for i in pim)


def test_neupims_keeps_a_requests_kv_cache_in_one_channel():
    from pimdram.kernel_replay import _PimMemory
    pm = _PimMemory("m", {"pim": "neupims", "channels": 32}, None)
    assert pm.kv_placement == "request"
    # 40 requests x 8 KV heads over 32 channels: 8 channels hold two requests (16 instances)
    assert pm.loads(40, 8) == [(16, 8), (8, 24)]


def test_device_efficiency_scales_compute_bound_kernels(tmp_path):
    import yaml
    from pimdram.config import find_config
    raw = yaml.safe_load(find_config("systems", "dgx-a100").read_text())
    raw["devices"]["gpu"]["efficiency"] = 0.5
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
    from pimdram.kernel_replay import KernelTiming, _PimMemory, _resources, _schedule
    from pimdram.mapping.systems import load_system
    ianus = load_system("ianus")
    res = _resources(ianus, {"aim": _PimMemory("aim", {"pim": "aim", "channels": 8}, None)})
    assert res["npu"] == res["aim_pim"] == "memory:aim"
    attacc = load_system("dgx-attacc")        # attacc-bank runs concurrently: no sharing
    res = _resources(attacc, {"attacc_hbm": _PimMemory("attacc_hbm", {"pim": "attacc-bank", "channels": 16}, None)})
    assert res["gpu"] == "gpu" and res["attacc"] == "attacc"
    # two independent kernels: they overlap on two resources and take turns on one
    kernels = [{"id": 0, "device": "npu", "deps": []}, {"id": 1, "device": "aim_pim", "deps": []}]
    timings = [KernelTiming(10.0, "model"), KernelTiming(10.0, "model")]
    assert _schedule(kernels, timings, ["npu", "aim_pim"])[0] == [0.0, 0.0]
    assert _schedule(kernels, timings, ["memory:aim", "memory:aim"]) == ([0.0, 10.0], [10.0, 20.0])
