"""Systems as configuration: presets derived from others, PIM figures derived from their designs,
the resolved system a kernel-trace header embeds and reads back, and errors that name the key."""
import json

import pytest
import yaml
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.config import list_configs
from pimdram.config.system import load_system, pim_rates, system_raw
from pimdram.errors import ConfigError

BASELINES = ("a100", "dgx-a100", "dgx-a100-x2", "dgx-h100", "dgx-attacc", "dgx-attacc-bankgroup",
             "dgx-attacc-buffer", "npu-only", "neupims", "neupims-naive", "pim-only")


def write(tmp_path, raw, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw))
    return str(p)


def test_every_baseline_of_the_seed_papers_is_a_preset():
    assert set(BASELINES) <= set(list_configs("systems"))


def test_a_derived_system_changes_only_what_it_names():
    base, bg = load_system("dgx-attacc"), load_system("dgx-attacc-bankgroup")
    assert bg.memories["attacc_hbm"].pim == "attacc-bankgroup"
    assert bg.devices["gpu"] == base.devices["gpu"] and bg.links == base.links
    x2 = load_system("dgx-a100-x2")
    assert x2.devices["gpu"].count == 16 and x2.memories["gpu_hbm"].stacks == 80
    assert x2.devices["gpu"].peak_tflops == 312 and x2.devices["gpu"].compute_utilization == 0.8
    # a null removes a key of the base: a100 drops the DGX's HBM3 memory and its NVLink
    a100 = load_system("a100")
    assert set(a100.memories) == {"hbm2e"} and not a100.links and a100.devices["gpu"].count == 1


def test_base_merge_rules(tmp_path):
    raw = {"base": "dgx-a100", "name": "mine", "devices": {"gpu": {"count": 4, "cores": None}},
           "links": {"nvlink": {"latency_us": 1.0}}}
    s = load_system(write(tmp_path, raw))
    assert s.name == "mine" and s.devices["gpu"].count == 4 and s.devices["gpu"].cores is None
    assert s.devices["gpu"].peak_tflops == 312                          # kept from the base
    assert s.links["nvlink"].latency_us == 1.0 and s.links["nvlink"].bandwidth_gbs == 300
    with pytest.raises(ConfigError, match="circular chain"):
        p = tmp_path / "loop.yaml"
        p.write_text(yaml.safe_dump({"base": str(p), "name": "loop"}))
        load_system(str(p))


def test_attacc_device_figures_are_derived_from_its_design():
    attacc = load_system("dgx-attacc").devices["attacc"]
    # 5 stacks x 16 channels x 64 banks, 16 FP16 MACs per bank per cycle at 1.3 GHz, 2 FLOPs each
    assert attacc.peak_tflops * 1e12 == pytest.approx(2 * 16 * 64 * 80 * 1.3e9, rel=1e-3)
    # one all-bank MAC (32 B from each of 64 banks) per nCCD_AB = 6 cycles per channel
    assert attacc.bandwidth_gbs * 1e9 == pytest.approx(32 * 64 / 6 * 80 * 1.3e9, rel=1e-3)
    unlimited = load_system("dgx-attacc", {"options.power_limit": "unlimited"}).devices["attacc"]
    assert unlimited.bandwidth_gbs == pytest.approx(attacc.bandwidth_gbs * 6 / 4)


def test_aim_device_figures_match_what_ianus_publishes():
    aim = load_system("ianus").devices["aim_pim"]
    # IANUS: 32 GFLOPS per bank x 16 banks x 8 channels, 4 TB/s internal bandwidth per device
    assert aim.peak_tflops == pytest.approx(4.096)
    assert aim.bandwidth_gbs == pytest.approx(4096)


def test_pim_rates_of_a_design_follow_its_mac_spacing():
    from pimdram.config.memory import load_memory
    spec = load_memory("neupims")
    peak, bandwidth = pim_rates(spec, channels=1)
    # NeuPIMs: 32 banks x 16 multipliers at 1 GHz; COMP streams 32 B from every bank each nCCD_S
    assert peak == pytest.approx(2 * 32 * 16 / (spec.tck_ns * 1e-9))
    assert bandwidth == pytest.approx(32 * 32 / spec.timing["nCCD_S"] / (spec.tck_ns * 1e-9))


@pytest.mark.parametrize("name", list_configs("systems"))
def test_the_resolved_system_reads_back_as_it_was(name):
    s = load_system(name)
    d = json.loads(json.dumps(s.to_dict()))             # as a trace header carries it
    back = load_system(d)
    assert back == s and back.to_dict() == s.to_dict()
    for m in s.memories:         # the same resolved memory (only where it was read from differs)
        a, b = back.memories[m].spec.to_dict(), s.memories[m].spec.to_dict()
        assert a.pop("source") == f"system: memories.{m}.config" and b.pop("source").endswith(".yaml")
        assert a == b


