"""Importing other simulators' memory configurations: DRAMsim3 .ini files and Ramulator 2 YAML.

DRAMsim3's own .ini files and Ramulator's exported YAML are not shipped with pimdram. The DRAMsim3
tests carry minimal hand-written equivalents of configs/HBM2_8Gb_x128.ini and
configs/DDR4_8Gb_x8_3200.ini (the keys DRAMsim3's code reads, with the values of
shared/reference/README.md); the Ramulator 2 tests generate the exported form from the resolved
values of the configs/compare/ramulator2_* presets. Importing DRAMsim3's real files and
Ramulator's real exports gives the same presets (checked when they were written; BENCHMARKS.md).
"""
import sys
import types
import warnings

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from pimdram.cli import cli
from pimdram.config.dramsim3 import _strtol, import_dramsim3, read_ini
from pimdram.config.imports import import_memory
from pimdram.config.memory import load_memory, resolve_memory
from pimdram.config.ramulator2 import STANDARDS, TIMING_NAMES
from pimdram.errors import ConfigError, ConfigImportWarning
from pimdram.replay import engine_params
from pimdram.stats import open_stats

HBM2_INI = """\
; A hand-written equivalent of DRAMsim3's configs/HBM2_8Gb_x128.ini: the keys its code reads, with
; the values of shared/reference/README.md, and a few it does not read.
[dram_structure]
protocol = HBM
bankgroups = 4
banks_per_group = 4
rows = 32768
columns = 64            ; device columns: DRAMsim3 doubles them for HBM
device_width = 128
BL = 4

[timing]
tCK = 1
CL = 14
CWL = 4
tRCDRD = 14
tRCDWR = 14
tRP = 14
tRAS = 34
tRFC = 260
tREFI = 3900
tRRD_S = 4
tRRD_L = 6
tWTR_S = 6
tWTR_L = 8
tFAW = 30
tWR = 16
tCCD_S = 1
tCCD_L = 2
tRTP_L = 6              ; DRAMsim3 reads tRTP, not this: its default 5 applies
tRPRE = 1

[power]
VDD = 1.2
IDD0 = 65
IDD2P = 28
IDD2N = 40
IDD3N = 55
IDD4W = 500
IDD4R = 390
IDD5AB = 250

[system]
channel_size = 1024
channels = 8
bus_width = 128
address_mapping = rorabgbachco
queue_structure = PER_BANK
row_buf_policy = OPEN_PAGE
cmd_queue_size = 8
trans_queue_size = 32
write_buf_size = 16

[other]
epoch_period = 1000000
"""

DDR4_INI = """\
; A hand-written equivalent of DRAMsim3's configs/DDR4_8Gb_x8_3200.ini (values of
; shared/reference/README.md).
[dram_structure]
protocol = DDR4
bankgroups = 4
banks_per_group = 4
rows = 65536
columns = 1024
device_width = 8
BL = 8

[timing]
tCK = 0.63
AL = 0
CL = 22
CWL = 16
tRCD = 22
tRP = 22
tRAS = 52
tRFC = 560
tREFI = 12480
tRRD_S = 4
tRRD_L = 8
tWTR_S = 4
tWTR_L = 12
tFAW = 34
tWR = 24
tRTP = 12
tCCD_S = 4
tCCD_L = 8
tRTRS = 1

[power]
VDD = 1.2
IDD0 = 57
IDD2N = 37
IDD3N = 52
IDD4W = 150
IDD4R = 168
IDD5AB = 250

[system]
channel_size = 16384
channels = 1
bus_width = 64
address_mapping = rochrababgco
queue_structure = PER_BANK
refresh_policy = RANK_LEVEL_STAGGERED
row_buf_policy = OPEN_PAGE
cmd_queue_size = 8
trans_queue_size = 32
"""

PROVENANCE = ("name", "standard", "description", "source")


def resolved(spec):
    """What the simulation uses: every resolved value but the names and citations; constraint
    rows as a sorted list (their order means nothing)."""
    d = spec.to_dict()
    for key in PROVENANCE:
        d.pop(key, None)
    d["constraints"] = sorted(d["constraints"], key=lambda r: sorted(r.items()))
    return d


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- DRAMsim3 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("ini,preset", [(HBM2_INI, "dramsim3_hbm2_8gb_x128"), (DDR4_INI, "dramsim3_ddr4_8gb_x8_3200")])
def test_dramsim3_ini_imports_to_the_compare_preset_exactly(tmp_path, ini, preset):
    path = write(tmp_path, "x.ini", ini)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigImportWarning)
        spec = load_memory(path)
    assert resolved(spec) == resolved(load_memory(preset))
    # the engine gets the same plain data, so the DRAMsim3 cross-check runs the same cycles
    # (tests/test_compare_dramsim3.py runs them from an imported file too)
    ours, theirs = engine_params(spec), engine_params(load_memory(preset))
    assert ours.keys() == theirs.keys()
    rows = ["row_level", "row_from", "row_to", "row_latency", "row_window", "row_sibling"]   # the engine sorts them
    assert sorted(zip(*(ours[k] for k in rows))) == sorted(zip(*(theirs[k] for k in rows)))
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours if k not in rows)


