"""Memory-standard presets: do they resolve, to the cycles, bandwidths and capacities the sources give?"""
import copy
import math
import os
from pathlib import Path

import pytest
import yaml

from pimdram.config import find_config, list_configs, load_yaml
from pimdram.config.memory import apply_overrides, load_memory, parse_set_options, resolve_memory
from pimdram.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

PRESETS = list_configs("dram") + list_configs("compare")
SHIPPED = ["ddr4_3200", "hbm2_2gbps", "hbm3_5.2gbps", "hbm3_6.4gbps", "gddr6_14gbps"]
GiB = 1 << 30


def raw_preset(name):
    return load_yaml(find_config("dram", name, kinds=("dram", "compare")))


def resolve_error(raw):
    """The one ConfigError resolving `raw` raises, as its message."""
    with pytest.raises(ConfigError) as info:
        resolve_memory(raw, source="test.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


# --- every preset ----------------------------------------------------------------------------

def test_the_shipped_presets_are_all_found():
    assert set(SHIPPED) <= set(list_configs("dram"))


@pytest.mark.parametrize("name", PRESETS)
def test_preset_resolves_and_round_trips(name):
    spec = load_memory(name)
    assert spec.name == name  # file stem = name
    assert spec.constraints and spec.refresh is not None
    assert all(r.latency >= 0 for r in spec.constraints)
    assert all(r.level > 0 for r in spec.constraints if r.sibling)
    # the printed config is valid YAML carrying the resolved cycles
    shown = yaml.safe_load(spec.to_yaml())
    assert shown["timing"]["nRCD"] == spec.timing["nRCD"]
    assert len(shown["constraints"]) == len(spec.constraints)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_mapping_covers_every_address_bit(name):
    spec = load_memory(name)
    bits = sum(b for _, b in spec.address_mapping) + spec.offset_bits
    assert 1 << bits == spec.capacity_bytes


@pytest.mark.parametrize("name", PRESETS)
def test_preset_runs_closed_page(name):
    spec = load_memory(name, {"controller.row_policy": "closed"})
    assert spec.controller.row_policy == "closed"
    assert spec.commands_of_kind("read_precharge") and spec.commands_of_kind("write_precharge")


# --- resolved cycles against the reference tables -----------------------------------------------

def test_ddr4_3200_ns_timings_round_up_to_the_jedec_cycles():
    t = load_memory("ddr4_3200").timing
    # JESD79-4 DDR4-3200AA at tCK 0.625 ns; 32 / 0.625 = 51.2 and 45.75 / 0.625 = 73.2 round up
    expected = dict(nCL=22, nCWL=16, nRCD=22, nRP=22, nRAS=52, nRC=74, nWR=24, nRTP=12, nWTR_S=4,
                    nWTR_L=12, nCCD_S=4, nCCD_L=8, nRRD_S=4, nRRD_L=8, nFAW=34, nRFC=560, nREFI=12480)
    assert {k: t[k] for k in expected} == expected


def test_ns_to_cycles_rounds_up_but_not_on_float_noise():
    assert load_memory("ddr4_3200", {"timing.tRCD": 13.76}).timing["nRCD"] == 23
    assert load_memory("ddr4_3200", {"timing.tRCD": 13.75}).timing["nRCD"] == 22
    # a cycle value replaces its ns twin
    assert load_memory("ddr4_3200", {"timing.nRCD": 30}).timing["nRCD"] == 30


def test_hbm3_5_2gbps_is_attaccs_table():
    spec = load_memory("hbm3_5.2gbps")
    assert spec.tck_ns == 0.769
    expected = dict(nBL=2, nCL=19, nRCD=19, nRCD_WR=19, nRP=19, nRAS=45, nRC=63, nWR=21, nRTP_S=6,
                    nRTP_L=8, nCWL=6, nCCD_S=2, nCCD_L=4, nRRD_S=2, nRRD_L=4, nFAW=39, nWTR_S=8,
                    nWTR_L=11, nRTW=3, nREFI=5070, nRFC=455, nRFCsb=260, nRREFD=11)
    assert {k: spec.timing[k] for k in expected} == expected
    assert spec.levels == ["channel", "pseudo_channel", "sid", "bank_group", "bank"]
    assert spec.counts == [16, 2, 2, 4, 4]
    assert spec.columns * spec.access_bytes == 1024  # 1 KB rows


def test_hbm3_6_4gbps_is_the_reference_speed_bin():
    spec = load_memory("hbm3_6.4gbps")
    expected = dict(nBL=2, nCL=20, nRCD=31, nRCD_WR=15, nRP=26, nRAS=45, nRC=72, nWR=33, nRTP=9,
                    nCWL=10, nCCD_S=2, nCCD_L=4, nCCD_R=3, nRRD_S=4, nRRD_L=5, nFAW=24, nWTR_S=7,
                    nWTR_L=10, nRTW=20, nPPD=2, nREFI=6240, nRFC=560, nRFCpb=320, nRREFD=8, nREFIpb=195)
    assert {k: spec.timing[k] for k in expected} == expected
    assert spec.commands[spec.command_index("ACT")].bus_cycles == 2
    # the SID switch is a sibling row at sid level
    sid = spec.levels.index("sid")
    rd = spec.command_index("RD")
    rows = [r for r in spec.constraints if r.level == sid and r.sibling and r.from_cmd == rd and r.to_cmd == rd]
    assert [r.latency for r in rows] == [3]


def test_hbm2_and_gddr6_are_the_reference_speed_bins():
    h = load_memory("hbm2_2gbps").timing
    assert (h["nCL"], h["nRCD"], h["nRCD_WR"], h["nRP"], h["nRAS"], h["nRC"], h["nFAW"], h["nRFC"],
            h["nRFCpb"], h["nREFI"]) == (14, 14, 12, 14, 34, 48, 15, 350, 160, 3900)
    g = load_memory("gddr6_14gbps").timing
    assert (g["nCL"], g["nRCD"], g["nRCD_WR"], g["nRP"], g["nRAS"], g["nRC"], g["nFAW"], g["nRFC"],
            g["nRFCpb"], g["nRREFD"], g["nREFI"]) == (24, 27, 16, 27, 53, 79, 29, 211, 106, 15, 3333)


def test_faw_window_rows_count_four_activates():
    for name in SHIPPED:
        spec = load_memory(name)
        act = spec.command_index("ACT")
        faw = [r for r in spec.constraints if r.window > 1]
        assert [(r.from_cmd, r.to_cmd, r.window, r.latency) for r in faw] == [(act, act, 4, spec.timing["nFAW"])]


# --- peak bandwidth and capacity, computed by hand ------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("ddr4_3200", 3200e6 * 64 / 8),                 # 25.6 GB/s: 3200 MT/s x 8 bytes
    ("hbm2_2gbps", 2e9 * 1024 / 8),                 # 256 GB/s: 1024 pins x 2 Gbps
    ("hbm3_5.2gbps", 16 * 2 * 32 / (2 * 0.769e-9)),  # 665.8 GB/s (5.2 Gbps x 1024 pins, tCK 0.769)
    ("hbm3_6.4gbps", 6.4e9 * 1024 / 8),             # 819.2 GB/s
    ("gddr6_14gbps", 14e9 * 32 / 8),                # 56 GB/s: x16 device = 2 x 16 pins x 14 Gbps
    ("dramsim3_hbm2_8gb_x128", 256e9),
    ("dramsim3_ddr4_8gb_x8_3200", 64 / (4 * 0.63e-9)),
])
def test_peak_bandwidth(name, expected):
    assert load_memory(name).peak_bandwidth == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name, expected", [
    ("ddr4_3200", 2 * 8 * GiB),            # 2 ranks x 8 devices x 8 Gb
    ("hbm2_2gbps", 16 * GiB),              # 8 ch x 2 pc x 16 banks x 65536 rows x 1 KB
    ("hbm3_5.2gbps", 16 * GiB),            # AttAcc: 16 GB per stack
    ("hbm3_6.4gbps", 16 * GiB),            # 16 Gb x 8-high
    ("gddr6_14gbps", 16 * GiB // 8),       # one 16 Gb device
    ("dramsim3_hbm2_8gb_x128", 8 * GiB),
])
def test_capacity(name, expected):
    assert load_memory(name).capacity_bytes == expected


