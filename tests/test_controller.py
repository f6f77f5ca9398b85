"""Controller scheduling: small traces fed to the engine where it is known exactly what must happen
(FR-FCFS vs FCFS, row-hit cap, closed page, write drain, refresh, arrival cycles, a full queue,
request splitting, bank queues, round robin), and determinism under re-runs and chunking."""
import numpy as np
import pytest

from pimdram._engine import Engine
from pimdram.check import check_command_log
from pimdram.config.memory import load_memory
from pimdram.replay import CommandLogExpander, engine_params, replay_requests
from pimdram.trace.requests import write_binary_trace
from timing_cases import bank_index, encode_address, node_paths, nodes_at

NO_REFRESH = {"controller.refresh": "none"}


class Run:
    """One engine run of a list of accesses; the log as (cycle, command name, node path, row, column)."""

    def __init__(self, spec, accesses, chunks=1):
        self.spec = spec
        self.engine = Engine(engine_params(spec, command_log=True))
        address = np.array([encode_address(spec, a.get("channel", 0), a.get("bank"), a.get("row", 0),
                                           a.get("column", 0)) for a in accesses], dtype=np.uint64)
        is_write = np.array([a.get("write", 0) for a in accesses], dtype=np.uint8)
        arrival = np.array([a.get("arrival", -1) for a in accesses], dtype=np.int64)
        self.accept_cycles = []
        for part in np.array_split(np.arange(len(accesses)), chunks):
            self.engine.feed(address[part], is_write[part], arrival[part])
            self.engine.run(False)
            self.accept_cycles.append(self.engine.current_cycle)
        self.engine.run(True)
        self.raw_log = self.engine.take_log()
        self.counters = self.engine.counters()
        names = spec.command_names
        paths = node_paths(self.engine, spec)
        self.log = [(int(c), names[k], paths[n], int(ch), int(r), int(col)) for c, k, n, ch, r, col in zip(
            self.raw_log["cycle"], self.raw_log["command"], self.raw_log["node"], self.raw_log["channel"],
            self.raw_log["row"], self.raw_log["column"])]

    def commands(self, *names):
        return [e for e in self.log if e[1] in names]

    def count(self, name):
        return self.counters["commands"][:, self.spec.command_index(name)].sum()

    def check_legal(self, refresh=True):
        result = check_command_log(self.spec, CommandLogExpander(self.engine, self.spec)(self.raw_log),
                                   refresh=refresh)
        assert result.ok, str(result)


def reads(bank, row, columns, **kw):
    return [dict(bank=bank, row=row, column=c, **kw) for c in columns]


@pytest.fixture
def ddr4():
    return load_memory("ddr4_3200", NO_REFRESH)


def ddr4_with(**controller):
    return load_memory("ddr4_3200", {**NO_REFRESH, **{f"controller.{k}": v for k, v in controller.items()}})


B0 = (0, 0, 0)


# --- FR-FCFS, FCFS and the row-hit cap ----------------------------------------------------------

def hit_behind_miss():
    """An older request to another row of the bank, then a younger hit on the row the first opens."""
    return [dict(bank=B0, row=1, column=0), dict(bank=B0, row=2, column=0), dict(bank=B0, row=1, column=1)]


def test_frfcfs_serves_younger_row_hit_before_older_miss():
    run = Run(ddr4_with(scheduler="frfcfs"), hit_behind_miss())
    assert [(e[4], e[5]) for e in run.commands("RD")] == [(1, 0), (1, 1), (2, 0)]
    assert run.count("ACT") == 2
    run.check_legal()


def test_fcfs_serves_in_arrival_order():
    run = Run(ddr4_with(scheduler="fcfs"), hit_behind_miss())
    assert [(e[4], e[5]) for e in run.commands("RD")] == [(1, 0), (2, 0), (1, 1)]
    assert run.count("ACT") == 3
    run.check_legal()


