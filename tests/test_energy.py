"""The IDD energy model: hand-computed DDR4 numbers, background-only runs, monotonicity, bad input."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pimdram.config.memory import load_memory
from pimdram.energy import (
    COLUMNS,
    EnergyInputError,
    command_energies,
    dram_energy,
    power_level,
    power_nodes_per_channel,
)
from pimdram.errors import ConfigError, PimdramError

# the DDR4 compare preset with Micron MT40A1G8 currents (the numbers below were worked out with
# them; the preset itself now carries DRAMsim3's .ini values)
DDR4 = load_memory("dramsim3_ddr4_8gb_x8_3200", {"power.idd0": 58, "power.idd2n": 44, "power.idd3n": 61,
                                                 "power.idd4r": 140, "power.idd4w": 156, "power.idd5b": 190})
HBM2 = load_memory("dramsim3_hbm2_8gb_x128")

# DDR4 compare preset by hand: tCK 0.63 ns, VDD 1.2 V, 8 devices per rank; mA * V * ns = pJ.
PJ = 1e-12
ACT_PAIR = (58 * 74 - (61 * 52 + 44 * (74 - 52))) * 1.2 * 0.63 * 8 * PJ   # 919.296 pJ
READ = (140 - 61) * 1.2 * 4 * 0.63 * 8 * PJ                             # 1911.168 pJ
WRITE = (156 - 61) * 1.2 * 4 * 0.63 * 8 * PJ                            # 2298.24 pJ
REFRESH = (190 - 61) * 1.2 * 560 * 0.63 * 8 * PJ                        # 436907.52 pJ
ACTIVE_CYCLE = 61 * 1.2 * 0.63 * 8 * PJ                                 # 368.928 pJ
PRECHARGED_CYCLE = 44 * 1.2 * 0.63 * 8 * PJ                             # 266.112 pJ


def ddr4_counts(**given):
    return {name: np.array([given.get(name, 0)]) for name in DDR4.command_names}


def test_hand_numbers_per_command():
    e = command_energies(DDR4)
    assert e["activate"] == pytest.approx(919.296e-12, rel=1e-12)
    assert e["read"] == pytest.approx(1911.168e-12, rel=1e-12)
    assert e["write"] == pytest.approx(2298.24e-12, rel=1e-12)
    assert e["refresh"] == pytest.approx(436907.52e-12, rel=1e-12)
    assert e["active_cycle"] == pytest.approx(368.928e-12, rel=1e-12)
    assert e["precharged_cycle"] == pytest.approx(266.112e-12, rel=1e-12)


def test_ddr4_run_by_hand():
    counts = ddr4_counts(ACT=10, PRE=7, RD=100, RDA=5, WR=20, WRA=3, REFab=2)
    out = dram_energy(DDR4, counts, np.array([6000]), 10000)
    assert set(out) == set(COLUMNS)
    assert all(v.dtype == np.float64 and v.shape == (1,) for v in out.values())
    # auto-precharge reads/writes count as reads/writes; PRE and the precharge half of RDA/WRA
    # are carried by the activate pair
    assert out["activate_j"][0] == pytest.approx(10 * ACT_PAIR)
    assert out["read_j"][0] == pytest.approx(105 * READ)
    assert out["write_j"][0] == pytest.approx(23 * WRITE)
    assert out["refresh_j"][0] == pytest.approx(2 * REFRESH)
    # two ranks: 2 x 10000 node-cycles, 6000 of them with a bank open
    assert out["background_j"][0] == pytest.approx(6000 * ACTIVE_CYCLE + 14000 * PRECHARGED_CYCLE)
    parts = sum(out[c] for c in COLUMNS if c != "total_j")
    assert out["total_j"][0] == pytest.approx(parts[0], rel=1e-15)
    assert out["total_j"][0] == pytest.approx(9.19296e-09 + 2.0067264e-07 + 5.285952e-08
                                              + 8.7381504e-07 + 2.2135680e-06 + 3.7255680e-06)


def test_zero_counts_give_background_only():
    out = dram_energy(DDR4, ddr4_counts(), np.array([0]), 5000)
    for c in ("activate_j", "read_j", "write_j", "refresh_j"):
        assert out[c][0] == 0.0
    assert out["background_j"][0] == pytest.approx(2 * 5000 * PRECHARGED_CYCLE)
    assert out["total_j"][0] == out["background_j"][0]
    empty = dram_energy(DDR4, {}, np.array([0]), 0)
    assert all(empty[c][0] == 0.0 for c in COLUMNS)


def test_per_channel_values_are_independent():
    n = HBM2.n_channels
    counts = {"ACT": np.arange(n), "RD": 3 * np.arange(n)}
    out = dram_energy(HBM2, counts, np.zeros(n), 100)
    e = command_energies(HBM2)
    assert np.allclose(out["activate_j"], np.arange(n) * e["activate"])
    assert np.allclose(out["read_j"], 3 * np.arange(n) * e["read"])
    assert np.allclose(out["background_j"], 100 * e["precharged_cycle"])   # one rank per channel


def test_power_nodes():
    assert DDR4.levels[power_level(DDR4)] == "rank" and power_nodes_per_channel(DDR4) == 2
    assert HBM2.levels[power_level(HBM2)] == "rank" and power_nodes_per_channel(HBM2) == 1


def test_all_bank_activate_opens_every_bank_of_its_scope():
    spec = copy.deepcopy(DDR4)
    spec.commands[spec.command_index("ACT")].scope = spec.levels.index("bank_group")
    out = dram_energy(spec, {"ACT": np.array([1])}, np.array([0]), 0)
    assert out["activate_j"][0] == pytest.approx(4 * ACT_PAIR)


def test_per_bank_refresh_uses_nrfcpb():
    spec = copy.deepcopy(DDR4)
    spec.commands[spec.command_index("REFab")].scope = len(spec.levels) - 1
    spec.timing["nRFCpb"] = 280
    out = dram_energy(spec, {"REFab": np.array([1])}, np.array([0]), 0)
    assert out["refresh_j"][0] == pytest.approx(REFRESH / 2)
    spec.power["idd5pb"] = 61 + (190 - 61) / 4
    out = dram_energy(spec, {"REFab": np.array([1])}, np.array([0]), 0)
    assert out["refresh_j"][0] == pytest.approx(REFRESH / 8)


@settings(max_examples=60, deadline=None)
@given(base=st.lists(st.integers(0, 1000), min_size=7, max_size=7), which=st.integers(0, 6),
       extra=st.integers(1, 1000), active=st.integers(0, 20000), more_active=st.integers(1, 100))
def test_energy_grows_with_every_counter(base, which, extra, active, more_active):
    names = DDR4.command_names
    cycles = 10000
    counts = {n: np.array([v]) for n, v in zip(names, base)}
    before = dram_energy(DDR4, counts, np.array([active]), cycles)
    more = dict(counts)
    more[names[which]] = counts[names[which]] + extra
    after = dram_energy(DDR4, more, np.array([active]), cycles)
    grows = names[which] != "PRE"          # a precharge is paid for by its activate
    assert (after["total_j"][0] > before["total_j"][0]) == grows
    assert after["total_j"][0] >= before["total_j"][0]
    # an open bank costs more than a closed one (IDD3N > IDD2N), and a longer run costs more
    busier = dram_energy(DDR4, counts, np.array([min(active + more_active, 2 * cycles)]), cycles)
    assert busier["total_j"][0] >= before["total_j"][0]
    longer = dram_energy(DDR4, counts, np.array([active]), cycles + 1)
    assert longer["total_j"][0] > before["total_j"][0]


def test_bad_inputs_are_errors():
    with pytest.raises(EnergyInputError, match="unknown command"):
        dram_energy(DDR4, {"MAC": np.array([1])}, np.array([0]), 10)
    with pytest.raises(EnergyInputError, match="one value per channel"):
        dram_energy(DDR4, {"ACT": np.array([1, 2])}, np.array([0]), 10)
    with pytest.raises(EnergyInputError, match="active_cycles must lie in 0..20"):
        dram_energy(DDR4, {}, np.array([21]), 10)
    with pytest.raises(PimdramError):
        dram_energy(DDR4, {"RD": np.array([-1])}, np.array([0]), 10)
    spec = copy.deepcopy(DDR4)
    del spec.power["idd4w"]
    with pytest.raises(ConfigError, match="idd4w"):
        dram_energy(spec, {}, np.array([0]), 10)


def test_no_power_section_gives_nan_not_numbers():
    spec = copy.deepcopy(DDR4)
    spec.power = {}
    out = dram_energy(spec, {"ACT": np.array([3])}, np.array([0]), 10)
    assert all(np.isnan(out[c][0]) for c in COLUMNS)
