"""Static (idle) power: the IDD model's standby and refresh power of a memory, device and memory
static power in a system, and its charge over a kernel replay's makespan, idle devices included,
on figures worked out by hand."""
import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.config.memory import load_memory
from pimdram.config.system import load_system
from pimdram.energy import static_power_w
from pimdram.errors import ConfigError
from pimdram.stats import open_stats
from pimdram.system.tables import Accumulator, static_powers
from pimdram.system.timing import ENERGY_KINDS

# hbm3_5.2gbps: IDD2N 33 mA, IDD3N 39 mA, IDD5B 250 mA, VDD 1.2 V, one power node per channel (the
# all-bank refresh's scope); tCK 0.769 ns, nRFC 455, nREFI 5070.
#   standby  33 mA x 1.2 V                                  = 39.6 mW
#   refresh  (250 - 39) mA x 1.2 V x 455 tCK / (5070 tCK)   = 253.2 mW x 455 / 5070 = 22.7231 mW
HBM3_CHANNEL_W = 0.0396 + 0.2532 * 455 / 5070          # 62.3231 mW
HBM3_STACK_W = 16 * HBM3_CHANNEL_W                      # 0.997169 W


def test_idd_static_power_of_an_hbm3_channel():
    assert static_power_w(load_memory("hbm3_5.2gbps")) == pytest.approx(HBM3_CHANNEL_W, rel=1e-12)
    # a PIM design keeps its standard's currents and refresh
    assert static_power_w(load_memory("attacc-bank")) == pytest.approx(HBM3_CHANNEL_W, rel=1e-12)


def _system(tmp_path, **memory):
    raw = {
        "name": "static-test",
        "memories": {"hbm": {"standard": "hbm3_5.2gbps", "stacks": 2, "channels_per_stack": 16,
                             "banks_per_channel": 64, "rows_per_bank": 16384, "row_bytes": 1024, **memory}},
        "devices": {
            "gpu": {"kind": "gpu", "count": 2, "memory": "hbm", "peak_tflops": 100, "bandwidth_gbs": 1000,
                    "static_power_w": 50, "tensor_parallel": True,
                    "energy": {"memory_pj_per_byte": 10, "mac_pj": 1, "l2_pj_per_byte": 0, "l1_pj_per_byte": 0,
                               "register_pj_per_byte": 0}},
            "npu": {"kind": "npu", "count": 1, "memory": "hbm", "peak_tflops": 10, "static_power_w": 7.5},
        },
        "links": {"nvlink": {"between": ["gpu", "gpu"], "bandwidth_gbs": 300, "latency_us": 1,
                             "energy_pj_per_byte": 10}},
        "mapping": {"policy": "gpu-only", "xpu": "gpu"},
    }
    path = tmp_path / "static.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_system_static_power_fields(tmp_path):
    s = load_system(_system(tmp_path))
    assert s.devices["gpu"].static_power_w == 50 and s.devices["npu"].static_power_w == 7.5
    # a memory that names none takes the IDD model: 2 stacks of 16 HBM3 channels
    assert s.memories["hbm"].static_power_w_per_stack == pytest.approx(HBM3_STACK_W)
    assert s.memories["hbm"].static_power_w == pytest.approx(2 * HBM3_STACK_W)
    assert static_powers(s) == {"gpu": ("gpu", 100.0), "npu": ("npu", 7.5),
                                "hbm": ("memory", pytest.approx(2 * HBM3_STACK_W))}
    # the resolved system (a trace header's) reads back the same
    assert load_system(s.to_dict()).memories["hbm"].static_power_w_per_stack == s.memories["hbm"].static_power_w_per_stack
    assert load_system(s.to_dict()).devices["npu"].static_power_w == 7.5
    # a figure given replaces the model; 0 (counted in a GPU board's idle power) drops the memory's row
    given = load_system(_system(tmp_path, static_power_w_per_stack=3))
    assert given.memories["hbm"].static_power_w == 6.0
    assert "hbm" not in static_powers(load_system(_system(tmp_path, static_power_w_per_stack=0)))
    with pytest.raises(ConfigError, match="static_power_w_per_stack: must not be negative"):
        load_system(_system(tmp_path, static_power_w_per_stack=-1))