def test_hbm_streams_spread_over_channels_first():
    # a 64 B request (two accesses) stays in one row; consecutive requests go to other channels
    for name in ("hbm2_2gbps", "hbm3_5.2gbps", "hbm3_6.4gbps"):
        spec = load_memory(name)
        low_column_bits = spec.request_bytes.bit_length() - spec.access_bytes.bit_length()
        assert spec.address_mapping[-1] == ("column", low_column_bits)
        assert [f for f, _ in spec.address_mapping[-3:-1]] == ["pseudo_channel", "channel"]


# --- refresh ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hbm2_2gbps", "hbm3_5.2gbps", "hbm3_6.4gbps", "gddr6_14gbps"])
def test_per_bank_refresh_option(name):
    spec = load_memory(name, {"controller.refresh": "per_bank"})
    assert spec.refresh.scope == spec.bank_level
    assert spec.commands[spec.refresh.command].kind == "refresh"
    assert spec.refresh.interval == spec.timing["nREFI"]
    assert load_memory(name).refresh.scope < spec.bank_level


def test_ddr4_has_no_per_bank_refresh():
    with pytest.raises(ConfigError, match="controller.refresh"):
        load_memory("ddr4_3200", {"controller.refresh": "per_bank"})


def test_all_bank_refresh_waits_nrfc_before_the_next_activate():
    spec = load_memory("hbm3_5.2gbps")
    ref, act = spec.command_index("REFab"), spec.command_index("ACT")
    assert max(r.latency for r in spec.constraints if r.from_cmd == ref and r.to_cmd == act) == 455


