"""Every plot kind renders to a file, and what it draws — axes, units, series, values worked out by
hand — is checked through the figure object."""
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")          # in the test extra; skipped only outside it

from pimdram.cli import cli  # noqa: E402
from pimdram.llm import Workload  # noqa: E402
from pimdram.mapping import generate_kernel_trace  # noqa: E402
from pimdram.plot import breakdown, latency, make_figure, roofline, throughput, timeline  # noqa: E402
from pimdram.plot.style import SYSTEM_COLORS, system_colors  # noqa: E402
from pimdram.plot.timeline import lanes  # noqa: E402
from pimdram.stats import open_stats, standard_table, write_stats  # noqa: E402
from pimdram.sweep.results import METRICS, build_frame, write_results  # noqa: E402
from pimdram.system import replay_kernels  # noqa: E402

SUMMARY = {"cycles": [9600], "tck_ns": [1.0], "simulated_seconds": [9.6e-6], "requests": [1], "reads": [0],
           "writes": [0], "bytes_read": [10], "bytes_written": [0], "row_hits": [0], "row_misses": [0],
           "row_conflicts": [0], "read_latency_mean": [np.nan], "write_latency_mean": [np.nan],
           "bandwidth": [1.0], "peak_bandwidth": [np.nan], "energy_j": [2.0], "wall_seconds": [0.1],
           "requests_per_second": [10.0]}


def _attrs(config):
    return {"config": config, "trace-sha256": "ab" * 32, "trace-path": "t.jsonl", "seed": 0,
            "command-names": ["ACT"], "levels": ["channel", "bank"]}


def _channels():
    cols = {c: [0] for c in ("channel", "cmd_ACT", "reads", "writes", "bytes_read", "bytes_written", "row_hits",
                             "row_misses", "row_conflicts", "busy_cycles")}
    cols.update({f"{k}_latency_{s}": [np.nan] for k in ("read", "write") for s in ("mean", "p50", "p90", "p99", "max")})
    cols["energy_j"] = [0.0]
    return standard_table("channels", cols, command_names=["ACT"])


def _kernel_stats(path, system, scale=1.0):
    """A kernel replay's stats file by hand: four kernels (times in ns, energies in J); `scale`
    multiplies the attention kernel's time and energy."""
    kernels = {
        "id": [0, 1, 2, 3], "name": ["qkv_projection", "attention_score", "ffn_up", "all_reduce"],
        "layer": [0, 0, 0, 0], "step": [0, 0, 0, 0], "device": ["gpu", "pim", "gpu", "nvlink"],
        "start_cycle": [0, 1000, 3000, 5000], "end_cycle": [1000, 3000, 5000, 9600],
        "start_ns": [0.0, 1000.0, 3000.0, 5000.0], "end_ns": [1000.0, 1000.0 + 2000.0 * scale, 5000.0, 9600.0],
        "flops": [10, 20, 30, 0], "bytes": [1, 2, 3, 4], "commands": [0, 50, 0, 0],
        "energy_j": [0.25, 0.5 * scale, 0.25, 1.0], "energy_memory_j": [0.0] * 4, "energy_compute_j": [0.0] * 4,
        "energy_onchip_j": [0.0] * 4, "energy_communication_j": [0.0] * 4,
        "source": ["model", "simulated", "model", "model"], "channels_simulated": [0, 1, 0, 0],
        "channels_total": [0, 16, 0, 0], "instances": [1, 1, 1, 1],
        "busy_ns": [1000.0, 2000.0 * scale, 2000.0, 4600.0],
        "interference_ns": [0.0] * 4, "interference_cycles": [0] * 4, "interference_conflicts": [0] * 4,
        "blocked_cycles": [0] * 4}
    write_stats(path, _attrs(f"system: {{name: {system}}}\n"),
                {"summary": standard_table("summary", SUMMARY), "channels": _channels(),
                 "kernels": standard_table("kernels", {k: np.asarray(v) for k, v in kernels.items()})})
    return path


