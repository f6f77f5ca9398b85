"""`pimdram.MemorySystem`: the memory driven request by request by a host simulator.

A host (a CPU or accelerator model, gem5, SST, a Python loop) sends requests, ticks the memory
and takes the completed requests, so its next requests can depend on earlier completions. It runs
the same engine as `pimdram replay`, through the same in-order frontend: a trace sent through this
API gives the same cycles and command log as its replay. See docs/api.md.
"""
import math
import numbers
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._engine import Engine
from ._parse import MAX_ARRIVAL_CYCLE as MAX_CYCLE      # the latest cycle the engine counts
from .config.memory import MemorySpec, load_memory
from .errors import ConfigError, UsageError
from .replay import CommandLogExpander, engine_params, result_tables
from .stats import StatsWriter, schema, standard_columns, standard_table

_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
#: host cycles per memory cycle: what a clock ratio may be (a host 10^6 times faster or slower)
_RATIO_RANGE = (Fraction(1, 1_000_000), Fraction(1_000_000))


class Completions(NamedTuple):
    """Requests completed since the last call, in order of completion (numpy int64 arrays)."""
    tag: np.ndarray         # the tag each request was sent with
    cycle: np.ndarray       # memory cycle at which it completed (read: last data beat; write: data written)
    latency: np.ndarray     # cycles from the acceptance of its first access to its completion


