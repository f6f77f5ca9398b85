"""PAPI's FC-PIM (4 FPUs per bank) and Attn-PIM (1 FPU per two banks at 666 MHz): the compute-rich
design wins on an FC with reuse, the capacity-rich one keeps up on attention (reuse 1)."""
from pimdram.lower import run_attention, run_fc


def test_fc_pim_beats_attn_pim_on_an_fc_with_reuse_4():
    fc = run_fc("papi-fc", 4096, 4096, reuse=4)
    attn = run_fc("papi-attn", 4096, 4096, reuse=4)
    assert fc["commands"]["MACAB"] == attn["commands"]["MACAB"]
    assert fc["cycles"] < 0.7 * attn["cycles"]


# With reuse 1 the MACs are nCCD_AB (6) apart on both: Attn-PIM's unit (4 cycles per MACAB) keeps
# up. What remains is the results' moves, which wait for the slower unit to finish the last MAC
# of a block (3 cycles later): a few cycles per GEMV.
def test_fc_pim_does_not_beat_attn_pim_on_attention():
    fc = run_attention("papi-fc", 32, 2048, 128, reuse=1)
    attn = run_attention("papi-attn", 32, 2048, 128, reuse=1)
    assert fc["cycles"] <= attn["cycles"] <= fc["cycles"] + 3 * 8     # 3 cycles x 4 GEMVs x 2 heads


def test_with_reuse_1_the_fc_is_bound_by_the_mac_spacing_on_both():
    fc, attn = run_fc("papi-fc", 4096, 4096), run_fc("papi-attn", 4096, 4096)
    assert fc["cycles"] <= attn["cycles"] <= fc["cycles"] + 3