# --- errors: one ConfigError naming the dotted path -------------------------------------------------

def test_unknown_key_names_its_path():
    raw = apply_overrides(raw_preset("hbm2_2gbps"), {"controller.bogus": 1})
    message = resolve_error(raw)
    assert "controller.bogus" in message and "unknown key" in message


def test_missing_timing_used_by_a_row():
    raw = copy.deepcopy(raw_preset("ddr4_3200"))
    del raw["timing"]["tRRD_L"]
    message = resolve_error(raw)
    assert "constraints[" in message and ".latency" in message and "nRRD_L" in message


def test_unknown_command_in_a_row():
    raw = copy.deepcopy(raw_preset("gddr6_14gbps"))
    raw["constraints"][2]["to"] = ["WR", "WRX"]
    message = resolve_error(raw)
    assert "constraints[2].to" in message and "WRX" in message


def test_non_power_of_two_count_in_the_mapping():
    raw = apply_overrides(raw_preset("hbm3_6.4gbps"), {"organization.rows": 12000})
    message = resolve_error(raw)
    assert "address_mapping" in message and "12000" in message and "power of two" in message


def test_mapping_bit_count_mismatch():
    mapping = [["row", 16], ["rank", 1], ["bank", 2], ["column", 6], ["bank_group", 2]]
    raw = apply_overrides(raw_preset("ddr4_3200"), {"address_mapping": mapping})
    message = resolve_error(raw)
    assert "address_mapping" in message and "column needs 7 bits" in message


def test_bad_set_syntax():
    with pytest.raises(ConfigError, match="--set 'timing.nCL'"):
        parse_set_options(["timing.nCL"])
    with pytest.raises(ConfigError, match="empty key"):
        parse_set_options(["=3"])
    assert parse_set_options(["timing.nCL=16", "controller.row_policy=closed"]) == {
        "timing.nCL": 16, "controller.row_policy": "closed"}


def test_circular_timing_expressions():
    raw = apply_overrides(raw_preset("ddr4_3200"), {"timing.nRC": "nRAS + nX", "timing.nX": "nRC - 1"})
    message = resolve_error(raw)
    assert "timing.n" in message and "circular" in message


