"""pimdram replay through click's CliRunner: the CLI contract, its errors, and the files it leaves."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.stats import open_stats

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example_hbm2.dramsim3"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_replay_report_check_round_trip(tmp_path):
    out = tmp_path / "out.h5"
    res = invoke("replay", EXAMPLE, "--memory", "hbm2_2gbps", "--command-log", "--no-progress", "-o", out)
    assert res.exit_code == 0, res.output
    report = invoke("report", out, "--json")
    assert report.exit_code == 0, report.output
    summary = json.loads(report.output)
    for key in ("cycles", "requests", "commands", "row_hits", "row_misses", "row_conflicts",
                "bytes_read", "bytes_written", "energy_j", "wall_seconds"):
        assert key in summary
    assert summary["requests"] == 20000
    assert summary["commands"]["RD"] + summary["commands"].get("RDA", 0) == summary["reads"]
    assert summary["energy_j"] > 0
    check = invoke("check", out)
    assert check.exit_code == 0, check.output
    assert " 0 violations" in check.output
    with open_stats(out) as s:
        assert s.attrs["trace-format"] == "dramsim3"
        assert s.nrows("command_log") == sum(summary["commands"].values())
        assert set(s.levels) == {"channel", "pseudo_channel", "bank_group", "bank"}


def test_ramulator_trace_and_set_overrides(tmp_path):
    out = tmp_path / "closed.h5"
    res = invoke("replay", ROOT / "traces" / "example.ramulator", "-m", "ddr4_3200",
                 "--set", "controller.row_policy=closed", "--set", "timing.nCL=24", "-o", out)
    assert res.exit_code == 0, res.output
    with open_stats(out) as s:
        channels = s.table("channels")
        # closed page: rows close with the last pending hit (auto-precharge) or, when the scheduler
        # turns to the other queue first, by a precharge: no row stays open
        auto = channels["cmd_RDA"].sum() + channels["cmd_WRA"].sum()
        closes = auto + channels["cmd_PRE"].sum()
        assert auto > 0 and channels["cmd_ACT"].sum() - closes <= 16
        assert "nCL: 24" in s.attrs["config"]


def test_same_trace_same_numbers(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for out in (a, b):
        assert invoke("replay", EXAMPLE, "-m", "gddr6_14gbps", "-o", out).exit_code == 0
    with open_stats(a) as sa, open_stats(b) as sb:
        for table in ("channels", "latency_histogram", "bandwidth", "energy"):
            ta, tb = sa.table(table), sb.table(table)
            assert ta.keys() == tb.keys()
            for k in ta:
                assert (ta[k] == tb[k]).all() or (ta[k] != ta[k]).all(), (table, k)


def test_malformed_line_names_file_and_line_and_writes_nothing(tmp_path):
    trace = tmp_path / "bad.dramsim3"
    trace.write_text("0x40 READ 0\n0x80 READ 1\n0xc0 FETCH 2\n")
    out = tmp_path / "out.h5"
    res = invoke("replay", trace, "-m", "ddr4_3200", "-o", out)
    assert res.exit_code != 0
    assert f"{trace}:3" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not out.exists() and list(tmp_path.iterdir()) == [trace]


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "out.h5"
    out.write_text("keep me")
    res = invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "-o", out)
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert out.read_text() == "keep me"
    assert invoke("replay", EXAMPLE, "-m", "hbm2_2gbps", "-o", out, "--overwrite").exit_code == 0
    with open_stats(out) as s:
        assert s.summary()["requests"] == 20000


@pytest.mark.parametrize("args, message", [
    (["-m", "no_such_memory"], "unknown dram preset 'no_such_memory'"),
    (["-m", "ddr4_3200", "--set", "controller.bogus=1"], "controller.bogus: unknown key"),
    (["-m", "ddr4_3200", "--set", "nonsense"], "expected KEY=VALUE"),
    (["-m", "ddr4_3200", "--format", "binary"], "binary"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    out = tmp_path / "out.h5"
    res = invoke("replay", EXAMPLE, *args, "-o", out)
    assert res.exit_code != 0
    assert message in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()