def test_pim_option_choices_travel_with_the_system():
    s = load_system("dgx-attacc", {"options.power_limit": "unlimited"})
    d = s.to_dict()
    assert d["memories"]["attacc_hbm"]["options"]["power_limit"] == "unlimited"
    back = load_system(json.loads(json.dumps(d)))
    assert back.memories["attacc_hbm"].spec.timing["nCCD_AB"] == 4


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["devices"]["gpu"].update(peak_tflops=0), r"devices\.gpu\.peak_tflops: must be positive"),
    (lambda d: d["links"]["nvlink"].update(bandwidth_gbs=-5), r"links\.nvlink\.bandwidth_gbs: must be positive"),
    (lambda d: d["links"]["nvlink"].update(latency_us=-1), r"latency_us: must not be negative"),
    (lambda d: d["devices"]["gpu"]["utilization"].update(compute=1.5), r"utilization\.compute: .*at most 1"),
    (lambda d: d["devices"]["gpu"].update(kernel_overhead_us={"norm": -2}), r"kernel_overhead_us\.norm: must not"),
    (lambda d: d["devices"]["gpu"]["energy"].update(mac_pj=-1), r"energy\.mac_pj: must not be negative"),
    (lambda d: d["devices"]["gpu"].update(efficiency=0.5), r"devices\.gpu\.efficiency: renamed"),
    (lambda d: d["devices"]["gpu"].update(tiles={"register": [16]}), r"tiles\.register: expected \[rows, cols\]"),
    (lambda d: d["devices"]["attacc"].update(peak_tflops=35), r"attacc\.peak_tflops: derived from the PIM design"),
    (lambda d: d["devices"]["attacc"].update(count=4), r"gpu_attacc\.topology: pairs needs groups of equal size"),
    (lambda d: d["links"]["nvlink"].update(topology="pairs"), r"nvlink\.topology: a link within one device group"),
    (lambda d: d["memories"]["gpu_hbm"].update(options={"power_limit": "x"}), r"gpu_hbm\.options: option choices"),
])
def test_bad_values_name_their_key(tmp_path, edit, match):
    raw = system_raw("dgx-attacc")
    edit(raw)
    with pytest.raises(ConfigError, match=match):
        load_system(write(tmp_path, raw))


def gen(tmp_path, *extra):
    out = tmp_path / "t.jsonl"
    r = CliRunner().invoke(cli, ["gen", "--model", "gpt2", "--system", "dgx-attacc", "--batch", "2", "--prompt",
                                 "64", "--output", "2", "--layers", "1", *extra, "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_a_trace_replays_on_its_embedded_system_without_the_files(tmp_path, monkeypatch):
    # a system from a file of the user's: the trace carries it whole, so it replays after the
    # file is gone and without --system
    raw = system_raw("dgx-attacc")
    raw["name"] = "my-attacc"
    raw["devices"]["gpu"]["peak_tflops"] = 100
    path = write(tmp_path, raw, "my-attacc.yaml")
    out = tmp_path / "t.jsonl"
    r = CliRunner().invoke(cli, ["gen", "--model", "gpt2", "--system", path, "--batch", "2", "--prompt", "64",
                                 "--output", "2", "--layers", "1", "--set", "options.power_limit=unlimited",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    (tmp_path / "my-attacc.yaml").unlink()
    header = json.loads(out.read_text().splitlines()[0])
    assert header["system"]["devices"]["gpu"]["peak_tflops"] == 100
    assert header["system"]["memories"]["attacc_hbm"]["config"]["timing"]["nCCD_AB"] == 4
    r = CliRunner().invoke(cli, ["replay", str(out), "-o", str(tmp_path / "s.h5"), "--no-progress"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load(__import__("pimdram.stats", fromlist=["open_stats"]).open_stats(tmp_path / "s.h5")
                         .attrs["config"])
    assert cfg["system"]["name"] == "my-attacc" and cfg["system"]["devices"]["gpu"]["peak_tflops"] == 100


@pytest.mark.parametrize("edit, match", [
    (lambda s: s["devices"]["gpu"].update(peak_tflops=0), r"t\.jsonl:1: header system: devices\.gpu\.peak_tflops: "
                                                          r"must be positive"),
    (lambda s: s["links"]["nvlink"].update(bandwidth_gbs=-1), r"t\.jsonl:1: header system: links\.nvlink\.bandwidth_gbs"),
])
def test_an_edited_header_is_one_clean_error(tmp_path, edit, match):
    out = gen(tmp_path)
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    edit(header["system"])
    out.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    r = CliRunner().invoke(cli, ["replay", str(out), "-o", str(tmp_path / "s.h5"), "--no-progress"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    import re
    assert re.search(match, r.output), r.output
    assert not (tmp_path / "s.h5").exists()
    # --system overrides the header's system
    r = CliRunner().invoke(cli, ["replay", str(out), "--system", "dgx-attacc", "-o", str(tmp_path / "s.h5"),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
