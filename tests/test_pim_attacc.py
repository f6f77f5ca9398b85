"""AttAcc's PIM designs in the engine: all-bank GEMV timing with and without the power limit,
same-bank (bank-group) selection, PIM and normal traffic sharing a channel, and the checker."""
import pytest

from pim_programs import PimRun, gemv_program
from pimdram.config.memory import load_memory


def test_all_bank_mac_spacing_with_and_without_the_power_limit():
    for option, spacing in (("limited", 6), ("unlimited", 4)):
        spec = load_memory("attacc-bank", {"options.power_limit": option})
        run = PimRun("attacc-bank", gemv_program(spec, "MACAB", n_macs=6),
                     overrides={"options.power_limit": option})
        act, = run.cycles("ACTAB")
        macs = run.cycles("MACAB")
        pre, = run.cycles("PREAB")
        t = spec.timing
        assert macs[0] - act == t["nRCD"]
        assert [b - a for a, b in zip(macs, macs[1:])] == [spacing] * 5
        assert pre - macs[-1] == t["nRTP_L"]
        run.check()


@pytest.mark.parametrize("option, speed, spacing", [("limited", "5.2gbps", 6), ("unlimited", "5.2gbps", 4),
                                                   ("limited", "6.4gbps", 8), ("unlimited", "6.4gbps", 4)])
def test_same_bank_mac_spacing_with_and_without_the_power_limit(option, speed, spacing):
    # nCCD_SB per pim_designs.md's speed table: 6 (5.2 Gbps) / 8 (6.4 Gbps) limited, 4 without
    over = {"options.power_limit": option, "options.speed": speed}
    spec = load_memory("attacc-bankgroup", over)
    run = PimRun("attacc-bankgroup", gemv_program(spec, "MACSB", n_macs=5, select=2), overrides=over)
    act, = run.cycles("ACTSB")
    macs = run.cycles("MACSB")
    pre, = run.cycles("PRESB")
    t = spec.timing
    assert macs[0] - act == t["nRCD"]
    assert [b - a for a, b in zip(macs, macs[1:])] == [spacing] * 4
    assert pre - act == max(t["nRAS"], macs[-1] - act + t["nRTP_L"])
    run.check()


# (SID, bank group, bank) -> the bank choice of a broadcast command (32 banks per pseudo-channel)
def bank_choice(sid, bank_group, bank):
    return (sid * 4 + bank_group) * 4 + bank


@pytest.mark.parametrize("overrides", [{}, {"timing.nCCD_S": 3, "timing.nCCD_L": 6}])
def test_broadcast_mac_spacing_is_nbl_per_channel_nccd_s_per_sid_nccd_l_per_bank_group(overrides):
    # AttAcc: MACPB -> MACPB nBL in the channel, nCCD_S within a SID, nCCD_L within a bank group
    # (at 5.2 Gbps nCCD_S = nBL = 2; the second case pulls the three apart)
    over = {**overrides}
    spec = load_memory("attacc-buffer", over)
    banks = [bank_choice(0, 0, 0), bank_choice(0, 0, 1), bank_choice(0, 1, 0), bank_choice(1, 0, 0)]
    order = banks + [bank_choice(0, 0, 0)]
    program = [(0, "ACTPB", (), k, 7, 0) for k in banks] + [(0, "MACPB", (), k, 7, 1) for k in order]
    program += [(0, "PREPB", (), k, 0, 0) for k in banks]
    run = PimRun("attacc-buffer", program, overrides=over)
    t = spec.timing
    bl, s, l, rcd = t["nBL"], t["nCCD_S"], t["nCCD_L"], t["nRCD"]
    acts = run.cycles("ACTPB")
    assert acts == [0, 2, 4, 6]                                  # 2 row-bus cycles each
    m0 = acts[0] + rcd                                           # 19
    m1 = max(acts[1] + rcd, m0 + max(bl, s, l))                  # same bank group: nCCD_L
    m2 = max(acts[2] + rcd, m1 + max(bl, s))                     # same SID, other bank group
    m3 = max(acts[3] + rcd, m2 + bl)                             # other SID: the channel's nBL
    m4 = max(m0 + l, m1 + l, m2 + s, m3 + bl)                    # back to bank group (0, 0)
    assert run.cycles("MACPB") == [m0, m1, m2, m3, m4]
    assert [m0, m1, m2, m3, m4] == ([19, 23, 25, 27, 29] if not overrides else [19, 25, 28, 30, 32])
    run.check()


