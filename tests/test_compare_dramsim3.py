"""Does pimdram agree with DRAMsim3 where the rules agree? The six reference runs of
tools/dramsim3_results.csv (DRAMsim3, unmodified) replayed on configs/compare/."""
import csv
from pathlib import Path

import pytest

from pimdram._engine import Engine
from pimdram.config.memory import load_memory
from pimdram.replay import engine_params
from pimdram.trace.requests import open_request_trace
from pimdram.trace.synthetic import synthetic_traces

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"HBM2_8Gb_x128": "dramsim3_hbm2_8gb_x128", "DDR4_8Gb_x8_3200": "dramsim3_ddr4_8gb_x8_3200"}
TOLERANCE = 0.03
# Open gaps, explained in BENCHMARKS.md ("Agreement with DRAMsim3"); strict, so a fix shows up.
KNOWN_GAPS = {}

with open(ROOT / "tools" / "dramsim3_results.csv") as f:
    REFERENCE = {(r["preset"], r["trace"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    return synthetic_traces(tmp_path_factory.mktemp("dramsim3-traces"), 1_000_000)


def replay(trace, memory):
    spec = load_memory(memory)
    engine = Engine(engine_params(spec))
    for chunk in open_request_trace(trace):
        engine.feed(chunk.address, chunk.is_write, chunk.arrival)
        engine.run(False)
    engine.run(True)
    counters = engine.counters()
    return engine.completion_cycle, dict(zip(spec.command_names, counters["commands"].sum(axis=0)))


def check(traces, preset, trace):
    ref = REFERENCE[(preset, trace)]
    cycles, commands = replay(traces[trace], PRESETS[preset])
    theirs = int(ref["cycles"])
    # the same commands were needed: activates within 1%, every read and write issued
    assert commands["RD"] + commands.get("RDA", 0) == pytest.approx(int(ref["rd"]), abs=10)
    assert commands["ACT"] == pytest.approx(int(ref["act"]), rel=0.01)
    assert abs(cycles - theirs) / theirs <= TOLERANCE, f"pimdram {cycles} vs DRAMsim3 {theirs} cycles"


def params():
    for key in REFERENCE:
        marks = [pytest.mark.xfail(reason=KNOWN_GAPS[key], strict=True)] if key in KNOWN_GAPS else []
        yield pytest.param(*key, marks=marks, id=f"{key[0]}-{key[1]}")


@pytest.mark.parametrize("preset,trace", [("HBM2_8Gb_x128", "rand_read"), ("DDR4_8Gb_x8_3200", "seq_read")])
def test_agrees_with_dramsim3_on_a_sample(traces, preset, trace):
    check(traces, preset, trace)


@pytest.mark.parametrize("ini,trace,cycles", [("HBM2_INI", "rand_read", 1_039_143), ("DDR4_INI", "seq_read", 6_019_359)])
def test_an_imported_ini_runs_the_cross_check_cycles_of_the_preset(traces, tmp_path, ini, trace, cycles):
    """The cross-check run from DRAMsim3's .ini, imported (hand-written equivalents of
    configs/HBM2_8Gb_x128.ini and DDR4_8Gb_x8_3200.ini, tests/test_config_import.py), gives the
    preset's cycle count of BENCHMARKS.md's table."""
    import warnings
    import test_config_import
    from pimdram.errors import ConfigImportWarning
    path = tmp_path / "x.ini"
    path.write_text(getattr(test_config_import, ini))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigImportWarning)
        assert replay(traces[trace], path)[0] == cycles


@pytest.mark.slow
@pytest.mark.parametrize("preset,trace", list(params()))
def test_agrees_with_dramsim3(traces, preset, trace):
    check(traces, preset, trace)
