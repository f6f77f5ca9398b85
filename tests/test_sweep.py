"""Sweeps: the sweep file, points and their hashes, running on an executor, the cache and --resume,
failures recorded, the results table in its three formats, and the Dask cluster agreeing with the
local pool."""
import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import pimdram.sweep.point as point_module
import pimdram.sweep.run as run_module
from pimdram.cli import cli
from pimdram.errors import FileFormatError, OutputExistsError, SweepError, VersionTooNewError
from pimdram.stats import schema
from pimdram.sweep import (METRICS, PointCache, load_sweep, local_pool, parse_sweep, point_hash, read_results,
                           run_sweep)
from pimdram.sweep.point import Resolver
from pimdram.sweep.results import FORMAT, build_frame, write_results

DOCS = Path(__file__).resolve().parents[1] / "docs"
# a small point: GPT-2's first layer, a decode step
SMALL = {"model": "gpt2", "prompt_tokens": 64, "output_tokens": 8, "layers": 1}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# --- the sweep file ---------------------------------------------------------------------------

def test_the_issues_example_is_eight_points_in_grid_order():
    sweep = parse_sweep({"model": ["llama3-8b", "gpt3-6.7b"], "system": ["dgx-a100", "dgx-attacc"],
                         "batch": [1, 16], "prompt": 512, "output": 128, "phase": "decode", "context": 1024})
    points = sweep.points()
    assert len(sweep) == len(points) == 2 * 2 * 2
    # the first axis varies slowest; columns in file order, with gen's new names
    assert sweep.columns == ["model", "system", "batch", "prompt_tokens", "output_tokens", "phase", "context"]
    assert [(p.inputs["model"], p.inputs["system"], p.inputs["batch"]) for p in points[:3]] == [
        ("llama3-8b", "dgx-a100", 1), ("llama3-8b", "dgx-a100", 16), ("llama3-8b", "dgx-attacc", 1)]
    assert points[7].inputs == {"model": "gpt3-6.7b", "system": "dgx-attacc", "batch": 16, "prompt_tokens": 512,
                                "output_tokens": 128, "phase": "decode", "context": 1024}
    # options not given take gen's defaults
    assert (points[0].options["speculation"], points[0].options["dtype"], points[0].options["symmetry"]) == \
        (1, "fp16", True)


def test_explicit_points_and_overrides():
    sweep = parse_sweep({**SMALL, "batch": [1, 2], "set": {"options.power_limit": ["unlimited", "lpddr"]},
                         "points": [{"system": "dgx-attacc"}, {"system": "papi", "speculation": 2}]})
    points = sweep.points()
    assert len(points) == 2 * 2 * 2
    assert sweep.columns == ["model", "prompt_tokens", "output_tokens", "layers", "batch",
                             "set.options.power_limit", "system", "speculation"]
    assert points[1].inputs["system"] == "papi" and points[1].inputs["speculation"] == 2
    assert points[0].inputs["speculation"] is None          # that point does not give it
    assert points[2].overrides == {"options.power_limit": "lpddr"}
    # set.<path> at the top level is the same as under set:
    same = parse_sweep({**SMALL, "batch": [1, 2], "set.options.power_limit": ["unlimited", "lpddr"],
                        "points": [{"system": "dgx-attacc"}, {"system": "papi", "speculation": 2}]})
    assert [p.overrides for p in same.points()] == [p.overrides for p in points]


def test_relative_paths_are_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "study").mkdir()
    path = tmp_path / "study" / "s.yaml"
    path.write_text(yaml.safe_dump({"model": "gpt2", "system": "mine.yaml", "requests": "reqs.csv"}))
    p = load_sweep(path).points()[0]
    assert p.options["system"] == str(tmp_path / "study" / "mine.yaml")
    assert p.options["requests"] == str(tmp_path / "study" / "reqs.csv")
    assert p.options["model"] == "gpt2" and p.inputs["system"] == "mine.yaml"