def test_dramsim3_import_reports_what_does_not_carry_over_in_one_warning(tmp_path):
    path = write(tmp_path, "HBM2_8Gb_x128.ini", HBM2_INI)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_memory(path)
    imported = [w for w in caught if issubclass(w.category, ConfigImportWarning)]
    assert len(imported) == 1
    message = str(imported[0].message)
    assert "not modelled by pimdram: power.IDD2P" in message
    assert "other.epoch_period: DRAMsim3's output settings" in message
    assert "timing.tRTP_L: not a key DRAMsim3 reads" in message
    assert "system.write_buf_size: read but never used" in message
    assert "timing.tRPRE: read but never used" in message
    _, report = import_dramsim3(path)
    assert report.defaults == [("timing.tRTP", 5), ("timing.tRTRS", 2)]
    assert report.comment().startswith("# Imported from DRAMsim3 configuration")


def test_the_ini_is_read_the_way_dramsim3_reads_it(tmp_path):
    path = write(tmp_path, "x.ini", "[Timing]\nCL = 7 ; inline comment\ncl = 9\ntRP = 12;no space: part of the value\n"
                                    "[system]\n  channels : 0x2\n")
    values, order, spelt = read_ini(path)
    assert values[("timing", "cl")] == "7\n9"            # a repeated key: DRAMsim3 parses the first line
    assert values[("timing", "trp")] == "12;no space: part of the value"
    assert values[("system", "channels")] == "0x2"
    assert spelt[("timing", "cl")] == "CL"
    assert [_strtol(v) for v in ("7\n9", "12;x", "0x2", "010", "08", "x")] == [7, 12, 2, 8, 0, None]


def test_dramsim3_gddr6_keeps_its_32_activate_window_and_precharge_spacing(tmp_path):
    ini = DDR4_INI.replace("protocol = DDR4", "protocol = GDDR6").replace("BL = 8", "BL = 16") \
        .replace("columns = 1024", "columns = 64").replace("tRCD = 22", "tRCDRD = 24\ntRCDWR = 20\ntPPD = 2\nt32AW = 420")
    spec = resolve_memory(import_dramsim3(write(tmp_path, "g.ini", ini))[0])
    names = spec.command_names
    rows = {(names[r.from_cmd], names[r.to_cmd], r.window, r.latency, spec.levels[r.level], r.sibling)
            for r in spec.constraints}
    assert ("ACT", "ACT", 32, 420, "rank", False) in rows
    assert ("PRE", "PRE", 1, 2, "rank", False) in rows            # other banks and bank groups: tPPD
    assert ("ACT", "RD", 1, 24, "bank", False) in rows and ("ACT", "WR", 1, 20, "bank", False) in rows
    # GDDR6 bursts take BL/16 cycles; DRAMsim3's columns are BL-wide (64 x 16 device columns)
    assert spec.timing["nBL"] == 1 and spec.columns == 64 * 16 // 16 and spec.access_bytes == 128


def test_dramsim3_per_bank_refresh_reproduces_its_lists(tmp_path):
    ini = DDR4_INI.replace("RANK_LEVEL_STAGGERED", "BANK_LEVEL_STAGGERED") + "\n[timing]\ntREFIb = 195\ntRFCb = 90\n"
    raw, report = import_dramsim3(write(tmp_path, "b.ini", ini))
    spec = resolve_memory(raw)
    assert spec.refresh.interval == 195 * 32 and spec.levels[spec.refresh.scope] == "bank"
    names = spec.command_names
    after_refb = {(names[r.to_cmd], spec.levels[r.level], r.sibling, r.latency) for r in spec.constraints
                  if names[r.from_cmd] == "REFb"}
    # other banks (of the bank group, of the other bank groups) wait tRFC to activate and tREFI to
    # refresh; the refreshed bank itself nothing (DRAMsim3 never applies tRFCb)
    assert after_refb == {("ACT", "bank", True, 560), ("REFb", "bank", True, 12480),
                          ("ACT", "bank_group", True, 560), ("REFb", "bank_group", True, 12480)}
    assert any(k == "timing.tRFCb" for k, _ in report.unused)


def test_dramsim3_settings_pimdram_cannot_model_are_named(tmp_path):
    ini = DDR4_INI.replace("PER_BANK", "PER_RANK").replace("OPEN_PAGE", "CLOSE_PAGE") + "unified_queue = true\n"
    raw, report = import_dramsim3(write(tmp_path, "r.ini", ini))
    keys = [k for k, _ in report.unmodelled]
    assert keys == ["system.queue_structure", "system.unified_queue", "system.row_buf_policy"]
    assert raw["controller"]["bank_queue"] == 0 and raw["controller"]["row_policy"] == "closed"


