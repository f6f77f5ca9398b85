"""Replays a request trace on a memory system: resolve the config, stream the trace through the
engine in chunks, and write the statistics file."""
import concurrent.futures
import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _signals
from ._atomic import one_run, output_path
from ._engine import SCHEDULERS, Engine, latency_bin_edges
from .config.files import names_a_file
from .config.memory import COMMAND_KINDS, MemorySpec, load_memory
from .energy import dram_energy, power_level
from .stats import StatsWriter, schema, standard_columns, standard_table
from .trace.requests import open_request_trace
from .trace.source import trace_source

LATENCY_PERCENTILES = (50, 90, 99)


def engine_params(spec: MemorySpec, command_log=False):
    """The plain data the engine is built from (everything already in cycles)."""
    bank = spec.bank_level

    def command(kind, scope=bank):
        # normal traffic uses the standard's commands: of the normal row buffer, on every bank of
        # their node (not a PIM design's same-bank PRESB or its PIM-row-buffer PIM_PRE, which
        # would leave banks open before a refresh)
        for i, c in enumerate(spec.commands):
            if c.kind == kind and c.scope == scope and c.banks == "all" and c.row_buffer == "normal":
                return i
        return -1

    ref = spec.refresh
    rows = spec.constraint_table()
    n_levels = len(spec.levels)
    field_id = [spec.levels.index(f) if f in spec.levels else (n_levels if f == "row" else n_levels + 1)
                for f, _ in spec.address_mapping]
    ctl = spec.controller
    multi_bank_refresh = ref is not None and ref.scope < bank
    return dict(
        counts=spec.counts,
        cmd_kind=[COMMAND_KINDS.index(c.kind) for c in spec.commands],
        cmd_scope=[c.scope for c in spec.commands],
        cmd_bus=[c.bus for c in spec.commands],
        cmd_bus_cycles=[c.bus_cycles for c in spec.commands],
        separate_bus=spec.separate_row_column_bus,
        read_latency=spec.read_latency,
        write_latency=spec.write_latency,
        cmd_act=command("activate"), cmd_pre=command("precharge"),
        cmd_rd=command("read"), cmd_wr=command("write"),
        cmd_rda=command("read_precharge"), cmd_wra=command("write_precharge"),
        # close a refreshed node's banks with one precharge when the standard has one of that scope
        cmd_pre_refresh=command("precharge", ref.scope) if multi_bank_refresh else -1,
        row_level=rows["level"], row_from=rows["from_cmd"], row_to=rows["to_cmd"],
        row_latency=rows["latency"], row_window=rows["window"], row_sibling=rows["sibling"],
        refresh_cmd=ref.command if ref else -1,
        refresh_level=ref.scope if ref else 1,
        refresh_interval=ref.interval if ref else 0,
        refresh_stagger=ctl.refresh_stagger,
        leave_queue_at_activate=ctl.leave_queue_at == "activate",
        offer_rate=spec.offer_rate,
        read_queue=ctl.read_queue, write_queue=ctl.write_queue, bank_queue=ctl.bank_queue,
        scheduler=SCHEDULERS.index(ctl.scheduler), row_hit_cap=ctl.row_hit_cap,
        closed_page=int(ctl.row_policy == "closed"),
        wq_high=max(1, math.ceil(ctl.write_high_watermark * ctl.write_queue)),
        wq_low=int(ctl.write_low_watermark * ctl.write_queue),
        power_level=power_level(spec),
        **_pim_params(spec),
        field_id=field_id, field_bits=[b for _, b in spec.address_mapping], offset_bits=spec.offset_bits,
        access_bytes=spec.access_bytes, log=bool(command_log),
    )


# Requests per chunk handed to the engine: small enough that reading the next chunk overlaps
# simulating this one from the start, large enough that the per-chunk overhead stays negligible.
REPLAY_CHUNK_SIZE = 1 << 16
#: Requests in the first chunk: the engine waits for it alone (read, parsed and decoded before
#: anything else runs), so it is small; the reader thread gets ahead of the engine meanwhile.
REPLAY_FIRST_CHUNK = 1 << 13