def test_a_broadcast_works_the_same_bank_in_both_pseudo_channels():
    spec = load_memory("attacc-buffer")
    mac = spec.commands[spec.command_index("MACPB")]
    assert spec.banks_covered(mac) == 2          # one MACPB: 2 x 32 B
    k = bank_choice(1, 2, 3)
    program = [(0, "ACTPB", (), k, 5, 0)] + [(0, "MACPB", (), k, 5, 1)] * 3 + [(0, "PREPB", (), k, 0, 0)]
    # a read to that bank in pseudo-channel 1 waits for the precharge; one to its neighbour does not
    run = PimRun("attacc-buffer", program, accesses=[dict(bank=(1, 1, 2, 3), row=9, arrival=20),
                                                      dict(bank=(1, 1, 2, 2), row=9, arrival=20)])
    pre, = run.cycles("PREPB")
    reads = sorted(run.cycles("RD"))
    assert reads[0] < pre < reads[1]
    run.check()


def test_a_busy_unit_delays_the_next_mac():
    spec = load_memory("attacc-bank")
    run = PimRun("attacc-bank", gemv_program(spec, "MACAB", n_macs=4, occupancy=20))
    macs = run.cycles("MACAB")
    assert [b - a for a, b in zip(macs, macs[1:])] == [20, 20, 20]
    run.check()


def test_normal_reads_wait_for_banks_a_gemv_holds_and_use_the_others():
    spec = load_memory("attacc-bankgroup")
    # MACSB on bank 0 of every bank group; one read to a selected bank, one to bank 1
    program = gemv_program(spec, "MACSB", n_macs=30, select=0)
    held = dict(bank=(0, 0, 2, 0), row=3)
    free = dict(bank=(0, 0, 2, 1), row=3)
    run = PimRun("attacc-bankgroup", program, accesses=[held, free])
    pre, = run.cycles("PRESB")
    macs = run.cycles("MACSB")
    reads = run.cycles("RD")
    assert len(reads) == 2 and len(macs) == 30
    assert min(reads) < macs[-1]          # the free bank is read during the GEMV
    assert max(reads) > pre               # the held bank only after its precharge
    run.check()


def test_normal_traffic_left_open_is_closed_before_an_all_bank_activate():
    spec = load_memory("attacc-bank")
    reads = [dict(bank=(0, 0, 1, 2), row=9, column=c) for c in range(4)]
    # buffer writes first, so that the reads open their bank before the activate comes up
    program = [(0, "WRGB", (0, 0, 0), 0, 0, 0)] * 40 + gemv_program(spec, "MACAB", n_macs=2)
    run = PimRun("attacc-bank", program, accesses=reads)
    names = [n for _, n in run.log]
    assert names.index("ACT") < names.index("PRE") < names.index("ACTAB")
    assert names.count("RD") == 4
    run.check()


@pytest.mark.parametrize("design, mac", [("attacc-bank", "MACAB"), ("attacc-bankgroup", "MACSB"),
                                         ("attacc-buffer", "MACPB"), ("papi-fc", "MACAB"), ("papi-attn", "MACAB")])
def test_gemv_programs_are_legal_with_refresh_running(design, mac):
    spec = load_memory(design)
    # long enough to meet several refreshes of the channel
    program = []
    for g in range(4):
        program += gemv_program(spec, mac, n_macs=800, row=g)
    run = PimRun(design, program, refresh=True)
    assert len(run.cycles(mac)) == 3200
    assert run.counters["commands"][0, spec.command_index("REFab")] >= 1
    run.check()