@pytest.mark.parametrize("data,message", [
    ({**SMALL, "system": "a100", "batch": 1, "promt": 3}, "promt: unknown key"),
    ({**SMALL, "system": "a100", "batch": [1, 0]}, "batch[1]: expected a positive integer, got 0"),
    ({**SMALL, "system": "a100", "batch": []}, "batch: an axis needs at least one value"),
    ({**SMALL, "system": "a100", "batch": 1, "phase": "warmup"}, "phase: expected one of prefill, decode"),
    ({**SMALL, "batch": 1}, "no system"),
    ({"model": "gpt2", "system": "a100", "batch": 1, "prompt": 8}, "no output_tokens"),
    ({**SMALL, "system": "a100", "batch": 1, "requests": "r.csv"}, "requests replaces batch"),
    ({**SMALL, "system": "a100", "batch": 1, "phase": "prefill", "context": 9}, "context applies to phase decode"),
    ({**SMALL, "system": "a100", "batch": 1, "prompt": 9}, "given twice (as prompt_tokens)"),
    ({**SMALL, "system": "a100", "batch": 1, "keep": ["tokens_per_second"]}, "keep: unknown result 'tokens_per_second'"),
    ({**SMALL, "system": "a100", "points": [{"batch": [1, 2]}]}, "a point takes one value per key"),
    ({**SMALL, "system": "a100", "batch": 1, "points": [{"batch": 2}]}, "also given at the top level"),
    ({**SMALL, "system": "a100", "batch": 1, "set.options": {"a": 1}}, "an override takes a scalar"),
    ({**SMALL, "system": "a100", "batch": 1, "version": "1.x"}, "version: expected MAJOR.MINOR"),
])
def test_bad_sweep_files_name_the_key(tmp_path, data, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SweepError, match=re.escape(message)) as info:
        load_sweep(path)
    assert str(info.value).startswith(str(path))


def test_sweep_file_versions(tmp_path):
    assert parse_sweep({**SMALL, "system": "a100", "batch": 1, "version": "1.3"}).version == (1, 3)
    with pytest.raises(VersionTooNewError, match="upgrade pimdram"):
        parse_sweep({**SMALL, "system": "a100", "batch": 1, "version": "2.0"})


# --- points: resolution and hash --------------------------------------------------------------

def _hash(**options):
    sweep = parse_sweep({"system": "dgx-attacc", "batch": 2, **SMALL, **options})
    return point_hash(Resolver().task(sweep.points()[0]))


def test_a_points_hash_covers_its_resolved_inputs_and_the_version(monkeypatch):
    base = _hash()
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert _hash(speculation=1, dtype="fp16") == base          # gen's defaults spelt out
    assert _hash(batch=3) != base and _hash(**{"set.options.power_limit": "unlimited"}) != base
    monkeypatch.setattr(point_module, "__version__", "999.0")
    assert _hash() != base


# --- running ----------------------------------------------------------------------------------

def test_metrics_are_those_of_gen_replay_and_report(tmp_path):
    sweep = parse_sweep({**SMALL, "system": "dgx-attacc", "batch": 2})
    frame = run_sweep(sweep, tmp_path / "r.csv", cache=None).frame
    trace, stats = tmp_path / "t.jsonl", tmp_path / "t.h5"
    assert run("gen", "--model", "gpt2", "--system", "dgx-attacc", "--batch", 2, "--prompt-tokens", 64,
               "--output-tokens", 8, "--layers", 1, "-o", trace).exit_code == 0
    assert run("replay", trace, "-o", stats).exit_code == 0
    report = json.loads(run("report", stats, "--json").output)
    row = frame.iloc[0]
    assert row["status"] == "ok" and row["error"] == ""
    for name in ("tokens_per_s", "energy_j", "simulated_seconds", "tokens", "cycles", "bytes_read",
                 "energy_per_token_j", "decode_tokens_per_s", "kernels_simulated"):
        assert row[name] == report[name], name
    assert row["kernels"] == report["kernel_count"]
    assert row["energy_memory_j"] == pytest.approx(report["energy_by_kind"]["memory"], rel=1e-12)
    assert row["tokens"] == 2           # two requests, one decode step


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    sweep = parse_sweep({"model": ["gpt2", "gpt5"], "system": "a100", "batch": 1, "prompt": 64, "output": 8,
                         "layers": 1, "points": [{"context": 100}, {"context": 10 ** 9}]})
    result = run_sweep(sweep, tmp_path / "r.parquet", cache=None)
    f = result.frame
    assert list(f["status"]) == ["ok", "failed", "failed", "failed"]
    assert (result.ok, result.failed, result.cached) == (1, 3, 0)
    assert "does not fit memory 'hbm2e' of system a100" in f["error"][1]
    assert f["error"][2].startswith("unknown models preset 'gpt5'")
    assert f["tokens_per_s"][0] > 0 and np.isnan(f["tokens_per_s"][1]) and pd.isna(f["tokens"][3])
    assert f["point"][2] == ""           # never resolved, so no hash


