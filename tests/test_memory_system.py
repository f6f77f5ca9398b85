"""The host-simulator API (pimdram.MemorySystem): the same engine as replay driven request by
request; latencies worked out by hand on DDR4-3200 and HBM3; acceptance, offer rate, clock ratio,
completions and statistics."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pimdram import MemorySystem
from pimdram.check import check_stats_file
from pimdram.cli import cli
from pimdram.config import list_configs
from pimdram.config.memory import load_memory
from pimdram.errors import ConfigError, PimdramError, UsageError
from pimdram.replay import replay_requests
from pimdram.stats import open_stats, schema
from pimdram.stats.report import summarize
from pim_programs import PimRun, gemv_program
from timing_cases import encode_address

NO_REFRESH = {"controller.refresh": "none"}
EVERY_PRESET = list_configs("dram") + list_configs("compare") + list_configs("pim")


def ddr4_address(rank=0, bank_group=0, bank=0, row=0, column=0):
    spec = load_memory("ddr4_3200", NO_REFRESH)
    return int(encode_address(spec, 0, (rank, bank_group, bank), row, column))


# --- one request, worked out by hand -------------------------------------------------------------
# ddr4_3200: nRCD 22, nCL 22, nCWL 16, nBL 4. A request sent at cycle 0 is seen at cycle 1, where
# its ACT issues; its column command nRCD later, at 23; the data is done nCL + nBL (read) or
# nCWL + nBL (write) after that.

def test_a_read_to_a_closed_bank_completes_act_rcd_cl_bl_after_it_was_sent():
    ms = MemorySystem("ddr4_3200", NO_REFRESH)
    assert ms.send(ddr4_address(row=5), tag=7)
    assert ms.outstanding == 1
    ms.run_until(48)
    assert len(ms.completed().tag) == 0
    ms.tick()
    done = ms.completed()
    assert done.tag.tolist() == [7] and done.cycle.tolist() == [49] and done.latency.tolist() == [49]
    assert ms.outstanding == 0


def test_a_write_completes_cwl_bl_after_its_column_command():
    ms = MemorySystem("ddr4_3200", NO_REFRESH)
    ms.run_until(10)
    assert ms.send(ddr4_address(row=5), is_write=True)
    end = ms.drain()
    assert end == 10 + 1 + 22 + 16 + 4
    done = ms.completed()
    assert done.tag.tolist() == [ddr4_address(row=5)]      # the tag defaults to the address
    assert done.latency.tolist() == [1 + 22 + 16 + 4]


def test_a_cache_line_of_two_hbm3_accesses_completes_with_its_second():
    # hbm3_6.4gbps: 64 B requests are two 32 B accesses to columns 0 and 1 of one row (the low
    # column bit is the lowest mapped bit). ACT at 1, RD at 1 + nRCD 31 = 32, the second RD
    # nCCD_L 4 later (same bank group) at 36, done nCL 20 + nBL 2 later: 58.
    ms = MemorySystem("hbm3_6.4gbps", NO_REFRESH)
    assert ms.send(0, tag=1)
    ms.drain()
    done = ms.completed()
    assert done.tag.tolist() == [1] and done.cycle.tolist() == [58] and done.latency.tolist() == [58]
    assert ms.stats()["reads"] == 2 and ms.stats()["requests"] == 1


def test_the_callback_gets_each_completion_in_order_and_completed_then_has_none():
    got = []
    ms = MemorySystem("ddr4_3200", NO_REFRESH, on_complete=lambda *c: got.append(c))
    # rows 1 and 2 of bank 0 (a conflict: the second waits for PRE and ACT) and a hit to row 1
    ms.send(ddr4_address(row=1, column=0), tag=1)
    ms.send(ddr4_address(row=2, column=0), tag=2)
    ms.send(ddr4_address(row=1, column=1), tag=3)
    ms.drain()
    assert [g[0] for g in got] == [1, 3, 2]
    assert all(isinstance(x, int) for g in got for x in g)
    assert [g[1] for g in got] == sorted(g[1] for g in got)
    assert len(ms.completed().tag) == 0


# --- acceptance ----------------------------------------------------------------------------------

def test_send_refuses_a_read_when_the_channel_read_queue_is_full():
    # ddr4_3200 holds 32 reads per channel; a read leaves the queue when its column command issues:
    # the first one's RD at 1 + nRCD = 23
    ms = MemorySystem("ddr4_3200", NO_REFRESH)
    addresses = [ddr4_address(bank_group=i % 4, bank=(i // 4) % 4, row=i) for i in range(33)]
    assert all(ms.send(a) for a in addresses[:32])
    assert not ms.will_accept(addresses[32]) and not ms.send(addresses[32])
    assert ms.will_accept(addresses[32], is_write=True)        # the write queue has room
    ms.run_until(22)
    assert not ms.send(addresses[32])
    ms.tick()
    assert ms.cycle == 23 and ms.will_accept(addresses[32]) and ms.send(addresses[32])


def test_an_offer_rate_of_one_takes_one_request_per_cycle():
    ms = MemorySystem("ddr4_3200", {"frontend.offer_rate": 1, **NO_REFRESH})
    assert ms.send(ddr4_address(row=1))
    assert not ms.will_accept(ddr4_address(row=2)) and not ms.send(ddr4_address(row=2))
    ms.tick()
    assert ms.send(ddr4_address(row=2))


def test_a_batch_waits_in_the_frontend_until_its_arrival_cycles():
    ms = MemorySystem("ddr4_3200", NO_REFRESH)
    assert ms.send_batch([ddr4_address(row=1), ddr4_address(row=1, column=1)], arrival=[5, 9], tags=[10, 11]) == 2
    assert ms.pending == 2 and ms.outstanding == 2
    assert not ms.send(ddr4_address(row=3))                    # in order: behind the batch
    ms.run_until(5)
    assert ms.pending == 1
    ms.run_until(9)
    assert ms.pending == 0
    ms.drain()
    done = ms.completed()
    # the first: ACT at 6, RD at 28, done at 54; the second, a row hit seen at 10, RD at
    # 28 + nCCD_L 8 = 36 (same bank), done at 62
    assert done.tag.tolist() == [10, 11] and done.cycle.tolist() == [54, 62]
    assert done.latency.tolist() == [49, 53]


def test_pending_counts_requests_not_wholly_accepted():
    # ddr4_3200's read queue holds 32 accesses: 15 requests of 128 B (two 64 B accesses each) and
    # the first two of a 192 B request fill it; its third access and three 64 B requests wait.
    # The first RD (ACT at 1, RD at 1 + nRCD 22 = 23) frees a place; the frontend runs after the
    # controllers in a cycle, so the third access goes in at 23 and three requests wait.
    ms = MemorySystem("ddr4_3200", NO_REFRESH)
    sizes = [128] * 15 + [192] + [64] * 3
    assert ms.send_batch([i << 20 for i in range(19)], sizes=sizes, tags=np.arange(19)) == 19
    assert ms.pending == 4 and ms.outstanding == 19
    ms.run_until(22)
    assert ms.pending == 4
    ms.run_until(23)
    assert ms.pending == 3


def test_a_backlog_over_many_batches_keeps_the_replay_order(replayed):
    # 12,000 requests handed over in batches of 500 far ahead of their arrival cycles: the
    # frontend's backlog outgrows its arrays several times while requests wait in it
    spec = load_memory("ddr4_3200")
    trace = _trace(12000, 11)
    cycles, log, _ = replayed("ddr4_3200-backlog", spec, trace)
    ms = MemorySystem(spec, command_log=True)
    address, is_write, arrival = trace
    for lo in range(0, 12000, 500):
        ms.send_batch(address[lo:lo + 500], is_write[lo:lo + 500], arrival=arrival[lo:lo + 500])
        ms.run_until(ms.cycle + 20)
    assert ms.pending > 9000
    assert ms.finish() == cycles
    got = ms.command_log()
    for column in log:
        np.testing.assert_array_equal(got[column], log[column], err_msg=column)


# --- clocks --------------------------------------------------------------------------------------

def test_a_host_at_twice_the_memory_clock_sees_the_read_after_twice_the_cycles():
    ms = MemorySystem("ddr4_3200", NO_REFRESH, host_clock_ghz=3.2)   # tCK 0.625 ns: 1.6 GHz
    assert ms.clock_ratio == 2
    ms.send(ddr4_address(row=5))
    ms.tick(97)
    assert ms.cycle == 48 and len(ms.completed().tag) == 0
    ms.tick()
    assert ms.cycle == 49 and ms.completed().cycle.tolist() == [49]
    assert ms.host_cycles(49) == 98


def test_a_fractional_clock_ratio_floors_host_time_to_memory_cycles():
    ms = MemorySystem("ddr4_3200", NO_REFRESH, host_clock_ghz=2.0)   # 1.25 host cycles per memory cycle
    assert ms.clock_ratio == pytest.approx(1.25)
    ms.tick(10)
    assert ms.cycle == 8 and ms.memory_cycle(11) == 8 and ms.memory_cycle(12) == 9
    assert ms.host_cycles(49) == 62


def test_time_does_not_go_back():
    ms = MemorySystem("ddr4_3200")
    ms.run_until(100)
    with pytest.raises(UsageError, match="already at cycle 100"):
        ms.run_until(99)
    with pytest.raises(UsageError, match="negative"):
        ms.tick(-1)


# --- the same engine as replay -------------------------------------------------------------------

def _trace(n, seed):
    """Reads and writes, half random over 1 GiB, half within 64 KB (row hits), in bursts of
    requests sharing an arrival cycle (so queues fill) with gaps between bursts."""
    rng = np.random.default_rng(seed)
    address = np.where(rng.random(n) < 0.5, rng.integers(0, 1 << 30, n), rng.integers(0, 1 << 16, n))
    address = address.astype(np.uint64) & ~np.uint64(63)
    is_write = (rng.random(n) < 0.3).astype(np.uint8)
    arrival = np.cumsum(np.where(rng.random(n) < 0.8, 0, rng.integers(1, 60, n))).astype(np.int64)
    return address, is_write, arrival


def _replayed(spec, address, is_write, arrival, tmp_path):
    """`pimdram replay` itself (replay_requests, the CLI's one API call) of the trace written as a
    DRAMsim3 text file, with its command log: cycles, command log and summary from its stats file."""
    trace = tmp_path / "trace.dramsim3"
    trace.write_text("".join(f"{a:#x} {'WRITE' if w else 'READ'} {t}\n"
                             for a, w, t in zip(address.tolist(), is_write.tolist(), arrival.tolist())))
    result = replay_requests(trace, spec, tmp_path / "replay.h5", command_log=True)
    with open_stats(result.output) as stats:
        log = stats.table(schema.COMMAND_LOG)
    return result.summary["cycles"], log, summarize(result.output)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """_replayed, once per preset for both ways of driving the API."""
    done = {}

    def get(preset, spec, trace):
        if preset not in done:
            done[preset] = _replayed(spec, *trace, tmp_path_factory.mktemp(preset))
        return done[preset]
    return get


def _one_at_a_time(spec, address, is_write, arrival):
    """A host that sends each request at its arrival cycle and, when refused, retries every cycle."""
    ms = MemorySystem(spec, command_log=True)
    for a, w, t in zip(address.tolist(), is_write.tolist(), arrival.tolist()):
        if t > ms.cycle:
            ms.run_until(t)
        while not ms.send(a, bool(w)):
            ms.tick()
    return ms.finish(), ms.command_log(), ms.engine.counters(), ms


def _in_batches(spec, address, is_write, arrival):
    """A host that hands over the requests in batches, each with its arrival cycles."""
    ms = MemorySystem(spec, command_log=True)
    for part in np.array_split(np.arange(len(address)), 4):
        ms.send_batch(address[part], is_write[part], arrival=arrival[part])
        while ms.pending and ms.cycle < arrival[part[-1]]:
            ms.run_until(min(ms.cycle + 50, int(arrival[part[-1]])))
    return ms.finish(), ms.command_log(), ms.engine.counters(), ms


@pytest.mark.parametrize("drive", [_one_at_a_time, _in_batches], ids=["one-at-a-time", "batches"])
@pytest.mark.parametrize("preset", EVERY_PRESET)
def test_a_trace_through_the_api_gives_the_replay_cycles_and_command_log(preset, drive, replayed):
    spec = load_memory(preset)
    trace = _trace(1500, 3)
    cycles, log, summary = replayed(preset, spec, trace)
    summary = dict(summary)
    got_cycles, got_log, _, ms = drive(spec, *trace)
    assert got_cycles == cycles
    assert set(got_log) == set(log)
    for column in log:
        np.testing.assert_array_equal(got_log[column], log[column], err_msg=column)
    # and the summary `pimdram report --json` gives, but for what names the run
    stats = ms.stats()
    for key in ("file", "creation_date", "description", "trace_path", "trace_sha256", "wall_seconds",
                "requests_per_second"):
        stats.pop(key)
        summary.pop(key)
    assert stats == summary


def test_completions_agree_with_the_command_log_and_the_latency_statistics():
    # one access per request (dramsim3_hbm2: 64 B accesses): every read completes nCL + nBL after
    # its RD, every write nCWL + nBL after its WR, and their latencies add up to the engine's sum
    spec = load_memory("dramsim3_hbm2_8gb_x128")
    address, is_write, arrival = _trace(3000, 5)
    ms = MemorySystem(spec, command_log=True)
    ms.send_batch(address, is_write, arrival=arrival, tags=np.arange(3000))
    ms.drain()
    done = ms.completed()
    assert sorted(done.tag.tolist()) == list(range(3000))
    log = ms.command_log()
    names = np.array(spec.command_names)[log["command"]]
    rd, wr = log["cycle"][names == "RD"], log["cycle"][names == "WR"]
    want = np.sort(np.concatenate([rd + spec.read_latency, wr + spec.write_latency]))
    np.testing.assert_array_equal(np.sort(done.cycle), want)
    assert np.all(np.diff(done.cycle) >= 0)
    assert done.latency.sum() == ms.engine.counters()["latency_sum"].sum()


def test_a_pim_program_sent_through_the_api_starts_one_cycle_after_it_is_fed():
    # the API's engine has simulated cycle 0 when the host first gets it, so a program fed then
    # starts at cycle 1 (as a request sent at 0 is seen at 1); everything else is the same
    spec = load_memory("attacc-bank", NO_REFRESH)
    program = gemv_program(spec, "MACAB", n_macs=6)
    reference = PimRun("attacc-bank", program)
    ms = MemorySystem(spec, command_log=True)
    names = spec.command_names
    columns = list(zip(*[(ch, names.index(n), ms.engine.node_id(p), s, r, o) for ch, n, p, s, r, o in program]))
    ms.feed_program(*[np.array(c) for c in columns])
    ms.drain()
    log = ms.command_log()
    assert [names[k] for k in log["command"]] == [n for _, n in reference.log]
    np.testing.assert_array_equal(log["cycle"], np.array([c for c, _ in reference.log]) + 1)


# --- results -------------------------------------------------------------------------------------

def test_stats_are_what_report_json_says_about_the_written_file(tmp_path):
    ms = MemorySystem("hbm2_2gbps", command_log=True)
    address, is_write, arrival = _trace(2000, 7)
    ms.send_batch(address, is_write, arrival=arrival)
    ms.drain()
    stats = ms.stats()
    path = ms.write_stats(tmp_path / "api.h5")
    result = CliRunner().invoke(cli, ["report", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("file", "creation_date"):
        report.pop(key)
        stats.pop(key)
    assert stats == report
    assert report["requests"] == 2000 and report["cycles"] == ms.cycle
    assert check_stats_file(path).ok


def test_a_closed_memory_system_refuses_further_use():
    with MemorySystem("ddr4_3200") as ms:
        ms.send(0)
    with pytest.raises(UsageError, match="closed"):
        ms.tick()


def test_bad_arguments_are_errors():
    with pytest.raises(ConfigError):
        MemorySystem("ddr4_3200", clock_ratio=0)
    with pytest.raises(ConfigError):
        MemorySystem("ddr4_3200", {"frontend.offer_rate": -1})
    ms = MemorySystem("ddr4_3200")
    with pytest.raises(UsageError, match="tag"):
        ms.send(1 << 63)
    with pytest.raises(UsageError, match="64 bits"):
        ms.send(1 << 64, tag=1)
    with pytest.raises(UsageError, match="tags"):
        ms.send_batch([0, 64], tags=[1, 2, 3])
    with pytest.raises(ConfigError, match="command_log"):
        ms.command_log()