def test_hmc_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="HMC"):
        import_dramsim3(write(tmp_path, "h.ini", "[dram_structure]\nprotocol = HMC\n"))


# --- Ramulator 2 -----------------------------------------------------------------------------------

RAMULATOR_PRESETS = {"ramulator2_hbm3_6400": "HBM3", "ramulator2_gddr6_14000": "GDDR6",
                     "ramulator2_ddr4_2400r": "DDR4"}


def ramulator_export(spec, standard, *, channel_mapper=None, addr_mapper="RoBaRaCoCh"):
    """Ramulator 2.1's exported form (python -m ramulator export) of a resolved spec: timing values
    in its parameter order, constraint rows by command and level index, one controller per channel."""
    std = STANDARDS[standard]
    extra = {"rate": 6400, "tCK_ps": round(spec.tck_ns * 1000)}
    levels = ["channel"] + [lv for lv in spec.levels[1:]]
    level_index = {lv: std["levels"].index(name) for lv, name in zip(levels, std["levels"])}
    names = spec.command_names
    rows = []
    for r in spec.constraints:
        row = [level_index[spec.levels[r.level]], [std["commands"].index(names[r.from_cmd])],
               [std["commands"].index(names[r.to_cmd])], r.latency]
        if r.window != 1 or r.sibling:
            row.append(r.window)
        if r.sibling:
            row.append(True)
        rows.append(row)
    channel_width = spec.access_bytes * 8 // std["prefetch"]
    dram = {"impl": standard,
            "org": {"dq": channel_width // int(spec.power["devices_per_rank"]),
                    "count": [1] + list(spec.counts[1:]) + [spec.rows, spec.columns * std["prefetch"]]},
            "timing": [spec.timing.get(TIMING_NAMES.get(name, name), extra.get(name, 0)) for name in std["timing"]],
            "command_cycles": [1] * len(std["commands"]), "channel_width": channel_width,
            "read_latency": spec.read_latency, "timing_constraints": rows}
    controller = {"impl": std["controllers"][0], "wr_low_watermark": 0.2, "wr_high_watermark": 0.8,
                  "read_buffer_size": 32, "write_buffer_size": 32, "priority_buffer_size": 1568,
                  "scheduler": {"impl": "FRFCFS"},
                  "refresh_manager": {"impl": "AllBank", "scatter_interval": 0, "debug": False},
                  "row_policy": {"impl": "Open"}, "addr_mapper": {"impl": addr_mapper}, "dram": dram}
    return {"frontend": {"impl": "LoadStoreTrace", "clock_ratio": 1, "path": "trace"},
            "memory_system": {"impl": "GenericDRAM", "clock_ratio": 1,
                              "channel_mapper": channel_mapper or {"impl": "CacheLineInterleave", "interleave_bits": 0},
                              "controllers": [controller] * spec.n_channels}}


@pytest.mark.parametrize("preset", list(RAMULATOR_PRESETS))
def test_ramulator2_export_imports_to_the_compare_preset_exactly(tmp_path, preset):
    spec = load_memory(preset)
    path = tmp_path / f"{preset}.yaml"
    path.write_text(yaml.safe_dump(ramulator_export(spec, RAMULATOR_PRESETS[preset]), sort_keys=False))
    raw, report = import_memory(path)
    assert resolved(resolve_memory(raw)) == resolved(spec)
    assert [k for k, _ in report.unmodelled] == ["memory_system.controllers[0].priority_buffer_size"]


def test_ramulator2_watermarks_keep_its_strict_comparisons():
    # Ramulator enters write mode when more than 0.8 x 32 = 25.6 writes wait (26), leaves it below
    # 0.2 x 32 = 6.4 (6 or fewer); pimdram's thresholds are ceil(high x 32) and int(low x 32)
    spec = load_memory("ramulator2_ddr4_2400r")
    params = engine_params(spec)
    assert (params["wq_high"], params["wq_low"]) == (26, 6)


