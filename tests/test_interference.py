"""Interference of xPU traffic and PIM programs in a shared memory (system.interference): a
window of both on one channel, against each alone; NeuPIMs' dual row buffers against blocked mode."""
import numpy as np

from pim_programs import PimRun
from pimdram._engine import Engine
from pimdram.config.memory import load_memory
from pimdram.replay import engine_params
from pimdram.system.interference import simulate_window
from test_pim_neupims import neupims_gemv
from timing_cases import encode_address


def window(design, arrival):
    spec = load_memory(design, {"controller.refresh": "none"})
    engine = Engine(engine_params(spec))
    cols = [[] for _ in range(6)]
    for ch, name, path, sel, row, occ in neupims_gemv():
        for col, v in zip(cols, (ch, spec.command_names.index(name), engine.node_id(path), sel, row, occ)):
            col.append(v)
    program = dict(zip(("channel", "command", "node", "select", "row", "occupancy"),
                       [np.array(c, dtype=np.int32) for c in cols[:5]] + [np.array(cols[5], dtype=np.int64)]))
    address = np.array([encode_address(spec, 0, (0, 1, 2), 3, 1)], dtype=np.uint64)
    accesses, _ = engine.decode(address, np.zeros(1, np.uint8), np.array([arrival], np.int64))
    return spec, simulate_window(spec, program, accesses)


def test_dual_row_buffers_cost_the_gemv_one_bus_slot_and_the_read_only_nfaw():
    alone = PimRun("neupims", neupims_gemv())
    arrival = alone.cycles("COMP")[2]
    spec, w = window("neupims", arrival)
    # test_pim_neupims: the read goes through between COMPs and the GEMV loses the one slot
    assert (w.pim_cycles, w.conflicts, w.blocked_cycles) == (1, 0, 0)
    # the read's ACT waits only for the last G_ACT's nFAW (G_ACT -> ACT in the channel), not for
    # the GEMV: alone it issues the cycle after it arrives
    assert w.xpu_cycles == alone.cycles("G_ACT")[-1] + spec.timing["nFAW"] - (arrival + 1) == 13


def test_blocked_mode_makes_the_read_wait_for_the_whole_gemv():
    alone = PimRun("neupims-blocked", neupims_gemv())
    arrival = alone.cycles("COMP")[2]
    spec, w = window("neupims-blocked", arrival)
    pre = alone.cycles("PIM_PRE")[0]
    # alone the read's ACT issues the cycle after it arrives; with the GEMV it waits until nRP
    # after PIM_PRE (PIM_PRE -> ACT), then the same nRCD and latency follow
    assert w.xpu_cycles == pre + spec.timing["nRP"] - (arrival + 1)
    assert w.pim_cycles == 0
    # the channel is held from the arrival to the program's last command
    assert w.blocked_cycles == pre - arrival


def _step(tmp_path, system, **options):
    from click.testing import CliRunner

    from pimdram.cli import cli
    from pimdram.stats import open_stats
    from pimdram.system import replay_kernels
    from pimdram.system.interference import InterferenceOptions
    trace = tmp_path / "gpt2.jsonl"
    if not trace.exists():
        r = CliRunner().invoke(cli, ["gen", "--model", "gpt2", "--system", "neupims", "--batch", "16",
                                     "--prompt-tokens", "256", "--output-tokens", "1", "-o", str(trace)])
        assert r.exit_code == 0, r.output
    out = tmp_path / f"{system}-{len(options)}-{options.get('window_ns')}.h5"
    replay_kernels(trace, out, system=system, interference=InterferenceOptions(True, **options) if options else None)
    with open_stats(out) as sf:
        run, kernels = sf.table("run"), sf.table("kernels")
        return (float(sf.table("summary")["simulated_seconds"][0]), float(run["interference_ns"][0]),
                int(kernels["blocked_cycles"].sum()))


def test_sampled_windows_agree_with_full_simulation_within_two_percent(tmp_path):
    # GPT-2 at batch 16 on NeuPIMs: each sub-batch's NPU kernels overlap the other's attention
    for system in ("neupims", "neupims-naive"):
        full, full_lost, _ = _step(tmp_path, system, full=True)
        sampled, sampled_lost, _ = _step(tmp_path, system, window_ns=100.0, windows=3)
        assert full_lost > 0
        assert abs(sampled - full) <= 0.02 * full
        assert abs(sampled_lost - full_lost) <= 0.03 * full_lost      # measured: 2.4% and 1.9%


def test_blocked_mode_loses_more_than_dual_row_buffers_and_only_it_blocks(tmp_path):
    base, _, _ = _step(tmp_path, "neupims")
    dual, dual_lost, dual_blocked = _step(tmp_path, "neupims", full=True)
    single, single_lost, single_blocked = _step(tmp_path, "neupims-naive", full=True)
    assert dual_blocked == 0 < single_blocked
    assert base < dual < single and dual_lost < single_lost