def test_sibling_rows_at_channel_level_are_refused():
    raw = copy.deepcopy(raw_preset("gddr6_14gbps"))
    raw["constraints"].append({"level": "channel", "from": "RD", "to": "RD", "latency": 3, "sibling": True})
    message = resolve_error(raw)
    assert f"constraints[{len(raw['constraints']) - 1}].sibling" in message


def test_expression_values_resolve_with_their_dependencies():
    spec = load_memory("ddr4_3200", {"timing.nCL": 24})
    rd, wr = spec.command_index("RD"), spec.command_index("WR")
    rank = spec.levels.index("rank")
    rtw = [r.latency for r in spec.constraints if r.level == rank and not r.sibling
           and r.from_cmd == rd and r.to_cmd == wr]
    assert rtw == [24 + 4 + 2 - 16]
    assert spec.read_latency == 24 + 4
    assert math.isclose(spec.tck_ns, 0.625)


def test_zero_burst_length_is_a_config_error():
    with pytest.raises(ConfigError, match="timing.nBL: a burst takes at least one cycle"):
        load_memory("ddr4_3200", {"timing.nBL": 0})


# --- mapping strings, the config search path, invalid YAML (docs/reliability.md, 9) --------------

def test_ramulator_style_mapping_strings_expand_by_level():
    # DDR4-3200: 1 channel (no bits), 2 ranks, 4 bank groups x 4 banks, 2^16 rows, 2^7 columns of 64 B.
    # "Ba" without "Bg" stands for bank group and bank; "Ra" for every level between channel and
    # bank group; most significant first
    spec = load_memory("ddr4_3200", {"address_mapping": "RoBaRaCoCh"})
    assert spec.address_mapping == [("row", 16), ("bank_group", 2), ("bank", 2), ("rank", 1), ("column", 7)]
    assert spec.offset_bits == 6
    # with "Bg", "Ba" is the bank alone; order follows the string
    spec = load_memory("ddr4_3200", {"address_mapping": "ChRaBgBaRoCo"})
    assert spec.address_mapping == [("rank", 1), ("bank_group", 2), ("bank", 2), ("row", 16), ("column", 7)]
    # HBM3: "Ra" is the pseudo-channel and the stack ID
    spec = load_memory("hbm3_5.2gbps", {"address_mapping": "RoBaRaCoCh"})
    assert spec.address_mapping == [("row", 14), ("bank_group", 2), ("bank", 2), ("pseudo_channel", 1), ("sid", 1),
                                    ("column", 5), ("channel", 4)]


def test_a_bad_mapping_string_names_the_field():
    with pytest.raises(ConfigError, match=r"--set address_mapping: 'RoXxCh': unknown field 'Xx' \(use Ch, Ra, Bg, "):
        load_memory("ddr4_3200", {"address_mapping": "RoXxCh"})
    with pytest.raises(ConfigError, match="address_mapping: row needs 16 bits, the mapping gives 0"):
        load_memory("ddr4_3200", {"address_mapping": "BaRaCoCh"})


def test_config_path_presets_come_first(tmp_path, monkeypatch):
    (tmp_path / "dram").mkdir()
    text = (ROOT / "configs" / "dram" / "ddr4_3200.yaml").read_text().replace("read_queue: 32", "read_queue: 7")
    assert "read_queue: 7" in text
    (tmp_path / "dram" / "ddr4_3200.yaml").write_text(text)
    (tmp_path / "dram" / "mine.yaml").write_text(text)
    monkeypatch.setenv("PIMDRAM_CONFIG_PATH", f"{tmp_path}{os.pathsep}/nonexistent")
    assert load_memory("ddr4_3200").controller.read_queue == 7
    assert load_memory("mine").controller.read_queue == 7
    assert "mine" in list_configs("dram")


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nstandard: y\norganization: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: invalid YAML: "):
        load_memory(path)
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match=rf"^{path}:1: not UTF-8 text"):
        load_memory(path)