class _Trace:
    def __init__(self, devices):
        self.header = {"system": {"devices": {"gpu": {"kind": "gpu"}, "npu": {"kind": "npu"}}, "links": {}},
                       "workload": {"phase": "decode", "batch": 2}}
        self.kernels = [{"id": i, "name": "k", "op": "gemm", "step": 0, "phase": "decode", "device": d,
                         "requests": [0, 1], "layer": 0, "flops": 0, "bytes_read": 0, "bytes_written": 0}
                        for i, d in enumerate(devices)]


def test_static_energy_is_power_times_makespan_for_every_device():
    # two GPU kernels of 3 uJ and 1 uJ (memory kind) over [0, 400) and [400, 1000) ns; the NPU runs
    # nothing. Static: GPU group 100 W, NPU 7.5 W, memory 2 W, over the 1000 ns makespan:
    #   GPU 100 x 1e-6 = 100 uJ, NPU 7.5 uJ, memory 2 uJ: 109.5 uJ; with the kernels' 4 uJ, 113.5 uJ,
    #   56.75 uJ per token (2 tokens)
    kt = _Trace(["gpu", "gpu"])
    acc = Accumulator(kt, {}, 1.0)
    plan = acc.plan(kt.kernels)
    energy = np.zeros((2, len(ENERGY_KINDS)))
    energy[:, ENERGY_KINDS.index("memory")] = [3e-6, 1e-6]
    acc.add_step(plan, 0, energy, np.array([0.0, 400.0]), np.array([400.0, 1000.0]))
    static = {"gpu": ("gpu", 100.0), "npu": ("npu", 7.5), "hbm": ("memory", 2.0)}
    tables, summary = acc.tables(0.1, True, [], False, static=static)
    assert summary["static_power_w"] == 109.5
    assert summary["static_energy_j"] == pytest.approx(109.5e-6)
    assert summary["energy_j"] == pytest.approx(113.5e-6)
    assert summary["energy_per_token_j"] == pytest.approx(56.75e-6)
    rows = {name: i for i, name in enumerate(tables["device_energy"].columns["device"])}
    col = tables["device_energy"].columns
    assert set(rows) == {"gpu", "npu", "hbm"}                 # the idle NPU and the memory have rows
    assert col["kind"][rows["hbm"]] == "memory" and col["busy_ns"][rows["npu"]] == 0.0
    assert col["static_j"][rows["gpu"]] == pytest.approx(100e-6)
    assert col["total_j"][rows["gpu"]] == pytest.approx(104e-6)
    assert col["total_j"][rows["npu"]] == pytest.approx(7.5e-6)
    assert col["static_w"][rows["hbm"]] == 2.0
    # the kernels' and steps' energies stay their own (dynamic)
    assert tables["steps"].columns["energy_j"][0] == pytest.approx(4e-6)


def test_replay_charges_static_power_over_the_run(tmp_path):
    system = _system(tmp_path)
    trace = tmp_path / "t.jsonl"
    r = CliRunner().invoke(cli, ["gen", "--model", "llama3-8b", "--system", str(system), "--batch", "2",
                                 "--prompt-tokens", "64", "--output-tokens", "2", "--layers", "1",
                                 "--allow-overcommit", "-o", str(trace)])
    assert r.exit_code == 0, r.output
    stats = tmp_path / "s.h5"
    r = CliRunner().invoke(cli, ["replay", str(trace), "-o", str(stats), "--no-progress"])
    assert r.exit_code == 0, r.output
    report = json.loads(CliRunner().invoke(cli, ["report", str(stats), "--json"]).output)
    watts = 2 * 50 + 7.5 + 2 * HBM3_STACK_W                  # 109.5 W + 1.994 W
    assert report["static_power_w"] == pytest.approx(watts)
    seconds = report["simulated_seconds"]
    assert report["static_energy_j"] == pytest.approx(watts * seconds)
    kernels = open_stats(stats).table("kernels")
    dynamic = float(np.sum(kernels["energy_j"] * kernels["instances"]))
    assert report["energy_j"] == pytest.approx(dynamic + watts * seconds)
    assert report["energy_j"] == pytest.approx(sum(d["total_j"] for d in report["device_energy"]))
    npu = next(d for d in report["device_energy"] if d["device"] == "npu")
    assert npu["busy_ns"] == 0 and npu["total_j"] == pytest.approx(7.5 * seconds)
    text = CliRunner().invoke(cli, ["report", str(stats)]).output
    assert "static" in text and any(line.split()[:2] == ["hbm", "memory"] for line in text.splitlines())