def _results(failed=True):
    """A sweep table by hand: dgx-a100 and dgx-attacc at batch 1, 4, 16."""
    tokens = {("dgx-a100", 1): 100.0, ("dgx-a100", 4): 380.0, ("dgx-a100", 16): 1400.0,
              ("dgx-attacc", 1): 120.0, ("dgx-attacc", 4): 450.0, ("dgx-attacc", 16): 1700.0}
    rows = []
    for (system, batch), value in tokens.items():
        metrics = {m.name: 1.0 for m in METRICS if m.dtype == "float64"}
        metrics.update(tokens_per_s=value, energy_per_token_j=1.0 / value)
        rows.append({"point": "x", "inputs": {"model": "llama3-8b", "system": system, "batch": batch, "context": 1024},
                     "status": "ok", "error": "", "metrics": metrics})
    if failed:
        rows.append({"point": "", "inputs": {"model": "llama3-8b", "system": "dgx-a100", "batch": 64,
                                             "context": 1024}, "status": "failed", "error": "no fit", "metrics": None})
    return build_frame(rows, ["model", "system", "batch", "context"], ["tokens_per_s", "energy_per_token_j"],
                       {"sweep": {"file": "/study/llama.yaml"}})


def _saves(fig, path):
    fig.savefig(path)
    head = Path(path).read_bytes()[:8]
    assert head.startswith(b"\x89PNG") if str(path).endswith(".png") else head.startswith(b"%PDF") \
        if str(path).endswith(".pdf") else b"<?xml" in head or b"<svg" in Path(path).read_bytes()[:200]


# --- throughput -------------------------------------------------------------------------------

def test_throughput_draws_a_line_per_system(tmp_path):
    fig = make_figure("throughput", [_write(tmp_path, _results())])
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["dgx-a100", "dgx-attacc"]
    assert list(lines["dgx-a100"].get_xdata()) == [1, 4, 16]
    assert list(lines["dgx-attacc"].get_ydata()) == [120.0, 450.0, 1700.0]
    assert lines["dgx-attacc"].get_color() == SYSTEM_COLORS["dgx-attacc"] == "#1f77b4"
    assert ax.get_xlabel() == "batch size (requests)" and ax.get_ylabel() == "throughput (tokens/s)"
    assert ax.get_xscale() == "log"                 # 1 to 16: a power-of-two axis
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "4", "16"]
    assert ax.get_title() == "Throughput vs batch size — llama.yaml\nmodel=llama3-8b, context=1024"
    assert any(t.get_text() == "1 failed point not shown" for t in ax.texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dgx-a100", "dgx-attacc"]
    _saves(fig, tmp_path / "t.png")


def _write(tmp_path, frame):
    path = tmp_path / "r.csv"
    write_results(frame, path, overwrite=True)
    return path


def test_throughput_of_another_result_and_a_second_varying_input():
    frame = _results(failed=False)
    ax = throughput(frame, y="energy_per_token_j")
    assert ax.get_ylabel() == "energy per token (J)"
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([1 / 100, 1 / 380, 1 / 1400])
    # a second model: a line per (system, model), styles telling the models apart
    other = frame.copy()
    other["model"] = "gpt3-6.7b"
    import pandas as pd
    both = pd.concat([frame, other], ignore_index=True)
    both.attrs = frame.attrs
    ax = throughput(both)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["dgx-a100, model=gpt3-6.7b", "dgx-a100, model=llama3-8b", "dgx-attacc, model=gpt3-6.7b",
                      "dgx-attacc, model=llama3-8b"]
    styles = [line.get_linestyle() for line in ax.get_lines()]
    assert styles[0] == styles[2] != styles[1] == styles[3]


def test_system_colours_stay_put_and_unknown_systems_share_none():
    colours = system_colors(["papi", "mine-b", "mine-a"])
    assert colours["papi"] == "#d62728"
    assert len({colours["mine-a"], colours["mine-b"], colours["papi"]}) == 3
    assert system_colors(["mine-a", "papi", "mine-b"]) == colours


# --- breakdown --------------------------------------------------------------------------------

def test_breakdown_stacks_time_and_energy_by_kind_and_device(tmp_path):
    a = _kernel_stats(tmp_path / "a.h5", "sys-a")
    b = _kernel_stats(tmp_path / "b.h5", "sys-b", scale=2.0)
    fig = make_figure("breakdown", [a, b])
    time_ax, energy_ax = fig.axes
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in time_ax.containers}
    # attention on pim: 2 us, then 4 us (scale 2); fc on gpu: 1 + 2 us; all_reduce: 4.6 us
    assert list(bars) == ["attention · pim", "fc · gpu", "communication · nvlink"]
    assert bars["attention · pim"] == pytest.approx([2.0, 4.0])
    assert bars["fc · gpu"] == pytest.approx([3.0, 3.0])
    assert bars["communication · nvlink"] == pytest.approx([4.6, 4.6])
    assert time_ax.get_ylabel() == "summed kernel time (µs)"
    marks = time_ax.collections[0].get_segments()           # the run's simulated time, 9.6 us
    assert [seg[0][1] for seg in marks] == pytest.approx([9.6, 9.6])
    energy = {c.get_label(): [p.get_height() for p in c.patches] for c in energy_ax.containers}
    assert energy["attention · pim"] == pytest.approx([0.5, 1.0]) and energy_ax.get_ylabel() == "energy (J)"
    assert [t.get_text() for t in time_ax.get_xticklabels()] == ["sys-a", "sys-b"]
    assert "a.h5, b.h5" in time_ax.get_title()
    assert "kernel kind · device" == fig.legends[0].get_title().get_text()
    _saves(fig, tmp_path / "b.svg")
    ax = breakdown(a, quantity="energy")
    assert [c.get_label() for c in ax.containers] == ["attention · pim", "fc · gpu", "communication · nvlink"]