# --- lowering: AttAcc's head-wise mapping ------------------------------------------------------

from pimdram.lower import attacc_head_counts, macs_per_gemv, run_attention  # noqa: E402


@pytest.mark.parametrize("L, d", [(2048, 128), (1000, 64), (17, 80), (4096, 256)])
def test_bank_mode_command_counts_per_head_follow_the_formula(L, d):
    run = run_attention("attacc-bank", 1, L, d, overrides={"controller.refresh": "none"})
    c = -(-L // 16) * -(-d // 64)
    want = {"WRGB": 4 * -(-d // 64), "MACAB": 2 * c, "MVSB": 8 * -(-L // 256) + 8 * -(-d // 64),
            "SFM": 1, "MVGB": 8 * -(-L // 256)}
    assert attacc_head_counts("bank", L, d) == want
    got = {k: v for k, v in run["commands"].items() if k in want}
    assert got == want
    # one row activation per 32 MACs of a GEMV
    assert run["commands"]["ACTAB"] == run["commands"]["PREAB"] == 2 * -(-c // 32)


@pytest.mark.parametrize("design, mac", [("attacc-bank", "MACAB"), ("attacc-bankgroup", "MACSB"),
                                         ("attacc-buffer", "MACPB")])
def test_the_macs_read_the_whole_kv_cache(design, mac):
    # K and V: 2 x L x d FP16 per head; the MACs' banks x 32 B must cover exactly that
    L, d = 256, 128
    run = run_attention(design, 3, L, d, overrides={"controller.refresh": "none"})
    spec = run["spec"]
    covered = spec.banks_covered(spec.commands[spec.command_index(mac)])
    assert run["commands"][mac] * covered * spec.access_bytes == 3 * 2 * L * d * 2


@pytest.mark.parametrize("design, mode, mac", [("attacc-bankgroup", "bankgroup", "MACSB"),
                                               ("attacc-buffer", "buffer", "MACPB")])
def test_bank_group_and_buffer_mac_counts(design, mode, mac):
    L, d = 1000, 128
    run = run_attention(design, 1, L, d, overrides={"controller.refresh": "none"})
    per_gemv = {"bankgroup": -(-L // 16) * -(-d // 16), "buffer": -(-L // 2) * -(-d // 16)}[mode]
    assert macs_per_gemv(mode, L, d) == per_gemv
    assert run["commands"][mac] == 2 * per_gemv


# Per head, by hand from AttAcc's generators (pim_designs.md): L = 40 tokens, d = 32 dimensions.
# bank: MAC groups of ceil(d/64) = 1 MACAB over ceil(L/16) = 3 token groups; bank group: groups of
# ceil(d/16) = 2 MACSB; buffer: groups of 2 MACPB over ceil(L/2) = 20 token pairs.
HEAD_COUNTS_40_32 = {
    "bank": {"WRGB": 4, "MACAB": 2 * 3, "MVSB": 8 + 8, "SFM": 1, "MVGB": 8, "ACTAB": 2, "PREAB": 2},
    # MVSB: 8 for the one score block + 2 per context output group (2 groups)
    "bankgroup": {"WRGB": 2, "MACSB": 2 * 6, "MVSB": 8 + 2 * 2, "SFM": 1, "MVGB": 8, "ACTSB": 2, "PRESB": 2},
    # MVSB: one per score block (20 pairs: 2 blocks of 16 groups) + one per context group (2);
    # MVGB ceil(40/32) = 2; each GEMV's 40 MACPBs touch all 32 banks of a pseudo-channel once
    "buffer": {"WRGB": 2, "MACPB": 2 * 40, "MVSB": 2 + 2, "SFM": 1, "MVGB": 2, "ACTPB": 64, "PREPB": 64},
}


@pytest.mark.parametrize("mode", list(HEAD_COUNTS_40_32))
def test_command_counts_per_head_by_hand(mode):
    design = {"bank": "attacc-bank", "bankgroup": "attacc-bankgroup", "buffer": "attacc-buffer"}[mode]
    want = HEAD_COUNTS_40_32[mode]
    assert attacc_head_counts(mode, 40, 32) == {k: v for k, v in want.items() if not k.startswith(("ACT", "PRE"))}
    run = run_attention(design, 1, 40, 32, overrides={"controller.refresh": "none"})
    assert run["commands"] == want
    # a pair of heads per channel: twice as many
    run = run_attention(design, 32, 40, 32, overrides={"controller.refresh": "none"})
    assert run["commands"] == {k: 32 * v for k, v in want.items()}


def schedule(design, L, d, **overrides):
    run = run_attention(design, 1, L, d, command_log=True, overrides={"controller.refresh": "none", **overrides})
    names = run["spec"].command_names
    log = run["log"]
    return run["cycles"], [(int(c), names[k]) for c, k, ch in zip(log["cycle"], log["command"], log["channel"]) if ch == 0]


def test_one_head_on_attacc_bank_cycle_by_cycle():
    # L = 32, d = 64: two MACAB per GEMV. By hand (5.2 Gbps: nRCD 19, nRAS 45, nRP 19, nRC 63,
    # nRTP_L 8, nCCD_AB 6, nBL 2, nCCD_S 2, nCCD_L 4, nACC 2; softmax 32/16 + 16 = 18 cycles):
    # the activate first, the query (4 WRGB, one bank group: nCCD_L) under it; the MACs nRCD after
    # it; the score's 8 MVSB nACC after the last MAC, 2 apart (SID to SID); the precharge among
    # them, held to nRAS after the activate; SFM; MVGB once the softmax is done, 2 apart over the
    # bank groups, the next activate among them (nRP after the precharge, in order); the context
    # MACs nRCD after it; its 8 MVSB (SID 0 and 1 of bank group 0: nCCD_L per bank group) with the
    # last precharge (nRAS) among them.
    cycles, log = schedule("attacc-bank", 32, 64)
    assert log == [(0, "ACTAB"), (1, "WRGB"), (5, "WRGB"), (9, "WRGB"), (13, "WRGB"),
                   (19, "MACAB"), (25, "MACAB"),
                   (27, "MVSB"), (29, "MVSB"), (31, "MVSB"), (33, "MVSB"), (45, "PREAB"),
                   (46, "MVSB"), (48, "MVSB"), (50, "MVSB"), (52, "MVSB"), (53, "SFM"),
                   (71, "MVGB"), (73, "MVGB"), (75, "MVGB"), (77, "MVGB"), (78, "ACTAB"),
                   (79, "MVGB"), (81, "MVGB"), (83, "MVGB"), (85, "MVGB"),
                   (97, "MACAB"), (103, "MACAB"),
                   (105, "MVSB"), (107, "MVSB"), (109, "MVSB"), (111, "MVSB"), (123, "PREAB"),
                   (124, "MVSB"), (126, "MVSB"), (128, "MVSB"), (130, "MVSB")]
    assert cycles == 130
    # without the softmax's time (AttAcc's simulator: one bus slot) the MVGB follow the SFM, and
    # the activate binds on nRP after the precharge (45 + 19): 14 cycles less
    cycles, log = schedule("attacc-bank", 32, 64, **{"options.softmax": "paper_simulator"})
    assert log[16:18] == [(53, "SFM"), (54, "MVGB")] and (64, "ACTAB") in log and cycles == 116


def test_one_head_on_attacc_buffer_cycle_by_cycle():
    # L = 4, d = 16: two MACPB per GEMV, on bank choices 0 (SID 0, bank group 0) and 4 (bank
    # group 1). By hand: the two broadcast activates (2 row-bus cycles each) with the query
    # between them (the column bus), MACs nRCD after their activates (nBL apart); the MVSB once
    # the unit is done; precharges held to nRAS; SFM; MVGB after the 4/16 + 16 = 17-cycle
    # softmax; the V rows' activates nRP after the precharges, in order; MACs; the last MVSB,
    # the last precharges (nRAS).
    cycles, log = schedule("attacc-buffer", 4, 16)
    assert log == [(0, "ACTPB"), (1, "WRGB"), (2, "ACTPB"), (19, "MACPB"), (21, "MACPB"), (22, "MVSB"),
                   (45, "PREPB"), (47, "PREPB"), (48, "SFM"), (65, "MVGB"), (66, "ACTPB"), (68, "ACTPB"),
                   (85, "MACPB"), (87, "MACPB"), (88, "MVSB"), (111, "PREPB"), (113, "PREPB")]
    assert cycles == 113


def test_bank_group_level_opens_the_next_banks_row_while_this_bank_computes():
    # 40 MACSB (L = 640, d = 16): 32 on bank 0, then 8 on bank 1 (AttAcc's address order). The
    # program opens bank 1 ceil(nRCD / nCCD_SB) = 4 MACs ahead and closes bank 0 two MACs
    # (ceil((nRTP_L - 1) / nCCD_SB)) after its last: the MACs stay nCCD_SB apart throughout.
    cycles, log = schedule("attacc-bankgroup", 640, 16)
    macs = [c for c, n in log if n == "MACSB"][:40]
    assert [b - a for a, b in zip(macs, macs[1:])] == [6] * 39
    acts = [c for c, n in log if n == "ACTSB"]
    pres = [c for c, n in log if n == "PRESB"]
    assert macs[27] < acts[1] < macs[28]
    assert macs[33] < pres[0] < macs[34]


def test_buffer_level_banks_change_rows_in_a_rolling_wave():
    # 2048 MACPB (L = 4096, d = 16): every bank of a pseudo-channel uses two rows. No refresh: the
    # banks change rows one by one (some open their second row before others close their first)
    cycles, log = schedule("attacc-buffer", 4096, 16)
    acts = [c for c, n in log if n == "ACTPB"][:64]
    pres = [c for c, n in log if n == "PREPB"][:64]
    assert acts[32] < pres[31]
    macs = [c for c, n in log if n == "MACPB"][:2048]
    # the row change costs the row bus (32 x 3 cycles of ACTPB and PREPB) but no full stop
    assert macs[-1] - macs[0] < 2 * 2047 + 160


def test_refresh_gets_its_turn_between_rolling_row_changes():
    # with refresh on, every nREFI worth of MACs all rows close at a row boundary: a long buffer-
    # level GEMV still refreshes about once per interval, and the checker finds no long gap
    from pimdram.check import check_command_log
    from pimdram.replay import CommandLogExpander
    run = run_attention("attacc-buffer", 1, 16384, 64, command_log=True)
    spec = run["spec"]
    refreshes = run["commands"]["REFab"] / 1      # one channel works; the others only refresh
    intervals = run["cycles"] / spec.timing["nREFI"]
    log = CommandLogExpander(run["engine"], spec)(run["log"])
    ch0 = {k: v[log["channel"] == 0] for k, v in log.items()}
    assert abs(int((ch0["command"] == spec.command_index("REFab")).sum()) - int(intervals)) <= 1
    result = check_command_log(spec, ch0)
    assert result.ok and result.n_warnings == 0, str(result)


def one_channel_cycles(design, build):
    """Cycles of a program `build(builder)` on one channel of `design` (refresh off)."""
    import dataclasses
    import numpy as np
    from pimdram._engine import Engine
    from pimdram.lower.attacc import _Builder, attacc_mode
    from pimdram.lower.program import assemble
    from pimdram.replay import engine_params
    spec = load_memory(design, {"controller.refresh": "none"})
    spec = dataclasses.replace(spec, counts=[1] + list(spec.counts[1:]))
    engine = Engine(engine_params(spec))
    b = _Builder(spec, engine.node_id, attacc_mode(spec), 1)
    build(b)
    cols, _ = assemble(spec, [(0, b)])
    engine.feed_program(*(np.asarray(cols[k]) for k in ("channel", "command", "node", "select", "row", "occupancy")))
    engine.run(True)
    return max(engine.completion_cycle, engine.current_cycle)


def test_a_layer_in_one_program_overlaps_what_the_pieces_serialise():
    from pimdram.lower import attention_layer
    from pimdram.lower.attacc import attention_piece
    L, d = 2048, 128

    def pieces(b):
        for kind in ("score", "softmax", "context"):
            for _ in range(2):
                attention_piece(b, kind, L, d)

    layer = one_channel_cycles("attacc-bank", lambda b: attention_layer(b, 2, L, d))
    apart = one_channel_cycles("attacc-bank", pieces)
    # as run_attention's channels with two instances each
    assert layer == run_attention("attacc-bank", 32, L, d, overrides={"controller.refresh": "none"})["cycles"]
    # apart, each softmax (2048 / 16 + 16 cycles) and its 64 MVGB (2 apart) stand alone
    assert apart - layer >= 2 * (2048 // 16 + 16 + 64 * 2) - 50


def test_heads_go_to_channels_round_robin():
    run = run_attention("attacc-bank", 37, 256, 128)
    per = run["program"].instances_per_channel
    assert per.sum() == 37 and per.max() - per.min() == 1 and len(per) == 16


@pytest.mark.parametrize("design", ["attacc-bank", "attacc-bankgroup", "attacc-buffer"])
def test_attention_layer_is_legal(design):
    from pimdram.check import check_command_log
    from pimdram.replay import CommandLogExpander
    run = run_attention(design, 20, 300, 128, reuse=2, command_log=True)
    result = check_command_log(run["spec"], CommandLogExpander(run["engine"], run["spec"])(run["log"]))
    assert result.ok, str(result)


def test_gqa_attention_costs_more_compute_time_per_byte_than_mha():
    # same K/V bytes; GQA's 8 query rows per KV head make every MAC 8x the work: the GEMV
    # units, not the MAC command spacing (nCCD_AB 6), set the pace
    mha = run_attention("attacc-bank", 16, 2048, 128, reuse=1)
    gqa = run_attention("attacc-bank", 16, 2048, 128, reuse=8)
    assert gqa["commands"]["MACAB"] == mha["commands"]["MACAB"]
    assert gqa["cycles"] > 1.2 * mha["cycles"]


def test_bad_program_entries_are_rejected_with_their_index():
    import numpy as np
    from pimdram._engine import Engine
    from pimdram.replay import engine_params
    spec = load_memory("attacc-bankgroup")
    engine = Engine(engine_params(spec))
    C = spec.command_index
    good = (0, C("ACTSB"), 0, 1, 5, 0)
    cases = [((0, C("RD"), engine.node_id((0, 0, 0, 0)), 0, 0, 0), "come from requests"),
             ((0, C("MACSB"), engine.node_id((0,)), 0, 0, 0), "not at the command's scope level"),
             ((0, C("MACSB"), 0, 7, 0, 0), r"same-bank choice is outside 0\.\.3")]
    for bad, message in cases:
        cols = list(zip(good, good, bad))
        with pytest.raises(ValueError, match=rf"program entry 2 .*{message}"):
            engine.feed_program(*[np.array(c) for c in cols])


def test_a_program_that_computes_on_a_closed_row_stops_the_run():
    import numpy as np
    from pimdram._engine import Engine
    from pimdram.errors import SimulationError
    from pimdram.replay import engine_params
    spec = load_memory("attacc-bank", {"controller.refresh": "none"})
    engine = Engine(engine_params(spec))
    C = spec.command_index
    program = [(0, C("ACTAB"), 0, 0, 5, 0), (0, C("MACAB"), 0, 0, 6, 1)]     # MAC on row 6, row 5 open
    engine.feed_program(*[np.array(c) for c in zip(*program)])
    with pytest.raises(SimulationError, match="PIM program entry 1"):
        engine.run(True)
