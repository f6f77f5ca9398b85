"""Samsung HBM-PIM in the engine: all-bank PIM MACs nCCD_L apart; a unit shared by two banks."""
from pim_programs import PimRun, gemv_program
from pimdram.config.memory import load_memory


def test_pim_macs_are_nccd_l_apart_and_legal():
    spec = load_memory("hbm-pim")
    run = PimRun("hbm-pim", gemv_program(spec, "PIM_MAC", n_macs=12), refresh=True)
    macs = run.cycles("PIM_MAC")
    assert [b - a for a, b in zip(macs, macs[1:])] == [spec.timing["nCCD_L"]] * 11
    run.check()


def test_units_shared_by_two_banks():
    spec = load_memory("hbm-pim")
    unit = spec.pim.units["pim"]
    assert unit.banks_per_unit == 2
    # occupancy beyond the command spacing is what the shared unit costs
    run = PimRun("hbm-pim", gemv_program(spec, "PIM_MAC", n_macs=4, occupancy=9))
    macs = run.cycles("PIM_MAC")
    assert [b - a for a, b in zip(macs, macs[1:])] == [9, 9, 9]
    run.check()