def test_the_cache_skips_finished_points_and_resume_reads_the_table(tmp_path, monkeypatch):
    sweep = parse_sweep({**SMALL, "system": "dgx-a100", "batch": [1, 2, 3]})
    out, cache = tmp_path / "r.h5", tmp_path / "cache"
    first = run_sweep(sweep, out, cache=cache)
    assert (first.ok, first.cached) == (3, 0)
    assert len(list(cache.rglob("*.json"))) == 3
    with pytest.raises(OutputExistsError, match="--resume"):
        run_sweep(sweep, out, cache=cache)

    def no_run(task):
        raise AssertionError("a finished point ran again")
    monkeypatch.setattr(run_module, "run_point", no_run)
    again = run_sweep(sweep, out, cache=cache, overwrite=True)
    assert (again.ok, again.cached) == (0, 3)
    cols = [m.name for m in METRICS if m.name != "wall_seconds"]
    pd.testing.assert_frame_equal(again.frame[cols], first.frame[cols])
    # without the cache, --resume takes the finished points from the table itself
    resumed = run_sweep(sweep, out, cache=None, resume=True)
    assert resumed.cached == 3
    assert list(read_results(out)["tokens_per_s"]) == list(first.frame["tokens_per_s"])


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    sweep = parse_sweep({**SMALL, "system": "dgx-a100", "batch": [1, 2, 3, 4]})
    out, cache = tmp_path / "r.csv", tmp_path / "cache"

    def interrupt(done, total, counts):
        if counts["ok"] == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, out, cache=cache, progress=interrupt)
    assert not out.exists() and len(list(cache.rglob("*.json"))) == 2
    calls = []
    result = run_sweep(sweep, out, cache=cache, progress=lambda done, total, counts: calls.append((done, counts)))
    assert (result.ok, result.cached) == (2, 2)
    assert calls[0] == (2, {"ok": 0, "failed": 0, "cached": 2}) and calls[-1][0] == 4


def test_a_point_given_twice_runs_once(tmp_path):
    # `prompt` at the top and `prompt_tokens` in a point mean the same option: equal points
    sweep = parse_sweep({"model": "gpt2", "system": "dgx-a100", "batch": 1, "output": 8, "layers": 1,
                         "points": [{"prompt": 64}, {"prompt_tokens": 64, "dtype": "fp16"}]})
    result = run_sweep(sweep, tmp_path / "r.csv", cache=None)
    assert result.ok == 2 and result.frame["point"][0] == result.frame["point"][1]
    assert result.frame["wall_seconds"][0] == result.frame["wall_seconds"][1]


def test_requests_files_and_overrides_as_axes(tmp_path):
    requests = Path(__file__).parent / "data" / "llm" / "requests.csv"      # 3 requests
    (tmp_path / "requests.csv").write_text(requests.read_text())
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"model": "gpt2", "system": "dgx-attacc", "requests": "requests.csv",
                                    "layers": 1, "set.options.power_limit": ["unlimited", "bogus"]}))
    f = run_sweep(load_sweep(path), tmp_path / "r.csv", cache=None).frame
    assert list(f["status"]) == ["ok", "failed"]
    assert f["tokens"][0] == 3                 # one decode step of the file's three requests
    assert "options.power_limit" in f["error"][1] and f["set.options.power_limit"][1] == "bogus"
    assert f["requests"][0] == "requests.csv"  # the table shows the input as written


def test_keep_chooses_the_result_columns(tmp_path):
    sweep = parse_sweep({**SMALL, "system": "dgx-a100", "batch": 1, "keep": ["tokens_per_s", "energy_j"]})
    frame = run_sweep(sweep, tmp_path / "r.csv", cache=None).frame
    assert list(frame.columns) == ["point", "model", "prompt_tokens", "output_tokens", "layers", "system", "batch",
                                   "status", "error", "tokens_per_s", "energy_j"]
    assert frame.attrs["units"]["tokens_per_s"] == "1/s" and frame.attrs["units"]["batch"] == "count"


def test_local_pool_runs_the_same_points(tmp_path):
    sweep = parse_sweep({**SMALL, "system": ["dgx-a100", "dgx-attacc"], "batch": [1, 4]})
    here = run_sweep(sweep, tmp_path / "a.csv", cache=None).frame
    with local_pool(2) as pool:
        pooled = run_sweep(sweep, tmp_path / "b.csv", executor=pool, cache=None).frame
    _same_results(here, pooled)


