"""`pimdram config show/list` through click's CliRunner."""
import json

import yaml
from click.testing import CliRunner

from pimdram.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["config", *args])


def test_show_prints_resolved_cycles():
    result = run("show", "ddr4_3200")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["name"] == "ddr4_3200"
    assert shown["timing"]["nRCD"] == 22          # tRCD 13.75 ns at tCK 0.625
    assert shown["timing"]["nRAS"] == 52          # tRAS 32 ns, rounded up
    assert "tRCD" not in shown["timing"]
    assert shown["read_latency"] == 26


def test_show_set_changes_a_value():
    result = run("show", "hbm3_5.2gbps", "--set", "timing.nCL=25", "--set", "controller.read_queue=128")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["timing"]["nCL"] == 25
    assert shown["read_latency"] == 27
    assert shown["controller"]["read_queue"] == 128


def test_show_set_ns_timing_replaces_cycles():
    shown = yaml.safe_load(run("show", "hbm3_6.4gbps", "--set", "timing.tFAW=20").output)
    assert shown["timing"]["nFAW"] == 32          # 20 ns / 0.625 ns


def test_show_json():
    result = run("show", "gddr6_14gbps", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["timing"]["nRFC"] == 211
    assert shown["organization"]["peak_bandwidth_bytes_per_s"] > 55.9e9


def test_show_a_file(tmp_path):
    src = yaml.safe_load(open(_preset_path("hbm2_2gbps")))
    src["name"] = "my_hbm2"
    path = tmp_path / "my_hbm2.yaml"
    path.write_text(yaml.safe_dump(src))
    shown = yaml.safe_load(run("show", str(path)).output)
    assert shown["name"] == "my_hbm2" and shown["timing"]["nRC"] == 48


def test_unknown_preset_is_a_one_line_error():
    result = run("show", "hbm9_99gbps")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "hbm9_99gbps" in lines[0] and "hbm3_6.4gbps" in lines[0]   # names what exists
    assert "Traceback" not in result.output


def test_bad_set_is_a_one_line_error():
    result = run("show", "ddr4_3200", "--set", "timing.nCL")
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1
    assert "KEY=VALUE" in result.output


def test_bad_override_names_the_dotted_path():
    result = run("show", "ddr4_3200", "--set", "controller.bogus=1")
    assert result.exit_code != 0
    assert "controller.bogus" in result.output


def test_list_names_presets_of_each_kind():
    result = run("list")
    assert result.exit_code == 0, result.output
    names = result.output.split()
    for n in ("ddr4_3200", "hbm2_2gbps", "hbm3_5.2gbps", "hbm3_6.4gbps", "gddr6_14gbps",
              "dramsim3_hbm2_8gb_x128", "dramsim3_ddr4_8gb_x8_3200"):
        assert n in names
    assert result.output.index("configs/dram") < result.output.index("configs/compare")


def _preset_path(name):
    from pimdram.config import find_config
    return find_config("dram", name)