def test_breakdown_energy_puts_the_static_energy_on_top(tmp_path):
    # dgx-a100: 8 A100 at 53 W of static power each, their HBM in it (0 W) and links none: 424 W over
    # the run, on top of the kernels' energy, so the bar's height is the run's energy
    trace = tmp_path / "t.jsonl"
    generate_kernel_trace("gpt2", "dgx-a100", Workload.uniform(2, 32, 2, phase="decode")).write(trace)
    summary = replay_kernels(trace, tmp_path / "t.h5").summary
    ax = breakdown(tmp_path / "t.h5", quantity="energy")
    heights = {c.get_label(): c.patches[0].get_height() for c in ax.containers}
    label = "static power · every device\n(idle or busy, over the run)"
    scale = 1e-3 if ax.get_ylabel() == "energy (mJ)" else 1.0
    assert heights[label] * scale == pytest.approx(424 * summary["simulated_seconds"])
    assert sum(heights.values()) * scale == pytest.approx(summary["energy_j"])

# --- roofline ---------------------------------------------------------------------------------

def _trace(tmp_path, system):
    trace = generate_kernel_trace("gpt2", system, Workload.uniform(4, 64, 2, phase="decode"), layers=1)
    path = tmp_path / f"{system}.jsonl"
    trace.write(path)
    return path, trace


def test_roofline_of_a_trace_puts_kernels_on_the_roof(tmp_path):
    path, trace = _trace(tmp_path, "dgx-a100")
    fig = make_figure("roofline", [path])
    ax = fig.axes[0]
    # dgx-a100: 8 A100s of 312 TFLOP/s and 3,352 GB/s: 2,496 TFLOP/s, 26.816 TB/s, ridge 93.08 FLOP/B
    (roof,) = ax.get_lines()
    assert max(roof.get_ydata()) == pytest.approx(2496.0)
    assert roof.get_label() == "gpu (8 × gpu): 2,496 TFLOP/s, 26.8 TB/s, ridge 93.1 FLOP/B"
    qkv = next(k for k in trace.kernels if k["name"] == "qkv_projection")
    intensity = qkv["flops"] / (qkv["bytes_read"] + qkv["bytes_written"])
    fc = next(c for c in ax.collections if c.get_label() == "fc kernels on gpu")
    points = [tuple(p) for p in fc.get_offsets()]
    assert any(x == pytest.approx(intensity) and y == pytest.approx(26.816 * intensity) for x, y in points)
    assert ax.get_xlabel() == "arithmetic intensity (FLOP/B)" and ax.get_ylabel() == "performance (TFLOP/s)"
    assert "attainable" in ax.get_title() and "gpt2, decode, batch 4, on dgx-a100" in ax.get_title()
    _saves(fig, tmp_path / "r.pdf")