def _same_results(a, b):
    cols = [c for c in a.columns if c != "wall_seconds"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_dask_local_cluster_gives_the_local_pools_results(tmp_path):
    pytest.importorskip("distributed")          # in the test extra; skipped only outside it
    from pimdram.sweep import dask_executor
    sweep = parse_sweep({**SMALL, "system": ["dgx-a100", "dgx-attacc"], "batch": [1, 4],
                         "points": [{"phase": "decode"}, {"phase": "prefill"}]})
    with local_pool(2) as pool:
        local = run_sweep(sweep, tmp_path / "local.parquet", executor=pool, cache=None).frame
    with dask_executor(jobs=2) as ex:
        on_dask = run_sweep(sweep, tmp_path / "dask.parquet", executor=ex, cache=None).frame
    assert (on_dask["status"] == "ok").all() and len(on_dask) == 8
    _same_results(local, on_dask)


# --- the results table ------------------------------------------------------------------------

def _table():
    rows = [
        {"point": "a" * 64, "inputs": {"model": "gpt2", "batch": 1, "set.x": "unlimited", "flag": True},
         "status": "ok", "error": "", "metrics": {m.name: (2 if m.dtype == "int64" else True if m.dtype == "bool"
                                                           else 0.1) for m in METRICS}},
        {"point": "", "inputs": {"model": "gpt5", "batch": None, "set.x": 4, "flag": None},
         "status": "failed", "error": "unknown model 'gpt5', with a # and a \"quote\"", "metrics": None},
    ]
    return build_frame(rows, ["model", "batch", "set.x", "flag"], [m.name for m in METRICS], {"sweep": {}})


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".h5"])
def test_results_tables_read_back_as_written(tmp_path, suffix):
    frame = _table()
    path = tmp_path / f"r{suffix}"
    write_results(frame, path)
    back = read_results(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert [str(back[c].dtype) for c in ("batch", "tokens", "overcommitted", "tokens_per_s")] == \
        ["Int64", "Int64", "boolean", "float64"]
    assert back["set.x"].tolist() == ["unlimited", "4"]       # a column of mixed types is text
    assert pd.isna(back["batch"][1]) and pd.isna(back["flag"][1]) and pd.isna(back["tokens"][1])
    meta = back.attrs["pimdram"]
    assert meta["format"] == FORMAT and meta["format_version"] == [1, 0]
    assert back.attrs["units"]["energy_j"] == "J" and back.attrs["units"]["bandwidth"] == "B/s"
    with pytest.raises(OutputExistsError):
        write_results(frame, path)


def test_plain_pandas_reads_every_format(tmp_path):
    frame = _table()
    for suffix in (".parquet", ".csv"):
        write_results(frame, tmp_path / f"r{suffix}")
    assert pd.read_parquet(tmp_path / "r.parquet")["error"][1] == frame["error"][1]
    csv = pd.read_csv(tmp_path / "r.csv", comment="#")
    assert csv["error"][1] == frame["error"][1] and csv["tokens"][0] == 2
    write_results(frame, tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5") as f:
        assert f["results/energy_j"].attrs["unit"] == "J" and f["results/batch"][0] == 1
        assert list(f["nulls/batch"][()]) == [False, True]


def test_readers_reject_other_versions_and_other_files(tmp_path):
    frame = _table()
    frame.attrs["pimdram"] = dict(frame.attrs["pimdram"], format_version=[2, 0])
    write_results(frame, tmp_path / "v2.csv")
    with pytest.raises(VersionTooNewError, match="2.0"):
        read_results(tmp_path / "v2.csv")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "plain.csv")
    with pytest.raises(FileFormatError, match="not a pimdram.sweep-results table"):
        read_results(tmp_path / "plain.csv")
    with pytest.raises(FileFormatError, match="no such file"):
        read_results(tmp_path / "absent.parquet")


def test_metric_units_are_the_stats_files():
    for m in METRICS:
        if m.table in ("summary", "run"):
            units = {c: u for c, _, u in schema.standard_columns(m.table)}
            assert units[m.column] == m.unit, m.name
        elif m.table == "device_energy":
            assert m.unit == "J"


def test_docs_list_every_metric_with_its_unit():
    text = (DOCS / "sweeps.md").read_text()
    for m in METRICS:
        assert re.search(rf"^\| `{m.name}` \| `{re.escape(m.unit)}` \|", text, re.M), m.name


def test_point_cache_ignores_foreign_and_broken_entries(tmp_path):
    cache = PointCache(tmp_path)
    cache.put("ab" * 32, {"tokens_per_s": 1.5})
    assert cache.get("ab" * 32) == {"tokens_per_s": 1.5}
    path = tmp_path / "ab" / f"{'ab' * 32}.json"
    path.write_text("{not json")
    assert cache.get("ab" * 32) is None
    path.write_text(json.dumps({"format": "pimdram.sweep-point", "format_version": [9, 0], "point": "ab" * 32,
                                "metrics": {}}))
    assert cache.get("ab" * 32) is None


# --- the command ------------------------------------------------------------------------------

def _sweep_file(tmp_path, **extra):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "system": "dgx-a100", "batch": [1, 2], **extra}))
    return path


