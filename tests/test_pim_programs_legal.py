"""Every PIM design runs a small attention and a small FC layer, lowered by its mapping, with zero
checker violations (refresh running)."""
import pytest

from pimdram.check import check_command_log
from pimdram.config import list_configs
from pimdram.config.memory import load_memory
from pimdram.lower import run_attention, run_fc
from pimdram.lower.generic import has_gemv_lowering, run_gemvs
from pimdram.replay import CommandLogExpander


def legal(run):
    result = check_command_log(run["spec"], CommandLogExpander(run["engine"], run["spec"])(run["log"]))
    assert result.ok, str(result)


@pytest.mark.parametrize("design", list_configs("pim"))
def test_attention_and_fc_programs_are_legal(design):
    spec = load_memory(design)
    if has_gemv_lowering(spec):
        # attention: score (K: L x d) and context (V^T: d x L) GEMVs; an FC: 512 x 1024
        attention = run_gemvs(design, [(700, 128), (128, 700)] * 2, reuse=2, command_log=True)
        fc = run_gemvs(design, [(512, 1024)], reuse=4, command_log=True)
    else:
        attention = run_attention(design, 2 * spec.n_channels + 3, 700, 128, reuse=2, command_log=True)
        fc = run_fc(design, 2048, 1024, reuse=4, command_log=True)
    for run in (attention, fc):
        assert sum(n for c, n in run["commands"].items() if spec.commands[spec.command_index(c)].kind == "mac") > 0
        legal(run)


def test_generic_gemv_counts_follow_the_rows_of_the_banks():
    spec = load_memory("aim")
    run = run_gemvs("aim", [(1024, 1024)], overrides={"controller.refresh": "none"})
    per_mac = 16 * spec.access_bytes // 2          # ACT16/MACAB: 16 banks x 16 BF16
    macs = -(-1024 * 1024 // per_mac)
    assert run["commands"]["MACAB"] == macs * spec.n_channels
    assert run["commands"]["ACT16"] == -(-macs // spec.columns) * spec.n_channels
    assert run["commands"]["WRGB"] == 1024 * 2 // 32 * spec.n_channels
