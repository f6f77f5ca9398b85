"""PIM design configs (configs/pim): every design resolves onto its standard, options and base
chains compose as documented, bad designs fail with the dotted path, and normal traffic on a PIM
memory replays with a clean checker run."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pimdram.check import check_command_log
from pimdram.cli import cli
from pimdram.config import list_configs
from pimdram.config.memory import PIM_COMMAND_KINDS, base_chain, load_memory
from pimdram.errors import ConfigError
from pimdram.config.system import load_system
from pimdram.replay import CommandLogExpander, engine_params
from pimdram._engine import Engine

DESIGNS = ["aim", "attacc-bank", "attacc-bankgroup", "attacc-buffer", "hbm-pim", "neupims",
           "neupims-blocked", "papi-attn", "papi-fc"]


def test_every_design_of_the_issue_is_shipped():
    assert list_configs("pim") == DESIGNS


@pytest.mark.parametrize("name", DESIGNS)
def test_design_resolves_onto_its_standard(name):
    spec = load_memory(name)
    chain = base_chain(name)
    standard = load_memory(chain[-1])
    assert spec.name == name and spec.pim.design == name and spec.pim.base == chain[1]
    # the standard's commands and rows are all still there, the design only adds
    assert spec.command_names[:len(standard.commands)] == standard.command_names
    assert len(spec.constraints) > len(standard.constraints)
    pim_cmds = [c for c in spec.commands if c.kind in PIM_COMMAND_KINDS]
    assert any(c.kind == "mac" for c in pim_cmds)
    for c in spec.commands:
        assert not c.unit or c.unit in spec.pim.units
        assert not c.buffer or c.buffer in spec.pim.buffers
    assert any(u.kind == "mac" for u in spec.pim.units.values())


def test_attacc_power_limit_option_sets_the_all_bank_mac_spacing():
    def macab_spacing(spec):
        i = spec.command_index("MACAB")
        return [r.latency for r in spec.constraints if r.from_cmd == i and r.to_cmd == i]

    limited = load_memory("attacc-bank")
    unlimited = load_memory("attacc-bank", {"options.power_limit": "unlimited"})
    assert limited.timing["nCCD_AB"] == 6 and macab_spacing(limited) == [6]
    assert unlimited.timing["nCCD_AB"] == 4 and macab_spacing(unlimited) == [4]
    assert limited.pim.options["power_limit"] == "limited"
    assert unlimited.pim.options["power_limit"] == "unlimited"
    # a plain --set of the timing wins over the option
    assert load_memory("attacc-bank", {"timing.nCCD_AB": 5}).timing["nCCD_AB"] == 5


# AttAcc's speed bins (pim_designs.md, "AttAcc: the public simulator's command rules"):
# rate -> tCK ns, nRCD, nRP, nRAS, nRC, nRTP_L, nFAW, nCCD_AB and nCCD_SB under the power constraint
ATTACC_SPEEDS = {
    "4.8gbps": (0.833, 17, 17, 41, 58, 8, 36, 6, 6),
    "5.2gbps": (0.769, 19, 19, 45, 63, 8, 39, 6, 6),
    "5.6gbps": (0.714, 20, 20, 48, 68, 9, 42, 6, 7),
    "6.0gbps": (0.666, 21, 21, 51, 72, 9, 45, 6, 7),
    "6.4gbps": (0.625, 23, 23, 55, 77, 10, 48, 7, 8),
}


@pytest.mark.parametrize("speed", list(ATTACC_SPEEDS))
@pytest.mark.parametrize("design", ["attacc-bank", "attacc-bankgroup", "attacc-buffer"])
def test_attacc_speed_bins_and_power_limit_follow_the_table(design, speed):
    tck, rcd, rp, ras, rc, rtp, faw, ab, sb = ATTACC_SPEEDS[speed]
    spec = load_memory(design, {"options.speed": speed})
    t = spec.timing
    assert spec.tck_ns == tck
    assert (t["nRCD"], t["nRCD_WR"], t["nRP"], t["nRAS"], t["nRC"], t["nRTP_L"], t["nFAW"]) == (rcd, rcd, rp, ras, rc, rtp, faw)
    assert (t["nCCD_AB"], t["nCCD_SB"]) == (ab, sb)
    # the refresh times stay 3.9 us and 350 ns at the nominal clock (rate / 4)
    rate = float(speed[:3]) / 4
    assert (t["nREFI"], t["nRFC"]) == (round(3900 * rate), round(350 * rate))
    npc = load_memory(design, {"options.speed": speed, "options.power_limit": "unlimited"})
    assert (npc.timing["nCCD_AB"], npc.timing["nCCD_SB"]) == (4, 4)
    assert spec.pim.options == {**spec.pim.options, "speed": speed, "power_limit": "limited"}


def test_attaccs_default_speed_is_hbm3_5_2gbps():
    plain = load_memory("hbm3_5.2gbps")
    attacc = load_memory("hbm3_attacc")
    assert attacc.tck_ns == plain.tck_ns
    assert {k: v for k, v in attacc.timing.items() if not k.startswith("nCCD_AB") and not k.startswith("nCCD_SB")} \
        == plain.timing
    assert attacc.constraint_table().tolist() == plain.constraint_table().tolist()


def test_attacc_bankgroup_power_limit_sets_the_same_bank_mac_spacing():
    def macsb_spacing(spec):
        i = spec.command_index("MACSB")
        return [r.latency for r in spec.constraints if r.from_cmd == i and r.to_cmd == i]

    assert macsb_spacing(load_memory("attacc-bankgroup")) == [6]
    assert macsb_spacing(load_memory("attacc-bankgroup", {"options.power_limit": "unlimited"})) == [4]
    assert macsb_spacing(load_memory("attacc-bankgroup", {"options.speed": "6.4gbps"})) == [8]


# pim_designs.md, DRAM path components in pJ/bit
ACT, CELL, COLUMN_TO_BG_MUX, BG_MUX_TO_IO, TSV, INTERPOSER = 0.11, 0.44, 1.01, 1.23, 0.5, 0.3


@pytest.mark.parametrize("design, path", [
    ("attacc-bank", (ACT, CELL)),
    ("attacc-bankgroup", (ACT, CELL, COLUMN_TO_BG_MUX)),
    ("attacc-buffer", (ACT, CELL, COLUMN_TO_BG_MUX, BG_MUX_TO_IO, TSV)),
    ("papi-fc", (ACT, CELL)),
])
def test_attaccs_per_byte_energy_includes_the_activation_and_says_so(design, path):
    spec = load_memory(design)
    e = spec.pim.energy
    assert e["pim_access_pj_per_byte"] == pytest.approx(8 * sum(path))
    # the GPU's read path is the whole of it, interposer included (the A100's figure in dgx-a100)
    gpu = load_system("dgx-attacc").devices["gpu"].energy
    assert gpu.memory_pj_per_byte == pytest.approx(8 * (ACT + CELL + COLUMN_TO_BG_MUX + BG_MUX_TO_IO + TSV
                                                        + INTERPOSER))
    # ACT is one of the components: the activates must not add energy of their own
    assert set(spec.pim.access_includes) == {"activate", "precharge"}
    assert spec.to_dict()["pim"]["energy"]["pim_access_includes"] == ["activate", "precharge"]


@pytest.mark.parametrize("value, message", [
    ("[activate, jump]", r"pim\.energy\.pim_access_includes: unknown command kind 'jump'"),
    ("activate", r"pim\.energy\.pim_access_includes: expected"),
])
def test_pim_access_includes_names_command_kinds(tmp_path, value, message):
    text = MINIMAL + f"  energy:\n    pim_access_pj_per_byte: 4.4\n    pim_access_includes: {value}\n"
    with pytest.raises(ConfigError, match=message):
        load_memory(write(tmp_path, text))
    without_figure = MINIMAL + "  energy:\n    pim_access_includes: [activate]\n"
    with pytest.raises(ConfigError, match=r"give that figure too"):
        load_memory(write(tmp_path, without_figure))


def test_attacc_act_limits_option_adds_the_activate_window():
    plain = load_memory("attacc-bank")
    faw = load_memory("attacc-bank", {"options.act_limits": "faw"})
    act = faw.command_index("ACTAB")
    windows = [r for r in faw.constraints if r.from_cmd == act and r.to_cmd == act and r.window == 4]
    assert len(windows) == 1 and windows[0].latency == faw.timing["nFAW"]
    assert len(faw.constraints) == len(plain.constraints) + 2


def test_derived_design_inherits_commands_and_options_of_its_base():
    assert base_chain("papi-fc") == ["papi-fc", "attacc-bank", "hbm3_attacc", "hbm3_5.2gbps"]
    fc = load_memory("papi-fc", {"options.power_limit": "unlimited"})
    attacc = load_memory("attacc-bank")
    assert fc.command_names == attacc.command_names
    assert fc.timing["nCCD_AB"] == 4
    assert fc.pim.units["gemv"].fpus == 4 and attacc.pim.units["gemv"].fpus == 1
    assert fc.pim.energy == attacc.pim.energy


def test_unit_rates_follow_fpus_lanes_and_clock():
    tck = load_memory("papi-attn").tck_ns
    assert load_memory("attacc-bank").pim.units["gemv"].macs_per_cycle(tck) == 16
    assert load_memory("papi-fc").pim.units["gemv"].macs_per_cycle(tck) == 64
    attn = load_memory("papi-attn").pim.units["gemv"]
    assert attn.banks_per_unit == 2
    assert attn.macs_per_cycle(tck) == pytest.approx(16 * 666 * 0.769 / 1000)
    assert load_memory("aim").pim.units["pu"].macs_per_cycle(0.5) == 8          # 1 GHz PU, 2 GHz clock
    assert load_memory("hbm-pim").pim.units["pim"].macs_per_cycle(1.0) == pytest.approx(4.8)


def test_neupims_organisation_and_its_blocked_variant():
    dual = load_memory("neupims")
    blocked = load_memory("neupims-blocked")
    assert dual.counts == blocked.counts == [32, 2, 4, 4]
    assert dual.timing["nCCD_S"] == 1 and dual.timing["nGWRITE"] == 96
    assert (dual.pim.mode, dual.pim.row_buffers) == ("concurrent", 2)
    assert (blocked.pim.mode, blocked.pim.row_buffers) == ("blocked", 1)
    assert dual.commands[dual.command_index("COMP")].row_buffer == "pim"
    assert blocked.commands[blocked.command_index("COMP")].row_buffer == "normal"
    assert dual.pim.command_energy["COMP"] == {"like": "RD", "factor": 4.0}


@pytest.mark.parametrize("name", DESIGNS)
def test_normal_traffic_on_a_pim_memory_replays_legally(name):
    spec = load_memory(name)
    engine = Engine(engine_params(spec, command_log=True))
    rng = np.random.default_rng(3)
    n = 600
    address = (rng.integers(0, spec.capacity_bytes // spec.access_bytes, n) * spec.access_bytes).astype(np.uint64)
    engine.feed(address, (rng.random(n) < 0.3).astype(np.uint8), np.full(n, -1, np.int64))
    engine.run(True)
    result = check_command_log(spec, CommandLogExpander(engine, spec)(engine.take_log()))
    assert result.ok, str(result)


# --- errors ----------------------------------------------------------------------------------

def write(tmp_path, text, name="design.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


MINIMAL = """
name: test-pim
base: hbm3_5.2gbps
commands:
  MACAB: {kind: mac, scope: channel, bus: column, unit: gemv}