def test_cli_sweep_writes_the_table_and_says_what_it_did(tmp_path):
    path = _sweep_file(tmp_path)
    out = tmp_path / "r.csv"
    r = run("sweep", path, "-o", out, "-j", 2, "--no-progress")
    assert r.exit_code == 0, r.output
    assert f"{out}: 2 points (2 run, 0 failed, 0 from the cache)" in r.output
    assert (tmp_path / ".pimdram-cache").is_dir()
    r = run("sweep", path, "-o", out)
    assert r.exit_code == 2 and "--resume" in r.output
    r = run("sweep", path, "-o", out, "--resume", "--no-progress")
    assert r.exit_code == 0 and "(0 run, 0 failed, 2 from the cache)" in r.output
    assert list(read_results(out)["batch"]) == [1, 2]


@pytest.mark.parametrize("args,message", [
    (("--scheduler", "tcp://x:1"), "--scheduler is for --executor dask"),
    (("--cache", "c", "--no-cache"), "contradict"),
    (("--resume", "--overwrite"), "give one"),
    (("-o", "r.xlsx"), ".parquet, .csv or .h5"),
])
def test_cli_sweep_bad_options_are_one_line(tmp_path, args, message):
    path = _sweep_file(tmp_path)
    out = () if "-o" in args else ("-o", tmp_path / "r.csv")
    r = run("sweep", path, *out, *args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_cli_sweep_without_pyarrow_says_so_before_running(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setattr(run_module, "run_point", lambda task: pytest.fail("a point ran"))
    r = run("sweep", _sweep_file(tmp_path), "-o", tmp_path / "r.parquet", "-j", 1)
    assert r.exit_code == 1 and "pip install 'pimdram[parquet]'" in r.output


def test_cli_sweep_of_a_bad_file_or_of_only_failures(tmp_path):
    r = run("sweep", _sweep_file(tmp_path, batch=0), "-o", tmp_path / "r.csv")
    assert r.exit_code == 1 and r.output.strip().splitlines() == [
        f"Error: {tmp_path / 's.yaml'}: batch: expected a positive integer, got 0"]
    r = run("sweep", _sweep_file(tmp_path, model="gpt5"), "-o", tmp_path / "r.csv", "--no-progress", "-j", 1)
    assert r.exit_code == 1 and "no point of the sweep ran" in r.output
    assert "failed: batch=1, layers=1, model=gpt5" in r.output and "unknown models preset 'gpt5'" in r.output
    assert list(read_results(tmp_path / "r.csv")["status"]) == ["failed", "failed"]


# --- the README's worked example --------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _readme_block(start):
    text = (ROOT / "README.md").read_text()
    at = text.index(start)
    return text[at:text.index("```", at)]


def test_the_readme_shows_the_example_sweep_file():
    example = yaml.safe_load((ROOT / "examples" / "decode-sweep.yaml").read_text())
    shown = yaml.safe_load(_readme_block("model: llama3-8b\nsystem: [dgx-a100"))
    assert {k: v for k, v in example.items() if k != "version"} == shown
    sweep = load_sweep(ROOT / "examples" / "decode-sweep.yaml")
    assert len(sweep) == 12 and sweep.axes["system"] == ("dgx-a100", "dgx-attacc", "papi")


@pytest.mark.slow
def test_the_readme_worked_example_runs(tmp_path, monkeypatch):
    """The README's sweep (local pool, then Dask LocalCluster) and plot commands, as written."""
    pytest.importorskip("distributed")
    pytest.importorskip("matplotlib")
    import shlex
    monkeypatch.chdir(ROOT)
    commands = [line for line in _readme_block("pip install -e '.[dask,parquet,plot]'").splitlines()
                if line.startswith(("pimdram sweep", "pimdram plot"))]
    assert len(commands) == 3
    for line in commands:
        args = [a if not a.endswith((".parquet", ".png")) else str(tmp_path / a) for a in shlex.split(line)[1:]]
        r = run(*args, "--no-progress" if args[0] == "sweep" else "--overwrite")
        assert r.exit_code == 0, (line, r.output)
    local, dask = read_results(tmp_path / "decode.parquet"), read_results(tmp_path / "decode-dask.parquet")
    _same_results(local, dask)
    assert (local["status"] == "ok").all() and len(local) == 12
    assert (tmp_path / "decode.png").read_bytes().startswith(b"\x89PNG")