@pytest.mark.parametrize("hit_arrival, expected_acts", [(30, 2), (200, 3)])
def test_a_row_hit_arriving_behind_a_waiting_precharge_is_served_first(hit_arrival, expected_acts):
    """The bank's next command is a precharge (an older request wants another row) when a hit on
    the open row arrives: before the precharge is legal (tRAS) the hit goes first; after it has
    issued the hit needs the row opened again."""
    accesses = [dict(bank=B0, row=1, column=0, arrival=0), dict(bank=B0, row=2, column=0, arrival=0),
                dict(bank=B0, row=1, column=1, arrival=hit_arrival)]
    run = Run(ddr4_with(scheduler="frfcfs"), accesses)
    rds = [(e[4], e[5]) for e in run.commands("RD")]
    if expected_acts == 2:
        assert rds == [(1, 0), (1, 1), (2, 0)]
    else:
        assert rds == [(1, 0), (2, 0), (1, 1)]
    assert run.count("ACT") == expected_acts
    run.check_legal()


def test_a_wait_longer_than_the_wheel_span_ends_at_the_exact_cycle():
    """Two rows of one bank under closed page: the second activate waits for tRC (74 cycles on
    DDR4-3200, longer than the scheduler's 64-cycle timing wheel) and must issue exactly when it
    becomes legal."""
    spec = ddr4_with(row_policy="closed")
    run = Run(spec, [dict(bank=B0, row=1, column=0), dict(bank=B0, row=2, column=0)])
    acts = [e[0] for e in run.commands("ACT")]
    pre = [e[0] for e in run.commands("RDA")]
    assert spec.timing["nRC"] > 64
    assert len(acts) == 2
    # RDA auto-precharges: the activate waits for tRC after the first one and tRP after the
    # precharge implied by RDA (issued at the later of RDA + tRTP and ACT + tRAS)
    implied_pre = max(pre[0] + spec.timing["nRTP"], acts[0] + spec.timing["nRAS"])
    assert acts[1] == max(acts[0] + spec.timing["nRC"], implied_pre + spec.timing["nRP"])
    run.check_legal()


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_row_hit_cap_stops_hits_when_another_row_waits(cap):
    accesses = [dict(bank=B0, row=1, column=0), dict(bank=B0, row=2, column=0)] + reads(B0, 1, range(1, 6))
    run = Run(ddr4_with(row_hit_cap=cap), accesses)
    rows = [e[4] for e in run.commands("RD")]
    assert rows == [1] * cap + [2] + [1] * (6 - cap)
    uncapped = Run(ddr4_with(row_hit_cap=0), accesses)
    assert [e[4] for e in uncapped.commands("RD")] == [1] * 6 + [2]


def test_row_hit_cap_keeps_serving_hits_when_no_other_row_waits():
    run = Run(ddr4_with(row_hit_cap=2), reads(B0, 1, range(8)))
    assert run.count("ACT") == 1 and run.count("PRE") == 0
    assert [e[5] for e in run.commands("RD")] == list(range(8))


# --- row policy -----------------------------------------------------------------------------------

def test_closed_page_precharges_with_the_last_hit():
    spec = ddr4_with(row_policy="closed")
    rng = np.random.default_rng(7)
    banks = [(0, 0, 0), (0, 1, 0), (1, 2, 3)]
    accesses = [dict(bank=banks[rng.integers(3)], row=int(rng.integers(3)), column=int(rng.integers(128)))
                for _ in range(30)]                     # fits the 32-entry read queue: all seen at once
    run = Run(spec, accesses)
    assert run.count("PRE") == 0
    assert run.count("ACT") == run.count("RDA") + run.count("WRA")
    open_row = {}
    for k, (cycle, name, node, ch, row, col) in enumerate(run.log):
        if name == "ACT":
            assert node not in open_row
            open_row[node] = row
        elif name == "RD":
            # an RD (not RDA) only while another access to the open row is still to come
            later = [e for e in run.log[k + 1:] if e[2] == node]
            assert later and later[0][1] in ("RD", "RDA") and later[0][4] == row, (k, run.log[k:k + 4])
        elif name == "RDA":
            assert open_row.pop(node) == row
    assert open_row == {}, "rows left open at the end of a closed-page run"
    assert run.counters["reads"].sum() == len(accesses)
    run.check_legal()


