"""`pimdram report` through click's CliRunner, on stats files built with the stats writer."""
import json
import math

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pimdram.stats import schema
from pimdram.cli import cli
from pimdram.stats import Table, standard_table, write_stats
from pimdram.stats.report import format_report, summarize

COMMANDS = ["ACT", "PRE", "RD", "WR", "REFab"]
LEVELS = ["channel", "bank_group", "bank"]

# two channels; channel 1 served no writes (its write latencies are NaN)
CMD_COUNTS = {"ACT": [120, 80], "PRE": [118, 79], "RD": [900, 700], "WR": [300, 0], "REFab": [4, 4]}
CHANNELS = {
    "channel": [0, 1],
    "reads": [900, 700], "writes": [300, 0],
    "bytes_read": [900 * 64, 700 * 64], "bytes_written": [300 * 64, 0],
    "row_hits": [1000, 620], "row_misses": [80, 50], "row_conflicts": [120, 30],
    "busy_cycles": [4800, 2800],
    "read_latency_mean": [41.5, 38.0], "read_latency_p50": [36, 33], "read_latency_p90": [60, 55],
    "read_latency_p99": [97, 90], "read_latency_max": [131, 122],
    "write_latency_mean": [29.25, math.nan], "write_latency_p50": [27, math.nan],
    "write_latency_p90": [40, math.nan], "write_latency_p99": [52, math.nan],
    "write_latency_max": [77, math.nan],
    "energy_j": [2.5e-6, 1.5e-6],
    **{f"cmd_{n}": c for n, c in CMD_COUNTS.items()},
}
SUMMARY = {
    "cycles": [9600], "tck_ns": [1.0], "simulated_seconds": [9.6e-6],
    "requests": [1900], "reads": [1600], "writes": [300],
    "bytes_read": [1600 * 64], "bytes_written": [300 * 64],
    "row_hits": [1620], "row_misses": [130], "row_conflicts": [150],
    "read_latency_mean": [39.97], "write_latency_mean": [29.25],
    "bandwidth": [1900 * 64 / 9.6e-6], "peak_bandwidth": [64e9],
    "energy_j": [4.0e-6], "wall_seconds": [0.125], "requests_per_second": [15200.0],
}
ENERGY = {"channel": [0, 1], "activate_j": [1e-6, 0.5e-6], "read_j": [0.8e-6, 0.6e-6],
          "write_j": [0.3e-6, 0.0], "refresh_j": [0.1e-6, 0.1e-6], "background_j": [0.3e-6, 0.3e-6],
          "total_j": [2.5e-6, 1.5e-6]}


def attrs():
    return {"config": "memory: {standard: HBM2, channels: 2}\n", "trace-sha256": "ab" * 32,
            "trace-path": "traces/mixed.trace", "seed": 7, "command-names": COMMANDS,
            "levels": LEVELS}