def decode_chunk(engine, chunk, spec):
    """The engine's decoded accesses for a RequestChunk: requests larger than one access become
    consecutive accesses. Returns (decoded, number of requests)."""
    size = chunk.size if chunk.size.any() else None
    return engine.decode(chunk.address, chunk.is_write, chunk.arrival, size, spec.request_bytes), chunk.n_requests


_DONE = object()


def prefetched(reader, engine, spec, depth=2, after_reading=None):
    """Yield (decoded, n_requests, bytes_read) for every chunk of `reader`, in order. Reading,
    parsing and decoding run on a second thread, `depth` chunks ahead, while the caller simulates
    (both sides release the GIL). An error of the reader is raised here, at its chunk.

    `after_reading`, a Future whose result is a callable's, runs that callable on the second
    thread once the trace is read (while the last chunks are simulated); the Future gets its
    result or its exception."""
    chunks = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce():
        try:
            for chunk in reader:
                decoded, n = decode_chunk(engine, chunk, spec)
                if not put((decoded, n, reader.bytes_read)):
                    return
            if after_reading is not None:
                _run_into(after_reading)
            put(_DONE)
        except BaseException as exc:       # handed to the consumer, raised there
            put(exc)

    worker = threading.Thread(target=produce, name="pimdram-trace-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


class _Deferred(concurrent.futures.Future):
    """A Future for a callable that prefetched() runs on its reader thread once the trace is read
    (work that would otherwise wait on the simulating thread)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn


def _run_into(deferred):
    if deferred.set_running_or_notify_cancel():
        try:
            deferred.set_result(deferred.fn())
        except BaseException as exc:
            deferred.set_exception(exc)


def _pim_params(spec):
    """The PIM part of engine_params: command attributes, units and the traffic mode."""
    pim = spec.pim
    units = list(pim.units.values()) if pim is not None else []
    unit_index = {u.name: i for i, u in enumerate(units)}
    return dict(
        pim_mode=0 if pim is None else (1 if pim.mode == "concurrent" else 2),
        # a selecting command acts on bank k of every `period` consecutive banks of its node
        cmd_sel=[spec.selection_period(c) for c in spec.commands],
        cmd_rb=[int(c.row_buffer == "pim") for c in spec.commands],
        cmd_unit=[unit_index.get(c.unit, -1) for c in spec.commands],
        units=[(u.level, u.banks_per_unit) for u in units],
    )


class CommandLogExpander:
    """Turns the engine's (channel, node) log into one index column per organisation level.

    A selecting PIM command (`banks: same` or `banks: LEVEL`) is logged by the engine as
    node + n_nodes * (k + 1): its scope node and the choice k of its bank under each node of
    its selection level. Its row names the scope node down to the scope level, -1 from there
    down to the selection level (every node of those levels), and the chosen bank's path below
    the selection level (e.g. MACPB, the same bank in every pseudo-channel: channel c,
    pseudo_channel -1, sid, bank_group, bank; MACSB, bank k of every bank group: bank k)."""

    def __init__(self, engine, spec):
        levels, index = engine.node_levels()
        counts = spec.counts
        n_levels = len(counts)
        table = np.full((len(levels), n_levels), -1, dtype=np.int32)
        for node, (lv, ix) in enumerate(zip(levels, index)):
            for m in range(1, lv + 1):
                span = int(np.prod(counts[m + 1: lv + 1], dtype=np.int64)) if m < lv else 1
                table[node, m] = (ix // span) % counts[m]
        self.table = table
        self.levels = spec.levels
        self.counts = [int(c) for c in counts]
        self.selection = np.array([-1 if spec.selection_level(c) is None else spec.selection_level(c)
                                   for c in spec.commands] or [-1], dtype=np.int64)

    def __call__(self, log):
        out = {"cycle": log["cycle"], "command": log["command"], "channel": log["channel"]}
        n_nodes = len(self.table)
        node = np.asarray(log["node"])
        select = node // n_nodes - 1
        per_node = self.table[node % n_nodes]
        for m, name in enumerate(self.levels[1:], start=1):
            out[name] = per_node[:, m]
        if (select >= 0).any():
            level = self.selection[np.asarray(log["command"], dtype=np.int64)]
            rest = select.astype(np.int64)
            # the choice k, digit by digit from the bank level up to just below the selection level
            for m in range(len(self.levels) - 1, 0, -1):
                digit = np.where(m > level, rest % self.counts[m], -1)
                rest = np.where(m > level, rest // self.counts[m], rest)
                out[self.levels[m]] = np.where(select >= 0, np.where(m > level, digit, out[self.levels[m]]),
                                               out[self.levels[m]]).astype(np.int32)
        out["row"] = log["row"]
        out["column"] = log["column"]
        return out


@dataclass
class ReplayResult:
    output: Path
    summary: dict


@one_run
def replay_requests(trace, memory, output, *, trace_format="auto", overrides=None, command_log=False,
                    overwrite=False, progress=None, seed=0, chunk_size=REPLAY_CHUNK_SIZE):
    """Replay request trace `trace` on memory `memory` (preset name, YAML path or MemorySpec) and
    write the statistics to `output` (HDF5). Returns a ReplayResult with the run summary.

    `progress(done, total)` is called as the trace is consumed (bytes of the trace file).
    """
    started = time.perf_counter()
    trace = trace_source(trace)
    inputs = ([trace.path] if trace.path else []) + \
        ([memory] if not isinstance(memory, MemorySpec) and names_a_file(memory) else [])
    output = output_path(output, overwrite=overwrite, inputs=inputs)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in 0..2**63-1, got {seed!r}")
    spec = memory if isinstance(memory, MemorySpec) else load_memory(memory, overrides)
    reader = open_request_trace(trace, trace_format, chunk_size, first_chunk_size=REPLAY_FIRST_CHUNK)
    engine = Engine(engine_params(spec, command_log))
    # the configuration as YAML (milliseconds of Python) is made on the reader thread once the
    # trace is read, while the engine simulates; it is set before the file is committed
    config_yaml = _Deferred(spec.to_yaml)
    attrs = {
        schema.ATTR_CONFIG: "",
        schema.ATTR_TRACE_SHA256: "",
        schema.ATTR_TRACE_PATH: str(trace),
        schema.ATTR_SEED: int(seed),
        schema.ATTR_COMMAND_NAMES: spec.command_names,
        schema.ATTR_LEVELS: list(spec.levels),
        "description": f"replay of {Path(trace.name).name} on {spec.name}",
        "trace-format": reader.format,
    }
    requests = 0
    with StatsWriter(output, attrs, overwrite=overwrite, inputs=inputs) as writer:
        log_writer = expander = None
        if command_log:
            cols = standard_columns(schema.COMMAND_LOG, levels=spec.levels)
            log_writer = writer.append_table(schema.COMMAND_LOG, {c: d for c, d, _ in cols},
                                             {c: u for c, _, u in cols}, attrs={"names": spec.command_names})
            expander = CommandLogExpander(engine, spec)
        for decoded, n_req, bytes_read in prefetched(reader, engine, spec, after_reading=config_yaml):
            _signals.check()      # a signal recorded where it could not be raised stops the run here
            requests += n_req
            engine.feed_decoded(decoded)
            engine.run(False)
            if log_writer is not None:
                log_writer.append(expander(engine.take_log()))
            if progress is not None and reader.size_bytes:
                progress(bytes_read, reader.size_bytes)
        engine.run(True)
        end = max(engine.completion_cycle, engine.current_cycle)
        engine.close(end)
        if log_writer is not None:
            log_writer.append(expander(engine.take_log()))
        wall = time.perf_counter() - started
        tables = result_tables(spec, engine.counters(), end, requests, wall)
        for name, table in tables.items():
            writer.write_table(name, table)
        writer.attrs[schema.ATTR_TRACE_SHA256] = reader.sha256()
        writer.attrs[schema.ATTR_CONFIG] = config_yaml.result()
        summary = {k: v[0].item() for k, v in tables[schema.SUMMARY].columns.items()}
    return ReplayResult(output, summary)


def result_tables(spec, counters, cycles, requests, wall_seconds):
    """The standard stats tables from the engine's counters."""
    names = spec.command_names
    commands = counters["commands"]
    n_ch = spec.n_channels
    reads, writes = counters["reads"], counters["writes"]
    hist = counters["latency_histogram"]
    starts, ends = latency_bin_edges()
    centres = (starts + ends - 1) / 2.0

    energy = dram_energy(spec, {n: commands[:, i] for i, n in enumerate(names)},
                         counters["active_cycles"], cycles)
    channels = {"channel": np.arange(n_ch)}
    for i, n in enumerate(names):
        channels[schema.command_column(n)] = commands[:, i]
    channels.update(
        reads=reads, writes=writes,
        bytes_read=reads * spec.access_bytes, bytes_written=writes * spec.access_bytes,
        row_hits=counters["row_hits"], row_misses=counters["row_misses"], row_conflicts=counters["row_conflicts"],
        busy_cycles=(reads + writes) * spec.timing["nBL"],
        energy_j=energy["total_j"],
    )
    for k, kind in enumerate(schema.LATENCY_KINDS):
        n = reads if k == 0 else writes
        with np.errstate(invalid="ignore", divide="ignore"):
            channels[f"{kind}_latency_mean"] = np.where(n > 0, counters["latency_sum"][:, k] / np.maximum(n, 1), np.nan)
        for p in LATENCY_PERCENTILES:
            channels[f"{kind}_latency_p{p}"] = np.array(
                [_percentile(hist[c, k], centres, starts, p) for c in range(n_ch)], dtype=np.float64)
        channels[f"{kind}_latency_max"] = np.where(n > 0, counters["latency_max"][:, k], np.nan).astype(np.float64)

    nz_c, nz_k, nz_b = np.nonzero(hist)
    histogram = {"channel": nz_c, "kind": nz_k, "bin_start": starts[nz_b], "bin_end": ends[nz_b],
                 "count": hist[nz_c, nz_k, nz_b]}

    window = counters["bandwidth_window"]
    bw = {"step": np.arange(len(counters["bandwidth_read"]), dtype=np.int64) * window,
          "bytes_read": counters["bandwidth_read"], "bytes_written": counters["bandwidth_write"]}

    total_reads, total_writes = int(reads.sum()), int(writes.sum())
    seconds = cycles * spec.tck_ns * 1e-9
    bytes_total = (total_reads + total_writes) * spec.access_bytes
    summary = {
        "cycles": cycles, "tck_ns": spec.tck_ns, "simulated_seconds": seconds,
        "requests": requests, "reads": total_reads, "writes": total_writes,
        "bytes_read": total_reads * spec.access_bytes, "bytes_written": total_writes * spec.access_bytes,
        "row_hits": int(counters["row_hits"].sum()), "row_misses": int(counters["row_misses"].sum()),
        "row_conflicts": int(counters["row_conflicts"].sum()),
        "read_latency_mean": counters["latency_sum"][:, 0].sum() / total_reads if total_reads else math.nan,
        "write_latency_mean": counters["latency_sum"][:, 1].sum() / total_writes if total_writes else math.nan,
        "bandwidth": bytes_total / seconds if seconds > 0 else 0.0,
        "peak_bandwidth": spec.peak_bandwidth,
        "energy_j": float(np.sum(energy["total_j"])),
        "wall_seconds": wall_seconds,
        "requests_per_second": requests / wall_seconds if wall_seconds > 0 else 0.0,
    }
    return {
        schema.SUMMARY: standard_table(schema.SUMMARY, {k: np.array([v]) for k, v in summary.items()}),
        schema.CHANNELS: standard_table(schema.CHANNELS, channels, command_names=names),
        schema.LATENCY_HISTOGRAM: standard_table(schema.LATENCY_HISTOGRAM, histogram),
        schema.BANDWIDTH: standard_table(schema.BANDWIDTH, bw, attrs={"window": window}),
        schema.ENERGY: standard_table(schema.ENERGY, {"channel": np.arange(n_ch), **energy}),
    }


def _percentile(counts, centres, starts, p):
    """The p-th percentile of a latency histogram (exact below 1024 cycles, <1% above)."""
    total = counts.sum()
    if total == 0:
        return math.nan
    idx = int(np.searchsorted(np.cumsum(counts), math.ceil(total * p / 100.0)))
    return float(starts[idx]) if starts[idx] < 1024 else float(centres[idx])