def test_open_page_leaves_the_row_open():
    run = Run(ddr4_with(row_policy="open"), reads(B0, 1, range(4)))
    assert run.count("RDA") == 0 and run.count("PRE") == 0 and run.count("ACT") == 1


# --- write drain ----------------------------------------------------------------------------------

def watermarks(spec):
    c = spec.controller
    return int(np.ceil(c.write_high_watermark * c.write_queue)), int(c.write_low_watermark * c.write_queue)


def drain_trace(n_writes, n_reads=100):
    writes = [dict(bank=(1, g % 4, 1), row=5, column=g, write=1) for g in range(n_writes)]
    stream = [dict(bank=(0, k % 4, 0), row=9, column=k // 4) for k in range(n_reads)]
    return writes + stream


def test_writes_wait_below_the_high_watermark_while_reads_are_present():
    spec = ddr4_with(write_queue=8)
    high, low = watermarks(spec)
    run = Run(spec, drain_trace(high - 1))
    column = [e[1] for e in run.commands("RD", "WR")]
    assert column == ["RD"] * 100 + ["WR"] * (high - 1)
    run.check_legal()


def test_writes_drain_at_the_high_watermark_down_to_the_low_one():
    spec = ddr4_with(write_queue=8)
    high, low = watermarks(spec)
    assert 0 < low < high
    run = Run(spec, drain_trace(high))
    column = [e[1] for e in run.commands("RD", "WR")]
    assert column == ["WR"] * (high - low) + ["RD"] * 100 + ["WR"] * low
    run.check_legal()


# --- refresh --------------------------------------------------------------------------------------

def sparse_trace(spec, n, end, seed=3):
    rng = np.random.default_rng(seed)
    arrival = np.sort(rng.integers(0, end, n))
    out = []
    for a in arrival:
        bank = tuple(int(rng.integers(c)) for c in spec.counts[1:])
        out.append(dict(bank=bank, row=int(rng.integers(64)), column=0, write=int(rng.random() < 0.3),
                        arrival=int(a)))
    return out


@pytest.mark.parametrize("preset", ["ddr4_3200", "gddr6_14gbps"])
def test_all_bank_refresh_rate_and_no_activate_while_pending(preset):
    """REF count per refreshed node (rank, or channel) is cycles / nREFI, and no ACT reaches a node
    between its refresh falling due and the REF."""
    spec = load_memory(preset)
    ref = spec.refresh
    interval = ref.interval
    nodes = nodes_at(spec, ref.scope)
    name = spec.command_names[ref.command]
    run = Run(spec, sparse_trace(spec, 400, 40 * interval))
    end = run.engine.current_cycle
    for ch in range(spec.n_channels):
        for i, node in enumerate(nodes):
            refs = [e[0] for e in run.log if e[1] == name and e[2] == node and e[3] == ch]
            # the refresh scheduler staggers the nodes: node i is first due at interval + i * interval / n
            first_due = interval + i * interval // len(nodes)
            expected = (end - first_due) // interval + 1
            assert abs(len(refs) - expected) <= 1, (ch, node, len(refs), end / interval)
            acts = np.array([e[0] for e in run.log
                             if e[1] == "ACT" and e[2][:len(node)] == node and e[3] == ch])
            for k, c in enumerate(refs):
                due = first_due + k * interval
                assert c >= due, f"refresh {k} of {node} at {c}, before it was due at {due}"
                during = acts[(acts >= due) & (acts < c)]
                assert len(during) == 0, f"ACT at {during} to {node} while its refresh was pending ({due}..{c})"
    run.check_legal()


def test_per_bank_refresh_covers_every_bank():
    spec = load_memory("hbm2_2gbps", {"controller.refresh": "per_bank"})
    interval = spec.refresh.interval
    accesses = [dict(channel=0, **a) for a in sparse_trace(spec, 300, 12 * interval)]
    run = Run(spec, accesses)
    end = run.engine.current_cycle
    n_banks = spec.banks_per_channel
    for ch in range(spec.n_channels):
        refs = {}
        for e in run.log:
            if e[1] == "REFpb" and e[3] == ch:
                refs.setdefault(bank_index(spec, e[2]), []).append(e[0])
        assert sorted(refs) == list(range(n_banks))
        for i, cycles in refs.items():
            # staggered: bank i is first due at interval + i * interval / banks
            first_due = interval + i * interval // n_banks
            assert cycles[0] >= first_due
            assert abs(len(cycles) - ((end - first_due) // interval + 1)) <= 1, (ch, i, cycles)
    assert run.count("REFab") == 0
    run.check_legal()


def test_no_refresh_when_disabled(ddr4):
    run = Run(ddr4, sparse_trace(ddr4, 50, 5 * 12480))
    assert run.count("REFab") == 0


# --- the frontend: arrival cycles, full queues, request sizes ---------------------------------------

def test_arrival_cycles_are_honoured(ddr4):
    T = ddr4.timing
    run = Run(ddr4, [dict(bank=B0, row=1, column=0, arrival=1000)])
    act = run.commands("ACT")[0][0]
    assert 1000 <= act <= 1001
    assert run.commands("RD")[0][0] == act + T["nRCD"]
    assert run.engine.completion_cycle == act + T["nRCD"] + ddr4.read_latency


def test_no_access_is_issued_before_it_arrives(ddr4):
    accesses = sparse_trace(ddr4, 200, 200_000, seed=11)
    run = Run(ddr4, accesses)
    pending = {}
    for a in accesses:
        pending.setdefault((a["bank"], a["row"], a.get("write", 0)), []).append(a["arrival"])
    # every access's column command comes after its arrival: match in order per (bank, row, op)
    for cycle, name, node, ch, row, col in run.commands("RD", "WR"):
        key = (node, row, int(name == "WR"))
        assert pending[key], key
        arrived = pending[key].pop(0)
        assert cycle >= arrived
    lat = run.counters["latency_sum"].sum() / len(accesses)
    assert lat < 500      # an idle controller serves each access right away


def test_a_full_queue_blocks_the_in_order_frontend():
    """Five reads to channel 0 with a 4-entry read queue, then one read to channel 1: the frontend
    is in order, so channel 1 only sees its read once channel 0 frees a slot (its first column
    command issues)."""
    def run_with(queue):
        spec = load_memory("hbm2_2gbps", {**NO_REFRESH, "controller.read_queue": queue})
        accesses = [dict(channel=0, bank=(0, 0, 0), row=r, column=0) for r in range(5)]
        accesses.append(dict(channel=1, bank=(0, 0, 0), row=0, column=0))
        return Run(spec, accesses)

    blocked = run_with(4)
    first_ch0_read = next(e[0] for e in blocked.log if e[3] == 0 and e[1] == "RD")
    first_ch1 = next(e[0] for e in blocked.log if e[3] == 1)
    assert first_ch1 > first_ch0_read
    assert blocked.accept_cycles[0] == first_ch0_read       # the last access was taken then
    free = run_with(8)
    assert next(e[0] for e in free.log if e[3] == 1) <= 1


def test_requests_larger_than_one_access_are_split(tmp_path):
    # the DRAMsim3 DDR4 mapping has the column lowest: one request's accesses share a row
    spec = load_memory("dramsim3_ddr4_8gb_x8_3200", NO_REFRESH)
    assert spec.address_mapping[-1][0] == "column"
    n = 50
    per = 4
    address = np.array([encode_address(spec, 0, (0, k % 4, 0), row=k, column=0) for k in range(n)], dtype=np.uint64)
    trace = tmp_path / "t.bin"
    write_binary_trace(trace, np.full(n, -1, np.int64), address, np.zeros(n, np.uint8),
                       np.full(n, per * spec.access_bytes, np.uint32))
    result = replay_requests(trace, spec, tmp_path / "out.h5")
    assert result.summary["requests"] == n
    assert result.summary["reads"] == per * n
    assert result.summary["row_hits"] == (per - 1) * n
    assert result.summary["row_misses"] + result.summary["row_conflicts"] == n


def test_default_request_size_is_request_bytes(tmp_path):
    spec = load_memory("hbm3_6.4gbps", NO_REFRESH)
    per = spec.request_bytes // spec.access_bytes
    assert per > 1
    n = 64
    address = np.arange(n, dtype=np.uint64) * np.uint64(spec.request_bytes)
    trace = tmp_path / "t.bin"
    write_binary_trace(trace, np.full(n, -1, np.int64), address, np.zeros(n, np.uint8))
    result = replay_requests(trace, spec, tmp_path / "out.h5")
    assert result.summary["reads"] == per * n


# --- bank queues (DRAMsim3-style) and round robin ----------------------------------------------------

def test_bank_queue_depth_limits_what_the_scheduler_sees():
    """With one entry per bank queue the younger hit waits in the staging queue behind the miss:
    FR-FCFS cannot pick it, the order is the arrival order."""
    assert [(e[4], e[5]) for e in Run(ddr4_with(bank_queue=1), hit_behind_miss()).commands("RD")] == \
        [(1, 0), (2, 0), (1, 1)]
    assert [(e[4], e[5]) for e in Run(ddr4_with(bank_queue=4), hit_behind_miss()).commands("RD")] == \
        [(1, 0), (1, 1), (2, 0)]


def mixed_trace(spec, n, seed=5, write_fraction=0.3):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        bank = tuple(int(rng.integers(c)) for c in spec.counts[1:])
        out.append(dict(channel=int(rng.integers(spec.n_channels)), bank=bank, row=int(rng.integers(8)),
                        column=int(rng.integers(spec.columns)), write=int(rng.random() < write_fraction)))
    return out


@pytest.mark.parametrize("preset,overrides", [
    ("ddr4_3200", {"controller.bank_queue": 4}),
    ("ddr4_3200", {"controller.bank_queue": 4, "controller.scheduler": "round_robin"}),
    ("ddr4_3200", {"controller.scheduler": "round_robin"}),
    ("dramsim3_hbm2_8gb_x128", {}),
    ("dramsim3_ddr4_8gb_x8_3200", {}),
    ("hbm3_6.4gbps", {"controller.bank_queue": 2, "controller.row_policy": "closed"}),
])
def test_every_access_is_served_legally(preset, overrides):
    spec = load_memory(preset, overrides)
    accesses = mixed_trace(spec, 3000)
    run = Run(spec, accesses)
    writes = sum(a["write"] for a in accesses)
    assert run.counters["reads"].sum() == len(accesses) - writes
    assert run.counters["writes"].sum() == writes
    run.check_legal()


def test_round_robin_rotates_over_banks():
    """Four hits to each of four banks of one bank group (equal column timing): FR-FCFS serves
    oldest first (bank by bank); round robin moves to the next bank with work after each command."""
    accesses = [dict(bank=(0, 0, b), row=1, column=c) for b in range(4) for c in range(4)]
    frfcfs = Run(ddr4_with(scheduler="frfcfs"), accesses)
    assert [e[2][2] for e in frfcfs.commands("RD")] == [b for b in range(4) for _ in range(4)]
    rr = Run(ddr4_with(scheduler="round_robin"), accesses)
    remaining = {b: 4 for b in range(4)}
    rotations = 0
    prev = None
    for e in rr.log:
        if e[1] == "RD":
            b = e[2][2]
            if prev is not None and prev[1] == "RD":
                p = prev[2][2]
                want = next((p + k) % 4 for k in range(1, 5) if remaining[(p + k) % 4] > 0)
                assert b == want, rr.log
                rotations += 1
            remaining[b] -= 1
        prev = e
    assert rotations >= 10
    rr.check_legal()


# --- determinism ----------------------------------------------------------------------------------

def assert_same_run(a, b):
    for k, v in a.counters.items():
        assert np.array_equal(np.asarray(v), np.asarray(b.counters[k])), k
    for k in a.raw_log:
        assert np.array_equal(a.raw_log[k], b.raw_log[k]), k
    assert a.engine.completion_cycle == b.engine.completion_cycle


@pytest.mark.parametrize("preset", ["ddr4_3200", "hbm2_2gbps"])
def test_same_trace_twice_gives_identical_results(preset):
    spec = load_memory(preset)
    accesses = mixed_trace(spec, 4000, seed=9)
    assert_same_run(Run(spec, accesses), Run(spec, accesses))


@pytest.mark.parametrize("chunks", [2, 3, 7])
@pytest.mark.parametrize("arrivals", [False, True])
def test_chunked_feeding_gives_the_same_result(chunks, arrivals):
    spec = load_memory("hbm2_2gbps")
    accesses = mixed_trace(spec, 3000, seed=13)
    if arrivals:
        for k, a in enumerate(accesses):
            a["arrival"] = 3 * k
    assert_same_run(Run(spec, accesses), Run(spec, accesses, chunks=chunks))


@pytest.mark.parametrize("gap", [1, 97])
def test_chunked_feeding_gives_the_same_result_with_the_channel_wheel(gap):
    # 16 channels: the main loop keeps its wheel of channels, filed afresh at every chunk; with
    # sparse arrivals wakes fall more than 64 cycles ahead (its far set) and refreshes come due
    spec = load_memory("hbm3_6.4gbps")
    assert spec.n_channels == 16
    accesses = mixed_trace(spec, 3000, seed=21)
    for k, a in enumerate(accesses):
        a["arrival"] = gap * k
    whole = Run(spec, accesses)
    assert_same_run(whole, Run(spec, accesses, chunks=7))
    whole.check_legal()


def test_replay_in_chunks_gives_the_same_summary(tmp_path):
    spec = load_memory("ddr4_3200")
    accesses = mixed_trace(spec, 3000, seed=17)
    address = np.array([encode_address(spec, a["channel"], a["bank"], a["row"], a["column"]) for a in accesses],
                       dtype=np.uint64)
    trace = tmp_path / "t.bin"
    write_binary_trace(trace, np.full(len(accesses), -1, np.int64), address,
                       np.array([a["write"] for a in accesses], np.uint8))
    whole = replay_requests(trace, spec, tmp_path / "a.h5").summary
    chunked = replay_requests(trace, spec, tmp_path / "b.h5", chunk_size=700).summary
    for k in whole:
        if k not in ("wall_seconds", "requests_per_second"):
            assert whole[k] == chunked[k] or (whole[k] != whole[k] and chunked[k] != chunked[k]), k


def test_decode_splits_a_request_into_consecutive_accesses():
    spec = load_memory("hbm2_2gbps")          # 64-byte requests of 32-byte accesses
    engine = Engine(engine_params(spec))
    rng = np.random.default_rng(5)
    n = 500
    address = rng.integers(0, 1 << 32, n, dtype=np.uint64) & ~np.uint64(31)
    size = rng.choice([0, 1, 32, 64, 100, 256], n).astype(np.int64)
    is_write = rng.integers(0, 2, n).astype(np.uint8)
    arrival = np.arange(n, dtype=np.int64) * 3
    k = np.where(size == 0, spec.request_bytes // spec.access_bytes, -(-size // spec.access_bytes))
    rep = np.repeat(np.arange(n), k)
    step = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
    expanded = address[rep] + step.astype(np.uint64) * np.uint64(spec.access_bytes)
    (got, total) = engine.decode(address, is_write, arrival, size, spec.request_bytes)
    (want, want_total) = engine.decode(expanded, is_write[rep], arrival[rep])
    assert total == want_total == k.sum()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # without sizes every request is request_bytes long
    (got, total) = engine.decode(address, is_write, arrival, None, spec.request_bytes)
    assert total == 2 * n
    np.testing.assert_array_equal(got[0], engine.decode(
        (address[:, None] + np.array([0, 32], np.uint64)).ravel(), np.repeat(is_write, 2), np.repeat(arrival, 2))[0][0])


def reference_decode(spec, x):
    """decode() of one byte address x, field by field (the slow, obviously right way)."""
    levels = list(spec.levels)
    comp = {name: 0 for name in levels + ["row", "column"]}
    filled = dict.fromkeys(comp, 0)
    at = spec.offset_bits
    for name, bits in reversed(spec.address_mapping):       # listed from the highest bits down
        comp[name] |= ((x >> at) & ((1 << bits) - 1)) << filled[name]
        filled[name] += bits
        at += bits
    bank = 0
    for name, count in zip(levels[1:], spec.counts[1:]):
        bank = bank * count + comp[name]
    wrap = lambda v: (v + 2**31) % 2**32 - 2**31       # noqa: E731 (int32, as the engine stores them)
    return wrap(comp[levels[0]]), wrap(bank), wrap(comp["row"]), wrap(comp["column"])


@pytest.mark.parametrize("preset", ["ddr4_3200", "hbm2_2gbps", "hbm3_6.4gbps", "gddr6_14gbps",
                                    "dramsim3_ddr4_8gb_x8_3200", "dramsim3_hbm2_8gb_x128"])
def test_decode_matches_the_address_mapping_field_by_field(preset):
    # decode() sums per-byte table entries (every output is linear in the address bits)
    spec = load_memory(preset)
    engine = Engine(engine_params(spec))
    rng = np.random.default_rng(11)
    address = rng.integers(0, 2**64 - 1, 3000, dtype=np.uint64, endpoint=True)
    address[:1000] &= np.uint64((1 << 36) - 1)
    (got, total) = engine.decode(address, np.zeros(3000, np.uint8), np.arange(3000, dtype=np.int64))
    assert total == 3000
    want = np.array([reference_decode(spec, int(x)) for x in address], dtype=np.int64)
    for k in range(4):
        np.testing.assert_array_equal(got[k], want[:, k])


def test_decode_without_byte_tables_gives_the_same_accesses(monkeypatch):
    import pimdram._engine as engine_module
    spec = load_memory("hbm3_6.4gbps")
    rng = np.random.default_rng(12)
    address = rng.integers(0, 2**64 - 1, 2000, dtype=np.uint64, endpoint=True)
    size = rng.choice([0, 32, 64, 100], 2000).astype(np.int64)
    args = (address, rng.integers(0, 2, 2000).astype(np.uint8), np.arange(2000, dtype=np.int64), size,
            spec.request_bytes)
    with_tables = Engine(engine_params(spec)).decode(*args)
    monkeypatch.setattr(engine_module, "_decode_tables", lambda engine: False)
    field_by_field = Engine(engine_params(spec)).decode(*args)
    assert with_tables[1] == field_by_field[1]
    for a, b in zip(with_tables[0], field_by_field[0]):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)


def _reader_threads():
    import threading
    return [t for t in threading.enumerate() if t.name == "pimdram-trace-reader"]


def test_a_malformed_line_in_a_later_chunk_stops_the_run_and_writes_nothing(tmp_path):
    from pimdram.errors import TraceError
    trace = tmp_path / "t.dramsim3"
    trace.write_text("".join(f"{hex(64 * i)} READ {i}\n" for i in range(2000)) + "0x40 FETCH 2000\n")
    out = tmp_path / "out.h5"
    with pytest.raises(TraceError, match=r"t\.dramsim3:2001:"):
        replay_requests(trace, "ddr4_3200", out, chunk_size=64)
    assert not out.exists() and list(tmp_path.iterdir()) == [trace]
    assert not _reader_threads()


def test_an_error_while_simulating_stops_the_trace_reader(tmp_path):
    trace = tmp_path / "t.dramsim3"
    trace.write_text("".join(f"{hex(64 * i)} READ {i}\n" for i in range(5000)))

    def progress(done, total):
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        replay_requests(trace, "ddr4_3200", tmp_path / "out.h5", chunk_size=16, progress=progress)
    assert not (tmp_path / "out.h5").exists()
    assert not _reader_threads()


@pytest.mark.parametrize("stagger,want", [(True, [(12480, 0), (18720, 1)]), (False, [(12480, 0), (12481, 1)])])
def test_refresh_nodes_fall_due_staggered_or_all_at_once(stagger, want):
    # ddr4_3200: nREFI 12480 per rank, two ranks. Staggered, rank 1 falls due half an interval
    # after rank 0; all at once, both at 12480, and the shared command bus takes one per cycle.
    from pimdram import MemorySystem
    ms = MemorySystem("ddr4_3200", {"controller.refresh_stagger": stagger}, command_log=True)
    ms.run_until(20000)
    log = ms.command_log()
    refab = log["command"] == ms.spec.command_index("REFab")
    assert list(zip(log["cycle"][refab].tolist(), log["rank"][refab].tolist())) == want