constraints:
  - {level: channel, from: MACAB, to: MACAB, latency: nCCD_L}
pim:
  units:
    gemv: {kind: mac, level: bank, lanes: 16}
"""


def test_a_minimal_design_file_loads(tmp_path):
    spec = load_memory(write(tmp_path, MINIMAL))
    assert spec.pim.units["gemv"].lanes == 16 and spec.pim.mode == "concurrent"


@pytest.mark.parametrize("change, message", [
    (("lanes: 16}", "lanes: 16, speed: 3}"), r"pim\.units\.gemv\.speed: unknown key"),
    (("unit: gemv}", "unit: nope}"), r"commands\.MACAB\.unit: unknown unit 'nope'"),
    ((", unit: gemv}", "}"), r"commands\.MACAB: a mac command needs the unit"),
    (("kind: mac, level", "kind: mac, level: rank, x"), r"pim\.units\.gemv\.level: expected one of"),
    (("scope: channel, bus", "scope: bank_group, banks: same, bus"), r"commands\.MACAB\.banks: 'same'"),
    (("bus: column, unit", "bus: column, row_buffer: pim, unit"), r"row_buffer: 'pim' needs pim\.row_buffers: 2"),
    (("base: hbm3_5.2gbps", "base: hbm9"), r"unknown dram preset 'hbm9'"),
    (("kind: mac, level: bank, lanes: 16", "kind: function, level: bank, elements_per_cycle: 4, latency: 1"),
     r"pim\.units: at least one unit of kind mac"),
])
def test_bad_design_names_the_dotted_path(tmp_path, change, message):
    old, new = change
    assert old in MINIMAL
    with pytest.raises(ConfigError, match=message):
        load_memory(write(tmp_path, MINIMAL.replace(old, new, 1)))


def test_pim_commands_need_a_pim_section(tmp_path):
    text = MINIMAL.split("pim:")[0]
    with pytest.raises(ConfigError, match=r"commands\.MACAB\.kind: PIM commands need a PIM design"):
        load_memory(write(tmp_path, text))


def test_option_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"options\.power_limit: unknown choice 'maybe'; expected one of limited, unlimited"):
        load_memory("attacc-bank", {"options.power_limit": "maybe"})
    with pytest.raises(ConfigError, match=r"options\.turbo: no such option"):
        load_memory("attacc-bank", {"options.turbo": "on"})
    with pytest.raises(ConfigError, match=r"options\.turbo: no such option \(known: none\)"):
        load_memory("hbm3_5.2gbps", {"options.turbo": "on"})
    bad = MINIMAL + "options:\n  x:\n    default: a\n    choices: {a: {controller: {read_queue: 8}}}\n"
    with pytest.raises(ConfigError, match=r"options\.x\.choices\.a\.controller: an option choice may set timing"):
        load_memory(write(tmp_path, bad))


def test_a_circular_base_chain_is_an_error(tmp_path):
    write(tmp_path, "name: a\nbase: " + str(tmp_path / "b.yaml") + "\n", "a.yaml")
    write(tmp_path, "name: b\nbase: " + str(tmp_path / "a.yaml") + "\n", "b.yaml")
    with pytest.raises(ConfigError, match="circular"):
        load_memory(tmp_path / "a.yaml")


SYSTEM = """
name: s
memories:
  m: {standard: STANDARD, pim: DESIGN, stacks: 1, channels_per_stack: 16, banks_per_channel: 64, rows_per_bank: 16384, row_bytes: 1024}