def make_stats(path, extra_tables=None, with_optional=True):
    tables = {
        "summary": standard_table("summary", SUMMARY),
        "channels": standard_table("channels", CHANNELS, command_names=COMMANDS),
    }
    if with_optional:
        tables["energy"] = standard_table("energy", ENERGY)
        tables["bandwidth"] = standard_table(
            "bandwidth", {"step": [0, 4800], "bytes_read": [60000, 42400],
                          "bytes_written": [19200, 0]}, attrs={"window": 4800})
        tables["latency_histogram"] = standard_table(
            "latency_histogram", {"channel": [0, 0, 1], "kind": [0, 1, 0], "bin_start": [32, 16, 32],
                                  "bin_end": [48, 32, 48], "count": [900, 300, 700]})
        tables["command_log"] = standard_table(
            "command_log", {"cycle": [0, 14, 15], "command": [0, 2, 4], "channel": [0, 0, 1],
                            "bank_group": [1, 1, -1], "bank": [3, 3, -1], "row": [17, -1, -1],
                            "column": [-1, 8, -1]}, command_names=COMMANDS, levels=LEVELS)
    tables.update(extra_tables or {})
    write_stats(path, attrs(), tables)
    return path


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_json_has_the_figures(tmp_path):
    path = make_stats(tmp_path / "run.h5")
    result = run("report", path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["cycles"] == 9600
    assert data["requests"] == 1900
    assert data["reads"] == 1600 and data["writes"] == 300
    assert data["commands"] == {n: sum(c) for n, c in CMD_COUNTS.items()}
    assert list(data["commands"]) == COMMANDS
    assert (data["row_hits"], data["row_misses"], data["row_conflicts"]) == (1620, 130, 150)
    assert data["row_hit_rate"] == pytest.approx(1620 / 1900)
    assert data["bytes_read"] == 1600 * 64 and data["bytes_written"] == 300 * 64
    assert data["energy_j"] == pytest.approx(4.0e-6)
    assert data["wall_seconds"] == 0.125
    assert data["bandwidth"] == pytest.approx(1900 * 64 / 9.6e-6)
    assert data["bandwidth_utilization"] == pytest.approx(1900 * 64 / 9.6e-6 / 64e9)
    assert data["read_latency_mean"] == pytest.approx(39.97)
    assert data["read_latency_max"] == 131 and data["write_latency_max"] == 77
    assert data["seed"] == 7 and data["trace_path"] == "traces/mixed.trace"
    assert data["format_version"] == ".".join(map(str, schema.FORMAT_VERSION))
    ch1 = data["channels"][1]
    assert ch1["channel"] == 1 and ch1["commands"]["WR"] == 0
    assert ch1["write_latency_p99"] is None             # NaN in the file, null in JSON
    assert ch1["busy_fraction"] == pytest.approx(2800 / 9600)
    assert data["energy_breakdown"]["activate_j"] == pytest.approx(1.5e-6)
    assert data["bandwidth_series"]["window_cycles"] == 4800
    assert data["bandwidth_series"]["max_bandwidth"] == pytest.approx(79200 / 4.8e-6)
    assert data["command_log_rows"] == 3
    assert "kernels" not in data


def test_text_report_shows_the_key_figures(tmp_path):
    path = make_stats(tmp_path / "run.h5")
    result = run("report", path)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "9,600 cycles" in out
    # requests are trace lines; reads and writes are accesses (this file's config names no access size)
    assert "1,900 (trace lines) = 1,900 accesses: 1,600 reads, 300 writes" in out
    assert "hit rate 85.3%" in out                          # 1620 / 1900
    assert "achieved 12.7 GB/s of peak 64 GB/s (19.8%)" in out
    for name, counts in CMD_COUNTS.items():
        assert any(line.split() == [name, f"{sum(counts):,}"] for line in out.splitlines()), name
    assert "total 4 µJ" in out
    assert "traces/mixed.trace" in out
    assert "125 ms (15,200 requests/s)" in out
    # per-channel latency percentiles: channel 0 reads p50 36, p90 60, p99 97, max 131
    assert any(line.split() == ["0", "read", "41.5", "36", "60", "97", "131"]
               for line in out.splitlines())
    assert any(line.split() == ["1", "write", "-", "-", "-", "-", "-"] for line in out.splitlines())
    assert "Command log: 3 commands" in out


def test_report_without_optional_tables(tmp_path):
    path = make_stats(tmp_path / "bare.h5", with_optional=False)
    data = summarize(path)
    for key in ("energy_breakdown", "bandwidth_series", "command_log_rows", "kernels"):
        assert key not in data
    text = format_report(data)
    assert "Command log" not in text and "busiest window" not in text
    assert "hit rate 85.3%" in text


def test_kernels_are_listed_when_present(tmp_path):
    kernels = Table({"name": ["qkv_proj", "attention_score"], "layer": [0, 0],
                     "device": ["pim", "xpu"], "start_cycle": [0, 5000], "end_cycle": [5000, 9600]},
                    {"name": "1", "layer": "1", "device": "1", "start_cycle": "cycle",
                     "end_cycle": "cycle"})
    path = make_stats(tmp_path / "k.h5", extra_tables={"kernels": kernels})
    result = run("report", path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kernels"] == [
        {"name": "qkv_proj", "layer": 0, "device": "pim", "start_cycle": 0, "end_cycle": 5000},
        {"name": "attention_score", "layer": 0, "device": "xpu", "start_cycle": 5000,
         "end_cycle": 9600}]
    text = run("report", path).output
    assert any(line.split() == ["attention_score", "0", "xpu", "5,000", "9,600", "4,600"]
               for line in text.splitlines())


def _one_line_error(result, *fragments):
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_file_is_a_one_line_error(tmp_path):
    _one_line_error(run("report", tmp_path / "absent.h5"), "absent.h5", "no such file")


def test_non_hdf5_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("0x1000 READ 5\n")
    _one_line_error(run("report", path, "--json"), "not an HDF5 file")


def test_foreign_hdf5_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "HDF5::Cooler"
    _one_line_error(run("report", path), "not a pimdram.stats file")


def test_newer_major_version_is_a_one_line_error(tmp_path):
    path = make_stats(tmp_path / "v9.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["format-version"] = np.array([9, 0])
    _one_line_error(run("report", path), "9.0", "upgrade")


def test_file_without_summary_is_a_one_line_error(tmp_path):
    path = tmp_path / "nosummary.h5"
    write_stats(path, attrs(), {"channels": standard_table("channels", CHANNELS,
                                                           command_names=COMMANDS)})
    _one_line_error(run("report", path), "no table 'summary'")


def test_help_names_the_json_option():
    result = run("report", "--help")
    assert result.exit_code == 0
    assert "--json" in result.output


RUN_1_1 = {"tokens": [4], "tokens_per_s": [2000.0], "kernels": [10], "kernels_simulated": [2],
           "kernels_reused": [3], "kernels_modelled": [5], "symmetry": [True]}
RUN_UNITS = {"tokens": "count", "tokens_per_s": "1/s", "kernels": "count", "kernels_simulated": "count",
             "kernels_reused": "count", "kernels_modelled": "count", "symmetry": "1"}


def test_kernel_replay_figures_of_format_1_1_and_1_2(tmp_path):
    # a 1.1 file: run without the 1.2 columns, no device_energy: the new figures read as absent
    old = make_stats(tmp_path / "old.h5", extra_tables={"run": Table(RUN_1_1, RUN_UNITS)})
    data = json.loads(run("report", old, "--json").output)
    assert data["tokens_per_s"] == 2000.0 and data["kernel_count"] == 10
    assert data["decode_tokens_per_s"] is None and data["energy_per_token_j"] is None
    assert "device_energy" not in data and data["warnings"] == []
    # 1.2: decode throughput, prefill time, energy per token and the breakdown by device and kind
    new = dict(RUN_1_1, decode_tokens=[2], decode_seconds=[0.001], decode_tokens_per_s=[2000.0],
               prefill_seconds=[0.0005], energy_j=[0.3], energy_per_token_j=[0.075], overcommitted=[True])
    units = dict(RUN_UNITS, decode_tokens="count", decode_seconds="s", decode_tokens_per_s="1/s",
                 prefill_seconds="s", energy_j="J", energy_per_token_j="J", overcommitted="1")
    energy_cols = {
        "device": np.array(["gpu", "nvlink"]), "kind": np.array(["gpu", "link"]),
        "memory_j": np.array([0.2, 0.0]), "compute_j": np.array([0.05, 0.0]), "onchip_j": np.array([0.04, 0.0]),
        "communication_j": np.array([0.0, 0.01]), "total_j": np.array([0.29, 0.01])}
    energy = Table(energy_cols, {c: ("1" if c in ("device", "kind") else "J") for c in energy_cols})
    path = make_stats(tmp_path / "new.h5", extra_tables={"run": Table(new, units), "device_energy": energy})
    with h5py.File(path, "r+") as f:
        f.attrs["warnings"] = json.dumps(["the workload does not fit memory 'gpu_hbm'"])
    data = json.loads(run("report", path, "--json").output)
    assert (data["decode_tokens_per_s"], data["prefill_seconds"], data["energy_per_token_j"]) == (2000.0, 0.0005, 0.075)
    assert data["energy_by_kind"] == pytest.approx({"memory": 0.2, "compute": 0.05, "onchip": 0.04,
                                                    "communication": 0.01})
    assert data["device_energy"][1] == {"device": "nvlink", "kind": "link", "memory_j": 0.0, "compute_j": 0.0,
                                        "onchip_j": 0.0, "communication_j": 0.01, "total_j": 0.01}
    assert data["overcommitted"] is True and data["warnings"] == ["the workload does not fit memory 'gpu_hbm'"]
    text = run("report", path).output
    assert "decode      2 tokens in 1 ms: 2,000.0 tokens/s" in text
    assert "warning     the workload does not fit memory 'gpu_hbm'" in text
    assert any(line.split()[:2] == ["nvlink", "link"] for line in text.splitlines())
    assert "Devices" not in text                   # 1.2: no busy times
    # 1.3: each device's busy time and the overlap, as shares of the run's 9.6 us
    busy_cols = dict(energy_cols, busy_ns=np.array([7200.0, 960.0]))
    busy = Table(busy_cols, {c: {"device": "1", "kind": "1", "busy_ns": "ns"}.get(c, "J") for c in busy_cols})
    path = make_stats(tmp_path / "v13.h5", extra_tables={"run": Table(dict(new, overlap_ns=[2400.0]),
                                                                      dict(units, overlap_ns="ns")),
                                                         "device_energy": busy})
    data = json.loads(run("report", path, "--json").output)
    assert data["overlap_ns"] == 2400.0 and data["device_energy"][0]["busy_ns"] == 7200.0
    lines = run("report", path).output.splitlines()
    assert ["gpu", "gpu", "7.2", "µs", "75.0%"] in [line.split() for line in lines]
    assert ["nvlink", "link", "960", "ns", "10.0%"] in [line.split() for line in lines]
    assert any(line.split()[:4] == ["overlap", "2.4", "µs", "(25.0%"] for line in lines)
    # 1.5: static power per device (and memory) over the run, in the totals
    static = standard_table("device_energy", dict(
        busy_cols, device=np.array(["gpu", "nvlink", "hbm"]), kind=np.array(["gpu", "link", "memory"]),
        **{c: np.append(v, 0.0) for c, v in busy_cols.items() if c not in ("device", "kind", "total_j")},
        static_w=np.array([100.0, 0.0, 5.0]), static_j=np.array([9.6e-4, 0.0, 4.8e-5]),
        total_j=np.array([0.29096, 0.01, 4.8e-5])))
    path = make_stats(tmp_path / "v15.h5", extra_tables={
        "run": Table(dict(new, overlap_ns=[2400.0], interference_ns=[0.0], static_power_w=[105.0],
                          static_energy_j=[1.008e-3]),
                     dict(units, overlap_ns="ns", interference_ns="ns", static_power_w="W", static_energy_j="J")),
        "device_energy": static})
    data = json.loads(run("report", path, "--json").output)
    assert (data["static_power_w"], data["static_energy_j"]) == (105.0, 1.008e-3)
    assert data["device_energy"][2]["static_j"] == 4.8e-5
    lines = run("report", path).output.splitlines()
    assert ["gpu", "gpu", "7.2", "µs", "75.0%", "100", "W"] in [line.split() for line in lines]
    assert not any(line.split()[:2] == ["hbm", "memory"] and "%" in line for line in lines)  # not a device
    assert any(line.split()[:2] == ["hbm", "memory"] and line.split()[-4:] == ["48", "µJ", "48", "µJ"]
               for line in lines)
    assert any("static 1.01 mJ (105 W over the run)" in line for line in lines)


def test_request_replay_report_labels_accesses_and_their_size(tmp_path):
    # 1,900 trace lines of 64 B on a memory of 32 B accesses: 3,800 accesses
    summary = dict(SUMMARY, reads=[3200], writes=[600])
    config = "organization: {access_bytes: 32, request_bytes: 64}\n"
    path = tmp_path / "r.h5"
    write_stats(path, dict(attrs(), config=config),
                {"summary": standard_table("summary", summary),
                 "channels": standard_table("channels", CHANNELS, command_names=COMMANDS)})
    data = summarize(path)
    assert (data["accesses"], data["access_bytes"]) == (3800, 32)
    text = format_report(data)
    assert "1,900 (trace lines) = 3,800 accesses of 32 B: 3,200 reads, 600 writes" in text
    assert "102,400 B read (102 kB), 19,200 B written (19.2 kB)" in text     # 1600·64, 300·64
    header = next(line for line in text.splitlines() if line.split()[:1] == ["channel"]
                  and "accesses" in line)
    assert "read accesses" in header and "bytes read" in header and "bytes written" in header


KERNELS_1_2 = {
    # three kernels on two devices; times in ns, energies in J, worked by hand below
    "id": [0, 1, 2, 3], "name": ["qkv_projection", "attention_score", "ffn_up", "all_reduce"],
    "layer": [0, 0, 0, 0], "step": [0, 0, 0, 0], "device": ["gpu", "pim", "gpu", "nvlink"],
    "start_cycle": [0, 1000, 3000, 5000], "end_cycle": [1000, 3000, 5000, 9600],
    "start_ns": [0.0, 1000.0, 3000.0, 5000.0], "end_ns": [1000.0, 3000.0, 5000.0, 9600.0],
    "flops": [10, 20, 30, 0], "bytes": [1, 2, 3, 4], "commands": [0, 50, 0, 0],
    "energy_j": [0.25, 0.5, 0.25, 1.0], "energy_memory_j": [0.0] * 4, "energy_compute_j": [0.0] * 4,
    "energy_onchip_j": [0.0] * 4, "energy_communication_j": [0.0] * 4,
    "source": ["model", "simulated", "model", "model"], "channels_simulated": [0, 1, 0, 0],
    "channels_total": [0, 16, 0, 0], "instances": [1, 1, 1, 1], "busy_ns": [1000.0, 2000.0, 2000.0, 4600.0],
}


def _kernel_replay(tmp_path):
    since_1_4 = {"interference_ns": [0.0] * 4, "interference_cycles": [0] * 4, "interference_conflicts": [0] * 4,
                 "blocked_cycles": [0] * 4}
    kernels = standard_table("kernels", {k: np.asarray(v) for k, v in {**KERNELS_1_2, **since_1_4}.items()})
    return make_stats(tmp_path / "k.h5", extra_tables={"kernels": kernels, "run": Table(RUN_1_1, RUN_UNITS)})


def test_kernel_replay_report_sums_kernels_by_kind_and_device(tmp_path):
    path = _kernel_replay(tmp_path)
    data = summarize(path)
    # fc on gpu: qkv_projection 1000 ns + ffn_up 2000 ns, 0.25 + 0.25 J; the run is 9.6 us
    assert data["kernels_by_kind"] == [
        {"kind": "attention", "device": "pim", "kernels": 1, "busy_seconds": pytest.approx(2e-6), "energy_j": 0.5},
        {"kind": "fc", "device": "gpu", "kernels": 2, "busy_seconds": pytest.approx(3e-6), "energy_j": 0.5},
        {"kind": "communication", "device": "nvlink", "kernels": 1, "busy_seconds": pytest.approx(4.6e-6),
         "energy_j": 1.0}]
    text = run("report", path).output
    # attention on pim: 2 us of the 9.6 us run (20.8%), 0.5 J of the kernels' 2 J (25%)
    assert any(line.split() == ["attention", "pim", "1", "2", "µs", "20.8%", "500", "mJ", "25.0%"]
               for line in text.splitlines()), text
    assert "4 kernels: `pimdram report --kernels` lists each" in text
    assert not any(line.split()[:3] == ["ffn_up", "0", "gpu"] for line in text.splitlines())
    full = run("report", path, "--kernels").output
    assert any(line.split() == ["ffn_up", "0", "gpu", "3,000", "5,000", "2,000"] for line in full.splitlines())


def test_report_csv_prints_a_table(tmp_path):
    path = _kernel_replay(tmp_path)
    r = run("report", path, "--csv", "kernels")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split(",")[:4] == ["id", "name", "layer", "step"]
    assert lines[3].split(",")[:8] == ["2", "ffn_up", "0", "0", "gpu", "1", "3000", "5000"]
    assert len(lines) == 5
    assert run("report", path, "--csv", "summary").output.splitlines()[1].split(",")[0] == "9600"
    _one_line_error(run("report", path, "--csv", "nope"), "no table 'nope'", "kernels")
    assert run("report", path, "--csv", "run", "--json").exit_code == 2


def test_kernel_replay_report_shows_interference_of_format_1_4(tmp_path):
    # hand-worked: the gpu's two kernels lost 150 + 250 = 400 ns, conflicts 12 + 30 = 42 and were
    # held 300 + 700 = 1,000 cycles; the pim kernel lost 50 ns with 12 conflicts; the link none.
    # The run's interference_ns is their sum, 450 ns (tck 1 ns, so the cycles equal the ns)
    since_1_4 = {"interference_ns": [150.0, 50.0, 250.0, 0.0], "interference_cycles": [150, 50, 250, 0],
                 "interference_conflicts": [12, 12, 30, 0], "blocked_cycles": [300, 0, 700, 0]}
    kernels = standard_table("kernels", {k: np.asarray(v) for k, v in {**KERNELS_1_2, **since_1_4}.items()})
    run_1_4 = Table(dict(RUN_1_1, interference_ns=[450.0]), dict(RUN_UNITS, interference_ns="ns"))
    path = make_stats(tmp_path / "i.h5", extra_tables={"kernels": kernels, "run": run_1_4})
    data = json.loads(run("report", path, "--json").output)
    assert data["interference_ns"] == 450.0
    assert data["interference_s"] == pytest.approx(4.5e-7)
    assert [{f: k[f] for f in ("name", "interference_ns", "interference_cycles", "interference_conflicts",
                               "blocked_cycles")} for k in data["kernels"]] == [
        {"name": "qkv_projection", "interference_ns": 150.0, "interference_cycles": 150,
         "interference_conflicts": 12, "blocked_cycles": 300},
        {"name": "attention_score", "interference_ns": 50.0, "interference_cycles": 50,
         "interference_conflicts": 12, "blocked_cycles": 0},
        {"name": "ffn_up", "interference_ns": 250.0, "interference_cycles": 250,
         "interference_conflicts": 30, "blocked_cycles": 700},
        {"name": "all_reduce", "interference_ns": 0.0, "interference_cycles": 0,
         "interference_conflicts": 0, "blocked_cycles": 0}]
    assert data["interference_by_device"] == [
        {"device": "gpu", "kernels": 2, "interference_ns": 400.0, "interference_conflicts": 42, "blocked_cycles": 1000},
        {"device": "pim", "kernels": 1, "interference_ns": 50.0, "interference_conflicts": 12, "blocked_cycles": 0}]
    lines = [line.split() for line in run("report", path).output.splitlines()]
    start = next(i for i, line in enumerate(lines) if line[:1] == ["Interference"])
    assert lines[start + 1] == ["device", "kernels", "lost", "conflicts", "blocked", "cycles"]
    assert lines[start + 2:start + 5] == [["gpu", "2", "400", "ns", "42", "1,000"],
                                          ["pim", "1", "50", "ns", "12", "0"],
                                          ["total", "450", "ns", "lost", "to", "interference"]]
    # no interference (the same kernels at zero): no section, no devices listed
    path = _kernel_replay(tmp_path)
    data = json.loads(run("report", path, "--json").output)
    assert data["interference_by_device"] == [] and "interference_s" not in data    # run of 1.1: no column
    assert "Interference" not in run("report", path).output


def test_kernel_replay_report_of_format_1_3_has_no_interference_figures(tmp_path):
    old = {k: np.asarray(v) for k, v in KERNELS_1_2.items()}
    units = {c: u for c, _, u in schema.standard_columns(schema.KERNELS) if c in old}
    path = make_stats(tmp_path / "v13.h5", extra_tables={"kernels": Table(old, units),
                                                         "run": Table(RUN_1_1, RUN_UNITS)})
    data = json.loads(run("report", path, "--json").output)
    assert "interference_by_device" not in data and "interference_s" not in data
    assert "interference_ns" not in data["kernels"][0]
    assert "Interference" not in run("report", path).output
