"""GDDR6-AiM in the engine: single-, four- and all-bank GEMVs are legal and timed by IANUS'
rules (MAC nRCD_MAC after its activate, all-bank MACs nCCD_L apart); blocked mode holds normal
traffic until the program has run."""
import pytest

from pim_programs import PimRun, gemv_program
from pimdram.config.memory import load_memory


@pytest.mark.parametrize("mac", ["MACSB", "MAC4B", "MACAB"])
def test_gemv_of_each_width_is_legal(mac):
    spec = load_memory("aim")
    run = PimRun("aim", gemv_program(spec, mac, n_macs=16), refresh=True)
    macs = run.cycles(mac)
    assert len(macs) == 16
    run.check()


def test_all_bank_mac_timing():
    spec = load_memory("aim")
    run = PimRun("aim", gemv_program(spec, "MACAB", n_macs=5))
    act, = run.cycles("ACT16")
    macs = run.cycles("MACAB")
    assert macs[0] - act == spec.timing["nRCD_MAC"] == 72          # 36 ns at 0.5 ns
    assert [b - a for a, b in zip(macs, macs[1:])] == [spec.timing["nCCD_L"]] * 4


def test_blocked_mode_holds_normal_reads_until_the_program_ends():
    spec = load_memory("aim")
    program = gemv_program(spec, "MAC4B", n_macs=20)        # bank group 0 only
    run = PimRun("aim", program, accesses=[dict(bank=(3, 1), row=2)])   # another bank group
    read, = run.cycles("RD")
    assert read > max(c for c, n in run.log if n != "RD" and n != "ACT")
    run.check()