class MemorySystem:
    """A memory system simulated cycle by cycle for a host simulator.

    `memory` is a preset name, a YAML (or DRAMsim3 .ini, Ramulator 2 YAML) path, or a resolved
    `MemorySpec`; `overrides` are dotted keys as `--set` takes them. Time is counted in cycles of
    the memory's command clock (`cycle`); the host's clock runs `clock_ratio` host cycles per
    memory cycle (or give `host_clock_ghz`), and `tick(n)` advances n host cycles.

    `on_complete(tag, cycle, latency)`, when given, is called for every completed request, in
    completion order, at the end of each call that advances time; otherwise `completed()`
    returns them in batches. `command_log=True` keeps every issued command (`command_log()`,
    `write_stats`, then `pimdram check`).
    """

    API_VERSION = (1, 0)    # semantic version of this API (docs/api.md)

    def __init__(self, memory, overrides=None, *, clock_ratio=1, host_clock_ghz=None, on_complete=None,
                 command_log=False):
        self.spec = memory if isinstance(memory, MemorySpec) else load_memory(memory, overrides)
        if isinstance(memory, MemorySpec) and overrides:
            raise ConfigError("overrides apply to a preset or file; a resolved MemorySpec takes none")
        if on_complete is not None and not callable(on_complete):
            raise UsageError(f"on_complete must be a function (tag, cycle, latency) or None, got {on_complete!r}")
        if host_clock_ghz is not None:
            _real(host_clock_ghz, "host_clock_ghz")
            if host_clock_ghz <= 0:
                raise ConfigError(f"host_clock_ghz must be positive, got {host_clock_ghz!r}")
            ratio = Fraction(str(host_clock_ghz)) * Fraction(str(self.spec.tck_ns))
            given = f"host_clock_ghz {host_clock_ghz!r}"
        else:
            _real(clock_ratio, "clock_ratio")
            if clock_ratio <= 0:
                raise ConfigError(f"clock_ratio must be positive, got {clock_ratio!r}")
            ratio = Fraction(clock_ratio).limit_denominator(1_000_000) if isinstance(clock_ratio, float) \
                else Fraction(clock_ratio)
            given = f"clock_ratio {clock_ratio!r}"
        if not _RATIO_RANGE[0] <= ratio <= _RATIO_RANGE[1]:
            raise ConfigError(f"{given}: host cycles per memory cycle must lie in 1e-6..1e6, got {float(ratio):g}")
        self.clock_ratio = ratio            # host cycles per memory cycle
        self._p, self._q = ratio.numerator, ratio.denominator
        params = engine_params(self.spec, command_log)
        params["track"] = True
        self._engine = Engine(params)
        self._engine.advance(0)
        self._host = 0
        self._requests = 0
        self._wall = 0.0
        self._request_bytes = self.spec.request_bytes
        self.on_complete = on_complete
        self._log = bool(command_log)
        self._log_chunks = []
        self._expander = CommandLogExpander(self._engine, self.spec) if command_log else None
        self._closed = False

    # --- time ------------------------------------------------------------------------------------
    @property
    def cycle(self):
        """The current memory cycle: every cycle before it has been simulated; a request sent now
        is accepted in this cycle and seen by the controllers from the next."""
        return self._engine.current_cycle

    @property
    def host_cycle(self):
        """The host's cycle count (advanced by tick())."""
        return self._host

    def memory_cycle(self, host_cycle):
        """The memory cycle reached at host cycle `host_cycle` (floor of host_cycle / clock_ratio)."""
        return host_cycle * self._q // self._p

    def host_cycles(self, memory_cycles):
        """The first host cycle at which `memory_cycles` memory cycles have passed."""
        return -(-memory_cycles * self._p // self._q)

    def tick(self, n=1):
        """Advance the host clock by n cycles and the memory with it; delivers completions."""
        _whole(n, "tick(n): n", None, None)
        if n < 0:
            raise UsageError(f"tick(n): n must not be negative, got {n}")
        target = (self._host + n) * self._q // self._p
        if target > MAX_CYCLE:
            raise UsageError(f"tick({n}): memory cycle {target} is beyond the latest the engine counts, 2**60")
        self._host += n
        if target > self._engine.current_cycle:
            self._advance(target)
        elif self.on_complete is not None:
            self._deliver()

    def run_until(self, cycle):
        """Simulate up to memory cycle `cycle` (not before the current one); delivers completions."""
        _whole(cycle, f"run_until({cycle!r}): the cycle", None, MAX_CYCLE,
               "at most 2**60, the latest the engine counts")
        if cycle < self._engine.current_cycle:
            raise UsageError(f"run_until({cycle}): the memory is already at cycle {self._engine.current_cycle}")
        self._advance(cycle)
        self._host = max(self._host, self.host_cycles(cycle))

    def _advance(self, cycle):
        started = time.perf_counter()
        self._engine.advance(cycle)
        self._wall += time.perf_counter() - started
        if self.on_complete is not None:
            self._deliver()

    def finish(self):
        """No more requests for now: simulate until every request sent has been issued to the
        DRAM (and every PIM program has run), as `pimdram replay` does at the end of a trace.
        Returns the cycle of the last completion, which may lie ahead of `cycle`."""
        started = time.perf_counter()
        self._engine.finish()
        self._wall += time.perf_counter() - started
        self._host = max(self._host, self.host_cycles(self._engine.current_cycle))
        if self.on_complete is not None:
            self._deliver()
        return max(self._engine.completion_cycle, self._engine.current_cycle)

    def drain(self):
        """finish(), then simulate up to the last completion so every request is delivered.
        Returns the cycle reached."""
        end = self.finish()
        if end > self._engine.current_cycle:
            self.run_until(end)
        return self._engine.current_cycle

    # --- requests --------------------------------------------------------------------------------
    def send(self, address, is_write=False, *, size=None, tag=None):
        """Offer one request now. Returns False when it cannot be accepted (its queue is full, the
        frontend's offer rate is used up this cycle, or requests sent earlier in a batch still wait
        in the frontend): retry in a later cycle. `size` in bytes (default: the memory's request
        size); a request of several accesses is accepted with its first and the others follow in
        order. `tag` (an int, default the address) comes back with its completion."""
        _whole(address, f"send({address!r}): the address", 0, _UINT64_MAX, "0..2**64-1 (64 bits unsigned)")
        _flag(is_write, f"send({address!r}): is_write")
        if size is not None:
            _whole(size, f"send({address!r}): size", 0, _INT64_MAX, "0..2**63-1 (64 bits signed)")
        if tag is not None:
            _whole(tag, f"send({address!r}): tag", -_INT64_MAX - 1, _INT64_MAX, "64 bits signed")
        if tag is None:
            tag = address
            if address > _INT64_MAX:
                raise UsageError(f"address {address:#x} does not fit a tag (a signed 64-bit integer); pass tag=")
        try:
            accepted = self._engine.offer(address, is_write, size or 0, tag, self._request_bytes)
        except OverflowError:
            raise UsageError(f"send({address!r}, tag={tag!r}): the address must fit 64 bits unsigned, "
                             "the tag and size 64 bits signed") from None
        if accepted:
            self._requests += 1
        return accepted

    def will_accept(self, address, is_write=False):
        """Whether send(address, is_write) would be accepted now."""
        _whole(address, f"will_accept({address!r}): the address", 0, _UINT64_MAX, "0..2**64-1 (64 bits unsigned)")
        _flag(is_write, f"will_accept({address!r}): is_write")
        try:
            return self._engine.will_accept(address, is_write)
        except OverflowError:
            raise UsageError(f"will_accept({address!r}): the address must fit 64 bits unsigned") from None

    def send_batch(self, addresses, is_write=False, *, sizes=None, tags=None, arrival=None):
        """Queue many requests at once in the in-order frontend, behind any still waiting there.
        Each is offered no earlier than its `arrival` memory cycle (default: now) and accepted as
        its queue allows while time advances (`pending` counts those not yet accepted). Arrays
        or scalars; `tags` default to the addresses. Returns the number queued."""
        addresses = _column(addresses, None, np.uint64, "addresses")
        n = len(addresses)
        if n == 0:
            return 0
        is_write = _column(is_write, n, np.uint8, "is_write", high=1)
        arrival = _column(self._engine.current_cycle if arrival is None else arrival, n, np.int64, "arrival",
                          high=MAX_CYCLE)
        if sizes is not None:
            sizes = _column(sizes, n, np.int64, "sizes", low=0)
        if tags is None:
            if addresses.max() > _INT64_MAX:
                raise UsageError("an address does not fit a tag (a signed 64-bit integer); pass tags=")
            tags = addresses.astype(np.int64)
        else:
            tags = _column(tags, n, np.int64, "tags")
        started = time.perf_counter()
        queued = self._engine.offer_batch(addresses, is_write, arrival, sizes, tags, self._request_bytes)
        self._wall += time.perf_counter() - started
        self._requests += queued
        return queued

    @property
    def pending(self):
        """Requests queued by send_batch (or the rest of a multi-access send) not yet accepted."""
        return self._engine.pending_requests

    @property
    def outstanding(self):
        """Requests sent and not yet delivered as completed."""
        return self._engine.live_requests

    def completed(self):
        """The requests completed up to the current cycle and not delivered before, as
        `Completions(tag, cycle, latency)` numpy arrays in completion order."""
        engine = self._engine
        if engine.next_completion > engine.current_cycle:
            return _NONE
        return Completions(*engine.take_completions(engine.current_cycle))

    def _deliver(self):
        if self._engine.next_completion > self._engine.current_cycle:
            return
        tags, cycles, latencies = self._engine.take_completions(self._engine.current_cycle)
        callback = self.on_complete
        for tag, cycle, latency in zip(tags.tolist(), cycles.tolist(), latencies.tolist()):
            callback(tag, cycle, latency)

    # --- PIM -------------------------------------------------------------------------------------
    def feed_program(self, channel, command, node, select, row, occupancy):
        """Queue PIM command programs (docs/pim-configs.md, "How the engine runs PIM commands"):
        one entry per command, issued in order per channel while time advances. The previous
        programs must have run (finish() or drain() waits for them)."""
        try:
            self._engine.feed_program(channel, command, node, select, row, occupancy)
        except (ValueError, RuntimeError) as e:
            raise UsageError(f"feed_program: {e}") from None

    @property
    def engine(self):
        """The underlying engine (node ids for programs: engine.node_id(path))."""
        return self._engine

    # --- results ---------------------------------------------------------------------------------
    def command_log(self):
        """Every command issued so far (with command_log=True): columns cycle, command, one per
        organisation level, row, column, as in the stats file's command_log table."""
        if not self._log:
            raise ConfigError("the command log was not kept: construct with command_log=True")
        self._take_log()
        cols = [c for c, _, _ in standard_columns(schema.COMMAND_LOG, levels=self.spec.levels)]
        if not self._log_chunks:
            return {c: np.zeros(0, dtype=d) for c, d, _ in
                    standard_columns(schema.COMMAND_LOG, levels=self.spec.levels)}
        return {c: np.concatenate([chunk[c] for chunk in self._log_chunks]) for c in cols}

    def _take_log(self):
        chunk = self._expander(self._engine.take_log())
        if len(chunk["cycle"]):
            self._log_chunks.append(chunk)

    def _tables(self):
        end = max(self._engine.current_cycle, self._engine.completion_cycle)
        counters = self._engine.counters()
        counters["active_cycles"] = self._engine.active_cycles_until(end)
        return result_tables(self.spec, counters, end, self._requests, self._wall)

    def write_stats(self, path, *, overwrite=False):
        """Write the statistics so far to an HDF5 stats file (docs/stats-format.md), the file
        `pimdram replay` writes (written to a temporary name and renamed when complete)."""
        spec = self.spec
        attrs = {
            schema.ATTR_CONFIG: spec.to_yaml(),
            schema.ATTR_TRACE_SHA256: "",
            schema.ATTR_TRACE_PATH: "",
            schema.ATTR_SEED: 0,
            schema.ATTR_COMMAND_NAMES: spec.command_names,
            schema.ATTR_LEVELS: list(spec.levels),
            "description": f"pimdram.MemorySystem on {spec.name}",
            "trace-format": "api",
        }
        with StatsWriter(Path(path), attrs, overwrite=overwrite) as writer:
            if self._log:
                self._take_log()
                cols = standard_columns(schema.COMMAND_LOG, levels=spec.levels)
                log_writer = writer.append_table(schema.COMMAND_LOG, {c: d for c, d, _ in cols},
                                                 {c: u for c, _, u in cols}, attrs={"names": spec.command_names})
                for chunk in self._log_chunks:
                    log_writer.append(chunk)
            for name, table in self._tables().items():
                writer.write_table(name, table)
        return Path(path)

    def stats(self):
        """The run so far summarised exactly as `pimdram report --json` summarises its stats file
        (with "file" None): cycles (the later of the current cycle and the last completion),
        requests, commands, row hits, bandwidth, latency, energy, ..."""
        from .stats.report import summarize
        with tempfile.TemporaryDirectory(prefix="pimdram-stats-") as d:
            path = self.write_stats(Path(d) / "stats.h5")
            out = summarize(path)
        out["file"] = None
        return out

    # --- lifetime --------------------------------------------------------------------------------
    def close(self):
        """Release the engine; the object cannot be used afterwards."""
        self._engine = _Closed()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self._closed:
            return f"<MemorySystem {self.spec.name} (closed)>"
        return (f"<MemorySystem {self.spec.name} at cycle {self.cycle}, {self.outstanding} outstanding, "
                f"clock ratio {self.clock_ratio}>")


def _empty():
    a = np.zeros(0, dtype=np.int64)
    a.flags.writeable = False
    return a


_NONE = Completions(_empty(), _empty(), _empty())     # shared: nothing completed


def _whole(value, what, low, high, bounds=None):
    """Refuse (UsageError) what is not a whole number (a bool, a float, a string) or lies outside
    low..high (None: unbounded): 1.5 was truncated, NaN broke the clock, a string a comparison."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{what} must be a whole number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = bounds or f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise UsageError(f"{what} must lie in {bounds}, got {value}")


def _flag(value, what):
    if not (isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1))):
        raise UsageError(f"{what} must be True or False, got {value!r}")


def _real(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite positive number, got {value!r}")


def _column(value, n, dtype, name, low=None, high=None):
    """`value` (a scalar or a sequence of n) as a writable contiguous 1-D array of n: whole
    numbers (a bool only for is_write) within dtype's range and low..high."""
    raw = np.asarray(value, dtype=object if isinstance(value, (list, tuple)) else None)
    if raw.dtype == object:
        items = raw.reshape(-1).tolist()
        if any(isinstance(v, bool) and name != "is_write" or not isinstance(v, numbers.Integral) for v in items):
            bad = next(v for v in items if isinstance(v, bool) and name != "is_write"
                       or not isinstance(v, numbers.Integral))
            raise UsageError(f"{name}: expected whole numbers, got {bad!r}")
        values = items
    elif raw.dtype.kind in "iu" or (raw.dtype.kind == "b" and name == "is_write"):
        values = raw.reshape(-1)
    elif raw.size == 0:
        values = []
    else:
        raise UsageError(f"{name}: expected whole numbers, got an array of {raw.dtype}")
    info = np.iinfo(dtype)
    low = info.min if low is None else max(low, int(info.min))
    high = info.max if high is None else min(high, int(info.max))
    if len(values):
        lo, hi = (min(values), max(values)) if raw.dtype == object else (int(values.min()), int(values.max()))
        if lo < low or hi > high:
            raise UsageError(f"{name}: values must lie in {low}..{high}, got {lo if lo < low else hi}")
    if n is None and raw.ndim > 1:
        raise UsageError(f"{name}: expected one value per request (a 1-D array), got shape {raw.shape}")
    a = np.asarray(raw if raw.dtype != object else raw.astype(dtype), dtype=dtype)
    if n is None:
        a = a.reshape(-1)
    elif a.ndim == 0:
        return np.full(n, a, dtype=dtype)
    elif a.shape != (n,):
        raise UsageError(f"{name}: expected a scalar or {n} values, got shape {a.shape}")
    return np.require(a, requirements=("C", "W"))


class _Closed:
    """Stands in for the engine of a closed MemorySystem: any use is an error."""

    def __getattr__(self, name):
        raise UsageError("this MemorySystem is closed")