devices:
  gpu: {kind: gpu, memory: m, peak_tflops: 312}
mapping: {policy: gpu-only, xpu: gpu}
"""


@pytest.mark.parametrize("standard, design, message", [
    ("hbm3_5.2gbps", "nope", r"memories\.m\.pim: unknown pim preset 'nope'"),
    ("hbm2_2gbps", "papi-fc", r"memories\.m\.pim: PIM design 'papi-fc' is built on 'hbm3_5.2gbps' "
                              r"\(papi-fc -> attacc-bank -> hbm3_attacc -> hbm3_5.2gbps\), not on this memory's standard 'hbm2_2gbps'"),
    ("hbm7", "attacc-bank", r"memories\.m\.standard: unknown dram preset 'hbm7'"),
])
def test_system_memories_name_a_design_built_on_their_standard(tmp_path, standard, design, message):
    path = write(tmp_path, SYSTEM.replace("STANDARD", standard).replace("DESIGN", design), "s.yaml")
    with pytest.raises(ConfigError, match=message):
        load_system(path)


def test_every_shipped_system_names_existing_designs():
    for name in list_configs("systems"):
        system = load_system(name)
        for memory in system.memories.values():
            if memory.pim:
                assert base_chain(memory.pim)[-1] == memory.standard


def test_cli_config_show_and_list_include_pim_designs():
    runner = CliRunner()
    out = runner.invoke(cli, ["config", "show", "attacc-bank", "--set", "options.power_limit=unlimited", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["timing"]["nCCD_AB"] == 4
    assert data["pim"]["options"]["power_limit"] == {"value": "unlimited", "choices": ["limited", "unlimited"]}
    assert data["commands"]["MACAB"] == {"kind": "mac", "scope": "channel", "bus": "column", "bus_cycles": 1,
                                         "unit": "gemv"}
    listed = runner.invoke(cli, ["config", "list"]).output
    assert "PIM designs (configs/pim):" in listed and "  neupims-blocked" in listed
    bad = runner.invoke(cli, ["config", "show", "attacc-bank", "--set", "options.power_limit=x"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "unknown choice 'x'" in bad.output


def test_a_design_declares_its_lowering_and_must_have_its_commands(tmp_path):
    assert load_memory("attacc-bankgroup").pim.lowering == {"mapping": "attacc", "kv_cache": "head",
                                                             "mode": "bankgroup"}
    assert load_memory("papi-attn").pim.lowering["mode"] == "bank"           # inherited from attacc-bank
    assert load_memory("neupims").pim.lowering["mapping"] == "gemv"
    text = MINIMAL + "  lowering: {mapping: attacc, mode: bank}\n"
    with pytest.raises(ConfigError, match=r"pim\.lowering\.mode: AttAcc's bank-level mapping needs command\(s\) "
                                          r"ACTAB, PREAB, WRGB, MVSB, MVGB, SFM"):
        load_memory(write(tmp_path, text))
