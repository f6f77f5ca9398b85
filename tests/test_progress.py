"""Progress callbacks and bars: gen, check and kernel replays report their work, and the CLI draws a
bar only when asked (--progress) or on a terminal."""
from pathlib import Path

from click.testing import CliRunner

from pimdram.check import check_stats_file
from pimdram.cli import cli
from pimdram.llm import Workload
from pimdram.mapping import generate_kernel_trace
from pimdram.replay import replay_requests

TRACES = Path(__file__).resolve().parents[1] / "traces"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_gen_reports_each_run_of_steps_then_placement_and_records():
    calls = []
    # output 3: the prefill, one run of two decode steps (one template), placement, records: 4 units
    generate_kernel_trace("gpt2", "dgx-a100", Workload.uniform(1, 8, 3, phase="generate"),
                          progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_check_reports_every_timing_row_and_rule(tmp_path):
    stats = tmp_path / "r.h5"
    replay_requests(TRACES / "example_hbm2.dramsim3", "hbm2_2gbps", stats, command_log=True)
    calls = []
    result = check_stats_file(stats, progress=lambda done, total: calls.append((done, total)))
    assert result.ok
    from pimdram.config.memory import load_memory
    # one unit per timing row, and preparing, addresses and order, bank state, command bus, refresh
    total = len(load_memory("hbm2_2gbps").constraints) + 5
    assert calls == [(i, total) for i in range(1, total + 1)]


def test_cli_bars_follow_the_progress_flag(tmp_path):
    trace = tmp_path / "t.jsonl"
    gen = ("gen", "--model", "gpt2", "--system", "dgx-attacc", "--batch", 1, "--prompt-tokens", 8,
           "--output-tokens", 2, "--layers", 1, "-o", trace)
    r = run(*gen, "--progress")
    assert r.exit_code == 0 and "generating" in r.output
    r = run(*gen, "--no-progress", "--overwrite")
    assert r.exit_code == 0 and "generating" not in r.output
    r = run("replay", trace, "-o", tmp_path / "k.h5", "--progress")
    assert r.exit_code == 0 and "replaying kernels" in r.output
    r = run("replay", TRACES / "example_hbm2.dramsim3", "-m", "hbm2_2gbps", "--command-log",
            "-o", tmp_path / "r.h5", "--no-progress")
    assert r.exit_code == 0
    r = run("check", tmp_path / "r.h5", "--progress")
    assert r.exit_code == 0 and "checking" in r.output
    r = run("check", tmp_path / "r.h5", "--no-progress")
    assert r.exit_code == 0 and "checking" not in r.output


def test_sweep_bar_follows_the_progress_flag(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("model: gpt2\nsystem: dgx-a100\nbatch: [1, 2]\nprompt_tokens: 8\noutput_tokens: 2\n"
                     "layers: 1\n")
    r = run("sweep", sweep, "-o", tmp_path / "a.csv", "-j", 1, "--no-cache", "--progress")
    assert r.exit_code == 0 and "2 points" in r.output.splitlines()      # the bar's label
    r = run("sweep", sweep, "-o", tmp_path / "b.csv", "-j", 1, "--no-cache", "--no-progress")
    assert r.exit_code == 0 and "2 points" not in r.output.splitlines()