def test_roofline_of_a_replay_shows_achieved_performance(tmp_path):
    path, _ = _trace(tmp_path, "dgx-attacc")
    stats = tmp_path / "s.h5"
    replay_kernels(path, stats)
    ax = roofline(stats)
    with open_stats(stats) as sf:
        t = sf.table("kernels")
    i = list(t["name"]).index("attention_score")
    achieved = t["flops"][i] / ((t["end_ns"][i] - t["start_ns"][i]) * 1e-9) / 1e12
    pim = next(c for c in ax.collections if c.get_label() == "attention kernels on attacc")
    assert any(y == pytest.approx(achieved) for _, y in pim.get_offsets())
    assert "achieved" in ax.get_title()
    assert {line.get_label().split(" ")[0] for line in ax.get_lines()} == {"gpu", "attacc"}


# --- timeline ---------------------------------------------------------------------------------

def test_lanes_place_each_command_on_its_node():
    # channel > pc (2) > bg (2) > bank (2): an all-bank command, a pc-1 buffer command, bank 1 of bg 0 of pc 1
    log = {"cycle": np.array([0, 1, 2]), "pseudo_channel": np.array([-1, 1, 1]), "bank_group": np.array([-1, -1, 0]),
           "bank": np.array([-1, -1, 1])}
    levels, counts = ["channel", "pseudo_channel", "bank_group", "bank"], [4, 2, 2, 2]
    lane, labels = lanes(log, levels, counts, "bank")
    assert list(lane) == [0, 1, 2] and labels == ["channel (all banks)", "pc1", "pc1 bg0 bank1"]
    lane, labels = lanes(log, levels, counts, "pseudo_channel")        # banks go to their pc's lane
    assert list(lane) == [0, 1, 1] and labels == ["channel (all banks)", "pc1"]


def test_timeline_of_a_pim_command_log(tmp_path):
    trace = generate_kernel_trace("gpt2", "attacc-stack-bank", Workload.uniform(1, 512, 1), layers=1,
                                  only="attention")
    trace.write(tmp_path / "a.jsonl")
    stats = tmp_path / "a.h5"
    replay_kernels(tmp_path / "a.jsonl", stats, command_log=True)
    with open_stats(stats) as sf:
        log = sf.table("command_log")
        names = sf.command_names
    fig = make_figure("timeline", [stats])
    ax = fig.axes[0]
    ticks = {c.get_label().split(",")[0]: c for c in ax.collections}
    on0 = log["channel"] == 0
    for name, c in ticks.items():
        assert len(c.get_segments()) == int((on0 & (log["command"] == names.index(name))).sum()), name
    # MACAB acts on every bank of the channel: lane 0; MVSB/MVGB move each bank group's results, so
    # pseudo-channel 0's two stack IDs x four bank groups are lanes 1-8; WRGB writes bank group 0's
    assert {tuple(np.round(s[:, 1], 1)) for s in ticks["MACAB"].get_segments()} == {(-0.4, 0.4)}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["channel (all banks)"] + [
        f"pc0 sid{sid} bg{bg}" for sid in (0, 1) for bg in range(4)]
    assert {tuple(np.round(s[:, 1], 1)) for s in ticks["WRGB"].get_segments()} == {(0.6, 1.4)}
    # HBM3 at 5.2 Gbps: 0.769 ns cycles; the axis unit makes the last command read below 1000
    last_ns = log["cycle"].max() * 0.769
    assert ax.get_xlabel() == ("time (ns)" if last_ns < 1000 else "time (µs)")
    assert ax.get_ylabel() == "node of channel 0 the command acts on"
    _saves(fig, tmp_path / "t.png")
    ax = timeline(stats, window=(0, 300))
    assert ax.get_xlabel() == "time (ns)" and ax.get_xlim() == pytest.approx((0, 300))
    assert all(0 <= x <= 300 for c in ax.collections for x in c.get_segments()[0][:, 0])
    assert "0–300 ns" in ax.get_title()