@pytest.mark.parametrize("mapper,interleave,want", [
    ("RoBaRaCoCh", 0, [["row", 16], ["bank", 2], ["bank_group", 2], ["rank", 1], ["column", 7], ["channel", 1]]),
    ("RoBaRaCoCh", 2, [["row", 16], ["bank", 2], ["bank_group", 2], ["rank", 1], ["column", 5], ["channel", 1],
                       ["column", 2]]),
    ("ChRaBaRoCo", 0, [["rank", 1], ["bank_group", 2], ["bank", 2], ["row", 16], ["column", 7], ["channel", 1]]),
])
def test_ramulator2_channel_and_address_mappers_become_one_mapping(tmp_path, mapper, interleave, want):
    # DDR4, two channels: the channel mapper takes the channel bit `interleave` bits above the 64 B
    # access out of the address; the address mapper splits the rest, column lowest (RoBaRaCoCh:
    # then rank, bank group, bank, row upwards; ChRaBaRoCo: then row, bank, bank group, rank)
    spec = load_memory("ramulator2_ddr4_2400r", {"organization.levels": [
        {"name": "channel", "count": 2}, {"name": "rank", "count": 2}, {"name": "bank_group", "count": 4},
        {"name": "bank", "count": 4}], "address_mapping": "rorabgbachco"})
    data = ramulator_export(spec, "DDR4", addr_mapper=mapper,
                            channel_mapper={"impl": "CacheLineInterleave", "interleave_bits": interleave})
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    raw, _ = import_memory(path)
    assert raw["address_mapping"] == want


def test_ramulator2_v20_style_yaml_needs_its_presets_resolved(tmp_path, monkeypatch):
    v20 = {"Frontend": {"impl": "LoadStoreTrace", "clock_ratio": 1, "path": "t"},
           "MemorySystem": {"impl": "GenericDRAM", "clock_ratio": 1,
                            "DRAM": {"impl": "DDR4", "org": {"preset": "DDR4_8Gb_x8", "channel": 1, "rank": 2},
                                     "timing": {"preset": "DDR4_2400R"}},
                            "Controller": {"impl": "Generic", "Scheduler": {"impl": "FRFCFS"},
                                           "RefreshManager": {"impl": "AllBank"}, "RowPolicy": {"impl": "OpenRowPolicy"}},
                            "AddrMapper": {"impl": "RoBaRaCoCh"}}}
    path = tmp_path / "v20.yaml"
    path.write_text(yaml.safe_dump(v20))
    monkeypatch.setitem(sys.modules, "ramulator", None)
    with pytest.raises(ConfigError, match="ramulator export"):
        import_memory(path)
    # with Ramulator 2.1's package: its DRAM class resolves the presets (a stand-in here, giving the
    # compare preset's exported DRAM)
    spec = load_memory("ramulator2_ddr4_2400r")
    exported = ramulator_export(spec, "DDR4")["memory_system"]["controllers"][0]["dram"]
    seen = {}

    class DDR4:
        def __init__(self, org_preset, timing_preset, **overrides):
            seen.update(org=org_preset, timing=timing_preset, **overrides)

        def to_config(self):
            return exported

    package = types.ModuleType("ramulator")
    package.dram = types.SimpleNamespace(DDR4=DDR4)
    monkeypatch.setitem(sys.modules, "ramulator", package)
    monkeypatch.setitem(sys.modules, "ramulator.dram", package.dram)
    raw, report = import_memory(path)
    assert seen == {"org": "DDR4_8Gb_x8", "timing": "DDR4_2400R", "rank": 2}
    assert resolved(resolve_memory(raw)) == resolved(spec)


def test_a_file_that_is_neither_is_refused(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("Frontend: {}\n")
    with pytest.raises(ConfigError, match="neither"):
        import_memory(path)


# --- the command line ------------------------------------------------------------------------------

def test_config_import_writes_a_yaml_that_loads_as_the_import(tmp_path):
    ini = write(tmp_path, "DDR4_8Gb_x8_3200.ini", DDR4_INI)
    out = tmp_path / "ddr4.yaml"
    result = CliRunner().invoke(cli, ["config", "import", str(ini), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Warning:" not in result.output           # every key of this file carries over
    assert resolved(load_memory(out)) == resolved(load_memory("dramsim3_ddr4_8gb_x8_3200"))
    again = CliRunner().invoke(cli, ["config", "import", str(ini), "-o", str(out)])
    assert again.exit_code != 0 and "exists" in again.output


def test_replay_takes_an_ini_as_memory_and_warns_once(tmp_path):
    ini = write(tmp_path, "HBM2_8Gb_x128.ini", HBM2_INI)
    trace = write(tmp_path, "t.dramsim3", "".join(f"{i * 64:#x} READ {i}\n" for i in range(200)))
    result = CliRunner().invoke(cli, ["replay", str(trace), "--memory", str(ini), "-o", str(tmp_path / "i.h5"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.output.count("Warning:") == 1 and "tRTP_L" in result.output
    preset = CliRunner().invoke(cli, ["replay", str(trace), "--memory", "dramsim3_hbm2_8gb_x128",
                                      "-o", str(tmp_path / "p.h5"), "--no-progress"])
    assert preset.exit_code == 0, preset.output
    with open_stats(tmp_path / "i.h5") as a, open_stats(tmp_path / "p.h5") as b:
        assert a.summary()["cycles"] == b.summary()["cycles"]
