"""`pimdram serve` end to end: the driver (pimdram.serve.run), its stats file, `pimdram report` on
it, and the command line (through click's CliRunner)."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.llm import Workload
from pimdram.llm.workload import Request
from pimdram.mapping import generate_kernel_trace
from pimdram.serve.metrics import stream_metrics
from pimdram.serve.requests import ServedRequest, write_requests
from pimdram.serve.run import serve_requests
from pimdram.serve.scheduler import SchedulerOptions
from pimdram.stats import open_stats, schema
from pimdram.system import simulate_kernel_trace

JSON_KEYS = ("requests_completed", "output_tokens", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s",
             "tpot_p50_s", "tpot_p99_s", "energy_per_token_j", "kv_peak_bytes", "composition_error_max")


@pytest.fixture
def stream(tmp_path):
    path = tmp_path / "r.csv"
    write_requests(path, [ServedRequest(0, 0.0, 20, 4), ServedRequest(1, 0.0005, 40, 3),
                          ServedRequest(2, 0.001, 10, 1), ServedRequest(3, 0.02, 30, 5)])
    return path


def test_far_apart_requests_take_the_single_request_prefill_and_decode_times(tmp_path):
    # 10 s apart, nothing overlaps: TTFT is a prefill of the prompt alone, TPOT the mean of the
    # (to 1e-9: a first token at 20.001 s less its arrival at 20 s keeps ~12 digits)
    # decode steps at contexts prompt .. prompt + output - 2, each as a kernel replay of gen's own
    # one-request workload (granularity 1: no rounding; every layer replayed)
    reqs = [ServedRequest(0, 0.0, 24, 3), ServedRequest(1, 10.0, 40, 2), ServedRequest(2, 20.0, 7, 4)]
    write_requests(tmp_path / "r.csv", reqs)
    result = serve_requests(tmp_path / "r.csv", tmp_path / "s.h5", model="gpt2", system="neupims", granularity=1)

    def replay(phase, tokens):
        kt = generate_kernel_trace("gpt2", "neupims", Workload((Request(0, tokens, 2),), phase=phase),
                                   allow_overcommit=True)
        return simulate_kernel_trace(kt)["simulated_seconds"]

    with open_stats(result.output) as sf:
        rows = sf.table("requests")
    for i, r in enumerate(reqs):
        assert math.isclose(rows["ttft_s"][i], replay("prefill", r.prompt_tokens), rel_tol=1e-9)
        decode = [replay("decode", c) for c in range(r.prompt_tokens, r.prompt_tokens + r.output_tokens - 1)]
        assert math.isclose(rows["tpot_s"][i], sum(decode) / len(decode), rel_tol=1e-9)


def test_stats_file_round_trip_and_report(stream, tmp_path):
    out = tmp_path / "s.h5"
    result = serve_requests(stream, out, model="gpt2", system="neupims",
                            options=SchedulerOptions(max_batch=2, block_size=8), slo_ttft_s=0.01, slo_tpot_s=0.002,
                            check_every=5)
    with open_stats(out) as sf:
        assert sf.format_version == schema.FORMAT_VERSION and sf.format_version >= (1, 6)
        assert sf.tables == ["serve_summary", "requests", "serve_steps", "serve_checks", "kv_memories"]
        req, steps, checks = sf.table("requests"), sf.table("serve_steps"), sf.table("serve_checks")
        summary = sf.table("serve_summary")
        assert sf.units("serve_steps")["kv_bytes_pim_hbm"] == "B"
        assert sf.config["serve"]["scheduler"]["max_batch"] == 2
        assert sf.config["serve"]["slo"] == {"ttft_s": 0.01, "tpot_s": 0.002}
    # every request finished with its tokens; the batch limit held
    assert req["id"].tolist() == [0, 1, 2, 3] and not np.isnan(req["finish_s"]).any()
    assert steps["output_tokens"].sum() == req["output_tokens"].sum() == 13
    assert steps["batch"].max() <= 2
    assert (steps["kv_blocks"] <= summary["kv_blocks"][0]).all()
    assert np.array_equal(steps["kv_bytes_pim_hbm"], steps["kv_blocks"] * summary["kv_block_bytes"][0])
    # the stored summary is the metrics of the stored tables
    again = stream_metrics(req, steps, 0.01, 0.002, 0.0, summary["kv_block_bytes"][0])
    for key in ("ttft_p50_s", "tpot_p99_s", "throughput_tokens_per_s", "goodput_tokens_per_s", "kv_peak_bytes",
                "step_energy_j", "output_tokens"):
        assert summary[key][0] == again[key] == result.summary[key], key
    assert len(checks["step"]) == summary["composition_checks"][0] >= 2
    assert summary["composition_error_max"][0] == np.abs(checks["error"]).max() < 0.01
    # report: text and JSON
    runner = CliRunner()
    data = json.loads(runner.invoke(cli, ["report", str(out), "--json"]).output)
    assert data["kind"] == "serve" and all(k in data for k in JSON_KEYS)
    assert data["requests_completed"] == 4 and data["output_tokens"] == 13
    assert data["slo_ttft_s"] == 0.01 and data["kv_memories"][0]["memory"] == "pim_hbm"
    text = runner.invoke(cli, ["report", str(out)]).output
    for part in ("Served stream (gpt2 on neupims)", "TTFT", "TPOT", "goodput", "KV cache", "pim_hbm"):
        assert part in text, part
    csv = runner.invoke(cli, ["report", str(out), "--csv", "requests"]).output.splitlines()
    assert csv[0].startswith("id,arrival_s,first_token_s") and len(csv) == 5


def test_cli_end_to_end(stream, tmp_path):
    out = tmp_path / "s.h5"
    runner = CliRunner()
    r = runner.invoke(cli, ["serve", str(stream), "--model", "gpt2", "--system", "dgx-attacc", "--max-batch", "4",
                            "--max-tokens", "32", "--prefill", "chunked", "--block-size", "8", "--kv-blocks", "40",
                            "--layers", "extrapolate", "--slo-ttft", "0.5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "4 requests, 13 output tokens" in r.output
    data = json.loads(runner.invoke(cli, ["report", str(out), "--json"]).output)
    assert all(data[k] is not None for k in JSON_KEYS)
    assert data["kv_blocks"] == 40 and data["scheduler"]["prefill"] == "chunked"
    # an existing output is kept without --overwrite
    r = runner.invoke(cli, ["serve", str(stream), "--model", "gpt2", "--system", "dgx-attacc", "-o", str(out)])
    assert r.exit_code != 0 and "exists; pass --overwrite" in r.output


@pytest.mark.parametrize("args, message", [
    (["--max-batch", "0"], "--max-batch"),
    (["--max-tokens", "-3"], "--max-tokens"),
    (["--block-size", "1.5"], "--block-size"),
    (["--kv-blocks", "nan"], "--kv-blocks"),
    (["--slo-ttft", "0"], "--slo-ttft"),
    (["--slo-tpot", "inf"], "--slo-tpot"),
    (["--check-every", "-1"], "--check-every"),
    (["--prefill", "sometimes"], "--prefill"),
    (["--preemption", "swap"], "has none: add a `host:` section"),
    (["--kv-blocks", "2"], "request 1: 40 + 3 tokens need 3 KV blocks; the cache holds 2"),
    (["--model", "gpt5"], "gpt5"),
    (["--system", "nosuch"], "nosuch"),
])
def test_cli_errors_are_one_line(stream, tmp_path, args, message):
    out = tmp_path / "s.h5"
    base = ["serve", str(stream), "--model", "gpt2", "--system", "neupims", "--block-size", "16", "-o", str(out)]
    r = CliRunner().invoke(cli, base + args)
    assert r.exit_code != 0 and "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], r.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_check_says_a_served_stream_has_no_command_log(stream, tmp_path):
    out = tmp_path / "s.h5"
    serve_requests(stream, out, model="gpt2", system="neupims")
    r = CliRunner().invoke(cli, ["check", str(out)])
    assert r.exit_code != 0 and "is a served stream (pimdram serve): it has no command log" in r.output


def test_the_real_driver_keeps_littles_law_on_the_shipped_example(tmp_path):
    # 32 Alpaca-like requests at 20/s (traces/example_requests.csv) on neupims: from the stats
    # file alone, the mean number in the system (each step's batch + waiting over its time) is
    # the arrival rate x the mean time in the system, within 2%
    example = __import__("pathlib").Path(__file__).resolve().parents[1] / "traces" / "example_requests.csv"
    out = tmp_path / "s.h5"
    serve_requests(example, out, model="gpt2", system="neupims", options=SchedulerOptions(max_batch=8),
                   layers="extrapolate")
    with open_stats(out) as sf:
        req, steps = sf.table("requests"), sf.table("serve_steps")
    span = req["finish_s"].max() - req["arrival_s"].min()
    in_system = math.fsum((steps["batch"] + steps["waiting"]) * steps["seconds"]) / span
    rate_times_wait = len(req["id"]) / span * (req["finish_s"] - req["arrival_s"]).mean()
    assert in_system > 1 and abs(in_system - rate_times_wait) / rate_times_wait < 0.02
    assert steps["output_tokens"].sum() == req["output_tokens"].sum()
    assert steps["batch"].max() <= 8


def test_stages_auto_splits_hybe_and_not_attacc(tmp_path):
    # hybe maps prefill to its GPUs and decode to its NPUs: two stages; dgx-attacc one
    reqs = [ServedRequest(0, 0.0, 64, 4), ServedRequest(1, 0.0001, 64, 4)]
    write_requests(tmp_path / "r.csv", reqs)
    for system, want in (("hybe", "two"), ("dgx-attacc", "one")):
        out = tmp_path / f"{system}.h5"
        result = serve_requests(tmp_path / "r.csv", out, model="gpt2", system=system)
        with open_stats(out) as sf:
            assert sf.config["serve"]["scheduler"]["stages"] == want
            steps = sf.table("serve_steps")
        assert result.summary["output_tokens"] == 8
        rows = list(zip(steps["start_s"], steps["seconds"], steps["phase"], steps["batch"]))
        p = rows[0][1]                              # the first prompt's prefill
        if want == "two":
            # the second prompt (arrived during the first's prefill) is prefilled on the GPUs from
            # p, while the first decodes on the NPUs from p; it joins the decode batch once its
            # prefill has ended (2p)
            assert [(r[2], r[3]) for r in rows[:3]] == [("prefill", 1), ("prefill", 1), ("decode", 1)]
            assert rows[1][0] == p and rows[2][0] == p
            joined = next(r for r in rows if r[3] == 2)
            assert joined[2] == "decode" and joined[0] >= 2 * p
        else:
            # one stage: the second prefill comes first, then both decode together
            assert [(r[2], r[3]) for r in rows[:3]] == [("prefill", 1), ("prefill", 1), ("decode", 2)]
    with pytest.raises(Exception, match="stages"):
        serve_requests(tmp_path / "r.csv", tmp_path / "x.h5", model="gpt2", system="hybe", stages="three")