# --- latency ----------------------------------------------------------------------------------

def test_latency_cdf_from_the_histogram(tmp_path):
    path = tmp_path / "r.h5"
    summary = dict(SUMMARY, tck_ns=[2.0])
    # reads: channel 0 has [10,11) x2, [11,12) x6, [20,40) x2; channel 1 [11,12) x2; one write
    hist = standard_table("latency_histogram", {"channel": [0, 0, 0, 1, 0], "kind": [0, 0, 0, 0, 1],
                                                "bin_start": [10, 11, 20, 11, 30], "bin_end": [11, 12, 40, 12, 31],
                                                "count": [2, 6, 2, 2, 1]})
    write_stats(path, _attrs("name: hbm-test\n"), {"summary": standard_table("summary", summary),
                                                   "channels": _channels(), "latency_histogram": hist})
    fig = make_figure("latency", [path])
    ax = fig.axes[0]
    reads, writes = ax.get_lines()
    # 12 reads: 2 at 10 cycles, 8 at 11, 2 in 20..39; at 2 ns per cycle
    assert list(reads.get_xdata()) == [20, 20, 22, 22, 40, 78]
    assert list(reads.get_ydata()) == pytest.approx([0, 2 / 12, 2 / 12, 10 / 12, 10 / 12, 1])
    assert list(writes.get_xdata()) == [60, 60] and list(writes.get_ydata()) == [0, 1]
    assert reads.get_label() == "r.h5 (hbm-test) reads" and writes.get_linestyle() == "--"
    assert ax.get_xlabel() == "access latency (ns)" and ax.get_ylabel() == "fraction of accesses ≤ latency"
    _saves(fig, tmp_path / "l.png")
    assert len(latency([path, path]).get_lines()) == 4


# --- the command ------------------------------------------------------------------------------

def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_plot_writes_each_format(tmp_path):
    table = _write(tmp_path, _results())
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")):
        out = tmp_path / f"t{suffix}"
        r = run("plot", "throughput", table, "-o", out)
        assert r.exit_code == 0, r.output
        assert out.read_bytes().startswith(magic)
    r = run("plot", "throughput", table, "-o", tmp_path / "t.png")
    assert r.exit_code == 2 and "--overwrite" in r.output
    stats = _kernel_stats(tmp_path / "a.h5", "sys-a")
    assert run("plot", "breakdown", stats, "--quantity", "energy", "-o", tmp_path / "b.png").exit_code == 0


@pytest.mark.parametrize("args,message", [
    (("throughput", "{table}", "--window", "0:10"), "--window applies to timeline plots, not throughput"),
    (("throughput", "{table}", "{table}"), "a throughput plot takes one input"),
    (("throughput", "{table}", "--y", "nope"), "no column 'nope'"),
    (("timeline", "{table}"), "not an HDF5 file"),
    (("latency", "{stats}"), "no latency histogram"),
    (("timeline", "{stats}", "--window", "5:1"), "ends before it starts"),
])
def test_cli_plot_errors_are_one_line(tmp_path, args, message):
    table = _write(tmp_path, _results())
    stats = _kernel_stats(tmp_path / "a.h5", "sys-a")
    r = run("plot", *(a.format(table=table, stats=stats) for a in args), "-o", tmp_path / "x.png")
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "x.png").exists()


def test_cli_plot_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    table = _write(tmp_path, _results())
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = run("plot", "throughput", table, "-o", tmp_path / "x.png")
    assert r.exit_code == 1 and "pip install 'pimdram[plot]'" in r.output
