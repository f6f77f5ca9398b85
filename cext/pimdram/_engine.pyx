# cython: language_level=3
"""Event-driven DRAM memory controller: queues, FR-FCFS scheduling, timing tables, refresh.

The engine gets only resolved plain data (integer timing rows, organisation, address mapping)
from pimdram.replay and requests as numpy arrays in chunks. Time advances from one event to the
next: per channel it keeps the earliest cycle at which anything could happen (a command becoming
legal, a refresh falling due, a request arriving) and never looks at the cycles in between.
Legality of a command is a handful of integer comparisons against per-node earliest-issue
tables that are updated only where a timing row says.

This file holds the Engine class: its construction from plain data and its Python API. The
simulation itself is in the included parts, one concern each, as functions of the Engine:
_engine_timing.pxi (timing tables), _engine_schedule.pxi (bank state, queues, issuing, the main
loop), _engine_tick.pxi (the per-channel tick: candidates and schedulers), _engine_refresh.pxi,
_engine_pim.pxi (PIM command programs), _engine_stats.pxi (statistics and the command log) and
_engine_api.pxi (request records, completions and advancing to a cycle for pimdram.MemorySystem).
"""
import numpy as np
cimport cython
cimport numpy as cnp

from pimdram._types cimport (cycle_t, addr_t, idx_t, int64_t, int32_t, uint8_t, uint32_t, uint64_t,
                             CYCLE_NEVER, MAX_CYCLE, KIND_ACTIVATE, KIND_PRECHARGE, KIND_READ,
                             KIND_WRITE, KIND_READ_PRECHARGE, KIND_WRITE_PRECHARGE, KIND_REFRESH)
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memmove, memset

cdef extern from "Python.h":
    # declared without an exception value: a handler's exception stays set for run() to raise,
    # instead of being reported and dropped by the noexcept loop that polls
    int _check_signals "PyErr_CheckSignals" ()

cnp.import_array()

cdef enum:
    SCHED_FRFCFS = 0
    SCHED_FCFS = 1
    SCHED_ROUND_ROBIN = 2
    SCHED_FIRST_READY = 3

SCHEDULERS = ("frfcfs", "fcfs", "round_robin", "first_ready")   # index = the engine's scheduler code

cdef enum:
    BLOCK_REFRESH = 1             # bank_blocked bits: a refresh is pending on the bank's node
    BLOCK_PIM_ROW = 2             # a PIM activate opened the bank's row and no PIM precharge closed it
    BLOCK_PIM_MODE = 4            # blocked mode: a PIM program runs on the channel
    BLOCK_PIM_WAIT = 8            # a PIM activate waits to open the bank's row

cdef enum:
    KIND_MAC = 7                  # PIM kinds, after the standard's (config.memory.COMMAND_KINDS)
    KIND_BUFFER_WRITE = 8
    KIND_BUFFER_READ = 9
    KIND_MOVE = 10
    KIND_UNIT_OP = 11

cdef enum:
    N_HIST = 1024 + 31 * 128      # latency histogram bins: exact below 1024, 128 per octave above
    BW_BINS = 4096                # bandwidth time-series bins before the window doubles
    MAXL = 8

LATENCY_HISTOGRAM_BINS = N_HIST


cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil
    int __builtin_clzll(unsigned long long) nogil


cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef inline int64_t _accesses_of(int64_t size, int64_t k0, int64_t acc) noexcept nogil:
    """Accesses of a request of `size` bytes (0: the trace's default, k0 accesses)."""
    return (size + acc - 1) // acc if size > 0 else k0


cdef inline int64_t imin(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef int _raise_pending() except -1:
    """Propagate the exception a signal handler left set while the engine ran."""
    return -1


include "_engine_stats.pxi"
include "_engine_timing.pxi"
include "_engine_schedule.pxi"
include "_engine_tick.pxi"
include "_engine_refresh.pxi"
include "_engine_pim.pxi"
include "_engine_api.pxi"


#: decode()'s byte tables by address mapping (_decode_tables)
_DECODE_TABLES = {}


def _decode_tables(Engine self):
    """decode()'s tables for this engine's address mapping, or False when they do not apply.

    Every output of decode() is linear in the address bits above the offset: a field's bit i
    adds 2**(i + its place in its component) to the component, and the bank is the components
    of the levels below the channel times their strides. So each output is the sum, over the
    bytes of those bits, of a value looked up by the byte: table[p, v] holds, for byte p of
    value v, channel + bank * 2**32 and row + column * 2**32 (modulo 2**64, as the int32 outputs
    are). Exact while channel and row stay below 2**32 (no carry into the upper half) and the
    fields end within 64 bits; else the field-by-field loop."""
    cdef int NL = self.n_levels
    cdef int f, l
    key = (self.offset_bits, NL, tuple(self.level_count[l] for l in range(NL)),
           tuple((self.field_id[f], self.field_bits[f]) for f in range(self.n_fields)))
    tables = _DECODE_TABLES.get(key)
    if tables is not None:
        return tables
    nbits = sum(self.field_bits[f] for f in range(self.n_fields))
    stride = [1] * NL
    for l in range(NL - 2, 0, -1):
        stride[l] = stride[l + 1] * self.level_count[l + 1]
    # per address bit (from the offset up): (output 0..3, weight), fields from the lowest bits
    weights = []
    filled = [0] * (NL + 2)
    for f in range(self.n_fields - 1, -1, -1):
        l = self.field_id[f]
        out = 0 if l == 0 else (2 if l == NL else (3 if l == NL + 1 else 1))
        for i in range(self.field_bits[f]):
            weights.append((out, (stride[l] if out == 1 else 1) << (filled[l] + i)))
        filled[l] += self.field_bits[f]
    low_max = [sum(wt for o, wt in weights if o == out) for out in (0, 2)]
    if self.offset_bits + nbits > 64 or max(low_max, default=0) >= 2**32:
        tables = False
    else:
        npos = (nbits + 7) // 8
        w = np.zeros((npos * 8, 2), dtype=np.uint64)
        for k, (out, wt) in enumerate(weights):
            w[k, out // 2] = np.uint64((wt << (32 if out in (1, 3) else 0)) % 2**64)
        bits = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.uint64)
        tables = np.ascontiguousarray(np.stack([bits @ w[p * 8:(p + 1) * 8] for p in range(npos)])
                                      if npos else np.zeros((0, 256, 2), dtype=np.uint64), dtype=np.uint64)
    if len(_DECODE_TABLES) >= 64:
        _DECODE_TABLES.clear()
    _DECODE_TABLES[key] = tables
    return tables


@cython.final
cdef class Engine:
    """One memory system: every channel's controller, a shared in-order frontend, statistics."""

    def __init__(self, dict p):
        cdef int l, m, i, r, n, ch, b, lvl
        self._keep = []
        self._dec_tables = None
        counts = np.asarray(p["counts"], dtype=np.int32)
        self.n_levels = len(counts)
        if self.n_levels > MAXL or self.n_levels < 2:
            raise ValueError("between 2 and 8 organisation levels are supported")
        self.bank_level = self.n_levels - 1
        self.n_channels = counts[0]
        self.level_count[0] = 1
        self.level_size[0] = 1
        self.level_offset[0] = 0
        for l in range(1, self.n_levels):
            self.level_count[l] = counts[l]
            self.level_size[l] = self.level_size[l - 1] * counts[l]
            self.level_offset[l] = self.level_offset[l - 1] + self.level_size[l - 1]
        self.n_nodes = self.level_offset[self.bank_level] + self.level_size[self.bank_level]
        self.n_banks = self.level_size[self.bank_level]
        if self.n_banks > 512:
            raise ValueError("at most 512 banks per channel are supported")
        for l in range(MAXL):
            for m in range(MAXL):
                self.level_span[l * MAXL + m] = 0
        for l in range(self.n_levels):
            self.level_span[l * MAXL + l] = 1
            for m in range(l + 1, self.n_levels):
                self.level_span[l * MAXL + m] = self.level_span[l * MAXL + m - 1] * self.level_count[m]

        NL = self.n_levels
        node_level = self._i32(self.n_nodes)
        node_anc = self._i32(self.n_nodes * NL, -1)
        self.node_level = <int32_t*> cnp.PyArray_DATA(node_level)
        self.node_anc = <int32_t*> cnp.PyArray_DATA(node_anc)
        self.node_first_bank = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_nodes))
        self.node_n_banks = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_nodes))
        self.bank_node = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_banks))
        for l in range(self.n_levels):
            for i in range(self.level_size[l]):
                n = self.level_offset[l] + i
                self.node_level[n] = l
                for m in range(l + 1):
                    self.node_anc[n * NL + m] = self.level_offset[m] + i // self.level_span[m * MAXL + l]
                self.node_first_bank[n] = i * self.level_span[l * MAXL + self.bank_level]
                self.node_n_banks[n] = self.level_span[l * MAXL + self.bank_level]
        for b in range(self.n_banks):
            self.bank_node[b] = self.level_offset[self.bank_level] + b

        # commands
        kinds = np.asarray(p["cmd_kind"], dtype=np.int32)
        self.n_cmd = len(kinds)
        self.cmd_kind = <int32_t*> cnp.PyArray_DATA(self._keep_arr(kinds.copy()))
        self.cmd_scope = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p["cmd_scope"], dtype=np.int32).copy()))
        self.cmd_bus = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p["cmd_bus"], dtype=np.int32).copy()))
        self.cmd_bus_cycles = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p["cmd_bus_cycles"], dtype=np.int32).copy()))
        self.separate_bus = bool(p["separate_bus"])
        if not self.separate_bus:
            for i in range(self.n_cmd):
                self.cmd_bus[i] = 0
        self.read_latency = p["read_latency"]
        self.write_latency = p["write_latency"]
        self.cmd_act = p["cmd_act"]
        self.cmd_pre = p["cmd_pre"]
        self.cmd_rd = p["cmd_rd"]
        self.cmd_wr = p["cmd_wr"]
        self.cmd_rda = p["cmd_rda"]
        self.cmd_wra = p["cmd_wra"]
        self.cmd_pre_refresh = p["cmd_pre_refresh"]

        # processing in memory: command attributes, units (absent keys: a memory without PIM)
        self.pim_mode = p.get("pim_mode", 0)
        self.cmd_sel = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p.get("cmd_sel", [0] * self.n_cmd), dtype=np.int32).copy()))
        self.cmd_rb = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p.get("cmd_rb", [0] * self.n_cmd), dtype=np.int32).copy()))
        self.cmd_unit = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p.get("cmd_unit", [-1] * self.n_cmd), dtype=np.int32).copy()))
        for i in range(self.n_cmd):
            # a selection period divides the banks under the command's node (the nodes of its
            # selection level nest in it)
            n = self.node_n_banks[self.level_offset[self.cmd_scope[i]]]
            if self.cmd_sel[i] < 0 or (self.cmd_sel[i] > 0 and n % self.cmd_sel[i]):
                raise ValueError(f"command {i}: bank selection period {self.cmd_sel[i]} does not divide the "
                                 f"{n} banks under its scope")

        # constraint rows. Commands that every row treats alike (same incoming rows: e.g. RD and
        # RDA) share one timing class, i.e. one column of the earliest-issue tables, so an issue
        # raises one entry where it would raise one per command; rows that become identical merge.
        rl = np.asarray(p["row_level"], dtype=np.int32)
        rf = np.asarray(p["row_from"], dtype=np.int32)
        rt = np.asarray(p["row_to"], dtype=np.int32)
        rlat = np.asarray(p["row_latency"], dtype=np.int64)
        rwin = np.asarray(p["row_window"], dtype=np.int32)
        rsib = np.asarray(p["row_sibling"], dtype=np.int32)
        signatures = {}
        classes = []
        for i in range(self.n_cmd):
            sig = tuple(sorted((int(rf[j]), int(rl[j]), int(rlat[j]), int(rwin[j]), int(rsib[j]))
                               for j in range(len(rf)) if rt[j] == i))
            classes.append(signatures.setdefault(sig, len(signatures)))
        self.n_class = len(signatures)
        self.cmd_class = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(classes, dtype=np.int32)))
        merged = sorted({(int(rf[j]), int(rl[j]), classes[rt[j]], int(rlat[j]), int(rwin[j]), int(rsib[j]))
                         for j in range(len(rf))})
        rf = np.asarray([row[0] for row in merged], dtype=np.int32)
        self.row_level = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray([row[1] for row in merged] or [0], dtype=np.int32)))
        self.row_to = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray([row[2] for row in merged] or [0], dtype=np.int32)))
        self.row_latency = <int64_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray([row[3] for row in merged] or [0], dtype=np.int64)))
        windows = np.asarray([row[4] for row in merged] or [0], dtype=np.int32)
        self.row_window = <int32_t*> cnp.PyArray_DATA(self._keep_arr(windows))
        self.row_sibling = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray([row[5] for row in merged] or [0], dtype=np.int32)))
        starts = np.searchsorted(rf, np.arange(self.n_cmd + 1)).astype(np.int32)
        self.row_start = <int32_t*> cnp.PyArray_DATA(self._keep_arr(starts))
        n_rows = len(rf)
        pos_off = np.full(max(n_rows, 1), -1, dtype=np.int64)
        hist_off = np.zeros(max(n_rows, 1), dtype=np.int64)
        cn = self.n_channels * self.n_nodes
        pos_total = 0
        hist_total = 0
        for r in range(n_rows):
            if windows[r] > 1:
                pos_off[r] = pos_total
                hist_off[r] = hist_total
                pos_total += cn
                hist_total += cn * windows[r]
        self.row_pos_off = <int64_t*> cnp.PyArray_DATA(self._keep_arr(pos_off))
        self.row_hist_off = <int64_t*> cnp.PyArray_DATA(self._keep_arr(hist_off))
        self.hist = <int64_t*> cnp.PyArray_DATA(self._i64(max(hist_total, 1)))
        self.hist_pos = <int64_t*> cnp.PyArray_DATA(self._i64(max(pos_total, 1)))
        self.earliest = <int64_t*> cnp.PyArray_DATA(self._i64(cn * self.n_class))
        _compile_updates(self, n_rows)
        self.bus_free = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels * 2))

        # refresh
        self.ref_cmd = p["refresh_cmd"]
        self.ref_level = p["refresh_level"] if self.ref_cmd >= 0 else 1
        self.ref_interval = p["refresh_interval"] if self.ref_cmd >= 0 else 0
        self.n_ref_nodes = self.level_size[self.ref_level]
        ref_due = self._i64(self.n_channels * self.n_ref_nodes)
        self.ref_due = <int64_t*> cnp.PyArray_DATA(ref_due)
        # refresh nodes fall due staggered evenly over the interval, or all at once (Ramulator's
        # AllBank refresh, DRAMsim3's RANK_LEVEL_SIMULTANEOUS)
        stagger = bool(p.get("refresh_stagger", True))
        for ch in range(self.n_channels):
            for i in range(self.n_ref_nodes):
                self.ref_due[ch * self.n_ref_nodes + i] = (
                    self.ref_interval + (i * self.ref_interval // self.n_ref_nodes if stagger else 0)
                    if self.ref_cmd >= 0 else CYCLE_NEVER)
        self.ref_pending = <uint8_t*> cnp.PyArray_DATA(self._u8(self.n_channels * self.n_ref_nodes))
        self.ref_scan = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * self.n_ref_nodes))
        self.ref_quiet_until = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels))
        self.bank_blocked = <uint8_t*> cnp.PyArray_DATA(self._u8(self.n_channels * self.n_banks))

        # PIM units: instances per channel (a unit at bank level shared by banks_per_unit banks,
        # else one per node of its level), and the cycle each instance is free again
        units = list(p.get("units", []))
        offs, divs, total = [], [], 0
        for level, per_unit in units:
            n_inst = self.n_banks // per_unit if level == self.bank_level else self.level_size[level]
            if n_inst <= 0 or self.n_banks % n_inst:
                raise ValueError("a PIM unit's instances must divide the banks of a channel")
            offs.append(total)
            divs.append(self.n_banks // n_inst)
            total += n_inst
        self.unit_total = total
        self.unit_off = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(offs + [0], dtype=np.int32)))
        self.unit_div = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(divs + [1], dtype=np.int32)))
        self.unit_free = <int64_t*> cnp.PyArray_DATA(self._i64(max(1, self.n_channels * total)))
        for i in range(self.n_cmd):
            if self.cmd_unit[i] >= len(units):
                raise ValueError("a command names a PIM unit that does not exist")
        self.pim_row = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * self.n_banks, -1))
        self.p_pos = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels))
        self.p_end = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels))
        self.pim_claim = <uint8_t*> cnp.PyArray_DATA(self._u8(self.n_channels))
        self.pim_open = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.pim_yield = <uint8_t*> cnp.PyArray_DATA(self._u8(self.n_channels))
        self.pim_error = -1

        # controller policy
        self.read_queue = p["read_queue"]
        self.write_queue = p["write_queue"]
        self.bank_queue = p["bank_queue"]
        self.scheduler = p["scheduler"]
        self.row_hit_cap = p["row_hit_cap"]
        self.closed_page = p["closed_page"]
        self.wq_high = p["wq_high"]
        self.wq_low = p["wq_low"]
        self.leave_at_activate = bool(p.get("leave_queue_at_activate", False))
        if self.leave_at_activate and self.bank_queue > 0:
            raise ValueError("requests leave their queue at activate only without bank queues")

        # request slots and queues
        # a request that left its queue at activate keeps its slot: one more per bank
        self.n_slots = (self.read_queue + self.write_queue + self.n_banks * self.bank_queue
                        + (self.n_banks if self.leave_at_activate else 0))
        ns = self.n_channels * self.n_slots
        self.bank_active = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * self.n_banks, -1))
        self.sl = <SlotRec*> self._aligned(ns * sizeof(SlotRec))
        for i in range(ns):
            self.sl[i].req = -1
        self.free_head = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        for ch in range(self.n_channels):
            for i in range(self.n_slots):
                self.sl[ch * self.n_slots + i].next = ch * self.n_slots + i + 1 if i + 1 < self.n_slots else -1
            self.free_head[ch] = ch * self.n_slots
        nbt = self.n_channels * self.n_banks
        self.bk = <BankRec*> self._aligned(nbt * sizeof(BankRec))
        for i in range(nbt):
            self.bk[i].cand_ready = CYCLE_NEVER
            self.bk[i].cand_cmd = -1
            self.bk[i].open_row = -1
            for l in range(2):
                self.bk[i].q_head[l] = -1
                self.bk[i].q_tail[l] = -1
        if <int64_t>self.n_channels * self.n_nodes * self.n_class >= 2**31:
            raise ValueError("the timing tables of this organisation are too large")
        self.bank_abs = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * self.n_banks * self.n_levels))
        for ch in range(self.n_channels):
            for b in range(self.n_banks):
                for l in range(self.n_levels):
                    self.bank_abs[(ch * self.n_banks + b) * self.n_levels + l] = (
                        (ch * self.n_nodes + self.node_anc[self.bank_node[b] * self.n_levels + l]) * self.n_class)
        self.mask_words = (self.n_banks + 63) // 64
        self.busy_mask = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels * self.mask_words, dtype=np.uint64)))
        self.pend = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels * self.mask_words, dtype=np.uint64)))
        self.wheel = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels * 64 * self.mask_words, dtype=np.uint64)))
        self.wheel_occ = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels, dtype=np.uint64)))
        # a pass over up to 8 channels' wakes costs fewer instructions than keeping the wheel
        self.cw_on = 16 <= self.n_channels <= 64
        self.fresh = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels * self.mask_words, dtype=np.uint64)))
        self.eager = (self.scheduler in (SCHED_FRFCFS, SCHED_FIRST_READY) and not self.leave_at_activate
                      and self.pim_mode == 0 and self.bank_queue == 0)
        self.tick_fn = _tick_for(self)
        self.rr_next = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.rq_count = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.wq_count = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.stage = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * (self.read_queue + self.write_queue)))
        self.bankq_total = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.stage_scan = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * 2))
        self.drain = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.outstanding = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.wake = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels))
        for ch in range(self.n_channels):
            self.wake[ch] = self.ref_due[ch * self.n_ref_nodes] if self.ref_cmd >= 0 else CYCLE_NEVER

        # power bookkeeping: open banks per power node (rank-like level)
        self.pw_level = p["power_level"]
        self.n_pw_nodes = self.level_size[self.pw_level]
        self.bank_pw = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_banks))
        for b in range(self.n_banks):
            self.bank_pw[b] = b // self.level_span[self.pw_level * MAXL + self.bank_level]
        self.pw_open = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * self.n_pw_nodes))
        self.pw_since = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels * self.n_pw_nodes))
        self._active = self._i64(self.n_channels)
        self.active_cycles = <int64_t*> cnp.PyArray_DATA(self._active)

        # address mapping
        fid = list(p["field_id"])
        fbits = list(p["field_bits"])
        if len(fid) > 24:
            raise ValueError("at most 24 address-mapping fields")
        self.n_fields = len(fid)
        for i in range(self.n_fields):
            self.field_id[i] = fid[i]
            self.field_bits[i] = fbits[i]
        self.offset_bits = p["offset_bits"]

        # statistics
        self._cmd_count = self._i64(self.n_channels * self.n_cmd)
        self.cmd_count = <int64_t*> cnp.PyArray_DATA(self._cmd_count)
        self._n_read = self._i64(self.n_channels)
        self._n_write = self._i64(self.n_channels)
        self._row_hits = self._i64(self.n_channels)
        self._row_misses = self._i64(self.n_channels)
        self._row_conflicts = self._i64(self.n_channels)
        self._lat_sum = self._i64(self.n_channels * 2)
        self._lat_max = self._i64(self.n_channels * 2)
        self._lat_hist = self._i64(self.n_channels * 2 * N_HIST)
        self.n_read = <int64_t*> cnp.PyArray_DATA(self._n_read)
        self.n_write = <int64_t*> cnp.PyArray_DATA(self._n_write)
        self.row_hits = <int64_t*> cnp.PyArray_DATA(self._row_hits)
        self.row_misses = <int64_t*> cnp.PyArray_DATA(self._row_misses)
        self.row_conflicts = <int64_t*> cnp.PyArray_DATA(self._row_conflicts)
        self.lat_sum = <int64_t*> cnp.PyArray_DATA(self._lat_sum)
        self.lat_max = <int64_t*> cnp.PyArray_DATA(self._lat_max)
        self.lat_hist = <int64_t*> cnp.PyArray_DATA(self._lat_hist)
        self.bw_window = p.get("bandwidth_window", 1024)
        if self.bw_window <= 0 or self.bw_window & (self.bw_window - 1):
            raise ValueError("bandwidth_window must be a power of two")
        self.bw_shift = self.bw_window.bit_length() - 1
        self.bw_bins = 0
        self._bw_read = self._i64(BW_BINS)
        self._bw_write = self._i64(BW_BINS)
        self.bw_read = <int64_t*> cnp.PyArray_DATA(self._bw_read)
        self.bw_write = <int64_t*> cnp.PyArray_DATA(self._bw_write)
        self.access_bytes = p["access_bytes"]
        self.last_done = 0
        self.accepted = 0

        self.logging = bool(p.get("log", False))
        self.log_n = 0
        self.log_cap = 0
        self.now = 0
        self.frontend_pending_at_now = False
        self.input_done = False
        self.front_woke = False
        self.last_progress = 0
        # no access accepted or completed for this long while work is queued: report a stall. A
        # valid config may make queued work wait long (a large nRC, a long refresh), so the limit
        # is at least 100 of the longest waits it defines; an idle controller (nothing queued)
        # waiting for the next arrival is never stalled (_run)
        longest = max([int(x) for x in p["row_latency"]]
                      + [int(p.get("read_latency", 0)), int(p.get("write_latency", 0))])
        self.stall_limit = p.get("stall_limit",
                                 max(10_000_000, 100 * (self.ref_interval + 1), 100 * (longest + 1)))
        self.f_n = 0
        self.f_pos = 0
        self.f_base = 0
        self.f_first = NULL
        self.f_req = NULL
        self.f_waiting = 0
        self._batch_arrays = None
        self.offer_rate = p.get("offer_rate", 0)
        if self.offer_rate < 0:
            raise ValueError("offer_rate must be 0 (no limit) or positive")
        self.offer_cycle = -1
        self.offer_count = 0

        # host-simulator API: request records and completions (pimdram.MemorySystem)
        self.track = bool(p.get("track", False))
        self.r_cap = 0
        self.r_free = -1
        self.r_live = 0
        self.c_seq = 0
        for i in range(2):
            self.rings[i].head = 0
            self.rings[i].count = 0
            self.rings[i].cap = 0
        if self.track:
            _records_grow(self)

    def __dealloc__(self):
        cdef int k
        for k in range(2):
            free(self.rings[k].rec)
            free(self.rings[k].done)
            free(self.rings[k].seq)
        free(self.r_tag)
        free(self.r_accept)
        free(self.r_left)
        free(self.a_ch)
        free(self.a_bank)
        free(self.a_row)
        free(self.a_col)
        free(self.a_wr)
        free(self.a_arr)
        free(self.a_req)
        free(self.a_first)
        free(self.log_cycle)
        free(self.log_cmd)
        free(self.log_ch)
        free(self.log_node)
        free(self.log_row)
        free(self.log_col)

    # --- allocation helpers (numpy owns the memory; the engine keeps a reference) ---------------
    cdef object _keep_arr(self, a):
        self._keep.append(a)
        return a

    cdef void* _aligned(self, size_t nbytes):
        """nbytes of zeros at a 64-byte boundary (a cache line), owned by the engine."""
        a = self._keep_arr(np.zeros(nbytes + 64, dtype=np.uint8))
        return <void*> ((<size_t> cnp.PyArray_DATA(a) + 63) & ~(<size_t> 63))

    cdef object _i32(self, n, fill=0):
        return self._keep_arr(np.full(int(n), fill, dtype=np.int32))

    cdef object _i64(self, n, fill=0):
        return self._keep_arr(np.full(int(n), fill, dtype=np.int64))

    cdef object _u8(self, n, fill=0):
        return self._keep_arr(np.full(int(n), fill, dtype=np.uint8))

    # --- Python API ----------------------------------------------------------------------------
    def decode(self, address, is_write, arrival, size=None, int request_bytes=0, bint first_flags=False):
        """Map a chunk of requests to the engine's accesses: each request becomes
        ceil(size / access_bytes) consecutive accesses (size 0 or no `size`: request_bytes, or one
        access when that is 0), each decoded to channel, bank, row and column.

        Returns the arrays to hand to feed_decoded() and the number of accesses. The last array
        marks each request's first access (what an offer rate counts); it is None when every
        access is a request of its own or nothing needs it (no offer rate, no first_flags). It
        reads only the address mapping and runs without the GIL, so it may run on another thread
        while run() simulates the previous chunk."""
        cdef cnp.uint64_t[::1] a = np.ascontiguousarray(address, dtype=np.uint64)
        cdef cnp.uint8_t[::1] w = np.ascontiguousarray(is_write, dtype=np.uint8)
        cdef cnp.int64_t[::1] arr = np.ascontiguousarray(arrival, dtype=np.int64)
        cdef int64_t n = a.shape[0]
        cdef int64_t i, j, k, m = 0, total = 0
        cdef int64_t acc = self.access_bytes
        cdef int64_t k0 = (request_bytes + acc - 1) // acc if request_bytes > 0 else 1
        cdef cnp.int64_t[::1] sz
        cdef bint sized = size is not None
        if w.shape[0] != n or arr.shape[0] != n:
            raise ValueError("address, is_write and arrival must have equal lengths")
        if n and np.asarray(arr).max() > MAX_CYCLE:
            # beyond it, times meet CYCLE_NEVER ("no event") and overflow: a wrong stall or a crash
            raise ValueError(f"arrival cycle {int(np.asarray(arr).max())} is beyond the latest cycle the engine "
                             f"counts, 2**60")
        if sized:
            sz = np.ascontiguousarray(size, dtype=np.int64)
            if sz.shape[0] != n:
                raise ValueError("size must have the length of address")
            with nogil:
                for i in range(n):
                    total += _accesses_of(sz[i], k0, acc)
        else:
            sz = np.zeros(0, dtype=np.int64)
            total = n * k0
        ch_a = np.empty(total, dtype=np.int32)
        bank_a = np.empty(total, dtype=np.int32)
        row_a = np.empty(total, dtype=np.int32)
        col_a = np.empty(total, dtype=np.int32)
        wr_a = np.empty(total, dtype=np.uint8)
        arr_a = np.empty(total, dtype=np.int64)
        cdef bint want_first = (first_flags or self.offer_rate > 0) and (sized or k0 > 1 or first_flags)
        first_a = np.empty(total if want_first else 0, dtype=np.uint8)
        cdef cnp.uint8_t[::1] ofirst = first_a
        cdef cnp.int32_t[::1] och = ch_a
        cdef cnp.int32_t[::1] obank = bank_a
        cdef cnp.int32_t[::1] orow = row_a
        cdef cnp.int32_t[::1] ocol = col_a
        cdef cnp.uint8_t[::1] owr = wr_a
        cdef cnp.int64_t[::1] oarr = arr_a
        # each field is a bit range of the address (above the offset bits) and a bit range of one
        # component (channel, each level below it, row, column)
        cdef int NL = self.n_levels
        cdef int nf = self.n_fields
        cdef int f, l
        cdef int src[24]
        cdef int dst[24]
        cdef int fid[24]
        cdef uint64_t fmask[24]
        cdef int sh[10]
        cdef int at = self.offset_bits
        cdef uint64_t x
        cdef int64_t comp[10]
        cdef int64_t bank
        cdef int p, npos, at0 = self.offset_bits
        cdef const uint64_t* tp
        cdef uint64_t lane0, lane1
        for l in range(NL + 2):
            sh[l] = 0
        for f in range(nf - 1, -1, -1):
            fid[f] = self.field_id[f]
            src[f] = at
            dst[f] = sh[fid[f]]
            fmask[f] = ((<uint64_t>1) << self.field_bits[f]) - 1
            sh[fid[f]] += self.field_bits[f]
            at += self.field_bits[f]
        if self._dec_tables is None:
            self._dec_tables = _decode_tables(self)
        # every output summed from per-byte tables of the mapping where they apply, else the
        # fields taken one by one (_decode_tables)
        cdef bint tables = self._dec_tables is not False
        npos = 0
        tp = NULL
        if tables:
            tab = self._dec_tables
            tp = <const uint64_t*> cnp.PyArray_DATA(tab)
            npos = tab.shape[0]
        cdef int32_t c_ch, c_bank, c_row, c_col
        with nogil:
            for i in range(n):
                for j in range(_accesses_of(sz[i] if sized else 0, k0, acc)):
                    if tables:
                        x = (a[i] + <uint64_t>(j * acc)) >> at0
                        lane0 = 0
                        lane1 = 0
                        for p in range(npos):
                            lane0 += tp[(p * 256 + (x & 255)) * 2]
                            lane1 += tp[(p * 256 + (x & 255)) * 2 + 1]
                            x >>= 8
                        c_ch, c_bank = <int32_t>lane0, <int32_t>(lane0 >> 32)
                        c_row, c_col = <int32_t>lane1, <int32_t>(lane1 >> 32)
                    else:
                        x = a[i] + <uint64_t>(j * acc)
                        for l in range(NL + 2):
                            comp[l] = 0
                        for f in range(nf):
                            comp[fid[f]] |= <int64_t>((x >> src[f]) & fmask[f]) << dst[f]
                        bank = 0
                        for l in range(1, NL):
                            bank = bank * self.level_count[l] + comp[l]
                        c_ch, c_bank = <int32_t>comp[0], <int32_t>bank
                        c_row, c_col = <int32_t>comp[NL], <int32_t>comp[NL + 1]
                    och[m] = c_ch
                    obank[m] = c_bank
                    orow[m] = c_row
                    ocol[m] = c_col
                    owr[m] = w[i]
                    oarr[m] = arr[i]
                    if want_first:
                        ofirst[m] = j == 0
                    m += 1
        return (ch_a, bank_a, row_a, col_a, wr_a, arr_a, first_a if want_first else None), total

    def feed_decoded(self, decoded):
        """Queue a chunk of accesses from decode() for the frontend.

        The previous chunk must have been consumed (run() returned)."""
        if self.f_pos != self.f_n:
            raise RuntimeError("feed() called before the previous chunk was consumed")
        if self.track and len(decoded[0]) < 8:
            raise RuntimeError("an engine that tracks requests takes them through offer() and offer_batch()")
        arrays, n = decoded
        self.f_base += self.f_n
        self._feed_arrays = arrays
        self.f_ch = <int32_t*> cnp.PyArray_DATA(arrays[0])
        self.f_bank = <int32_t*> cnp.PyArray_DATA(arrays[1])
        self.f_row = <int32_t*> cnp.PyArray_DATA(arrays[2])
        self.f_col = <int32_t*> cnp.PyArray_DATA(arrays[3])
        self.f_write = <uint8_t*> cnp.PyArray_DATA(arrays[4])
        self.f_arrival = <int64_t*> cnp.PyArray_DATA(arrays[5])
        self.f_first = <uint8_t*> cnp.PyArray_DATA(arrays[6]) if len(arrays) > 6 and arrays[6] is not None else NULL
        self.f_req = <int32_t*> cnp.PyArray_DATA(arrays[7]) if len(arrays) > 7 else NULL
        self.f_n = n
        self.f_pos = 0

    def feed(self, address, is_write, arrival):
        """Decode a chunk of accesses (byte addresses, one access each) and queue them for the
        frontend. The previous chunk must have been consumed (run() returned)."""
        if self.f_pos != self.f_n:
            raise RuntimeError("feed() called before the previous chunk was consumed")
        self.feed_decoded(self.decode(address, is_write, arrival))

    def feed_program(self, channel, command, node, select, row, occupancy):
        """Queue PIM command programs: one entry per command, issued in order per channel as soon
        as the timing rules, its bus, its unit and the banks allow (before normal traffic).

        channel, command, node (within the channel, see node_id), select (k for a same-bank
        command: bank k of every bank group under the node; else ignored), row (the row an
        activate opens or a MAC computes on), occupancy (cycles a mac or unit_op keeps its unit
        busy; the command completes then). Every earlier program must have run (run())."""
        cdef int64_t n, i
        cdef int ch, c
        ch_a = np.ascontiguousarray(channel, dtype=np.int32)
        n = ch_a.shape[0]
        arrays = [np.ascontiguousarray(a, dtype=np.int32) for a in (command, node, select, row)]
        occ_a = np.ascontiguousarray(occupancy, dtype=np.int64)
        if any(a.shape[0] != n for a in arrays) or occ_a.shape[0] != n:
            raise ValueError("program columns must have equal lengths")
        for ch in range(self.n_channels):
            if self.p_pos[ch] != self.p_end[ch]:
                raise RuntimeError("feed_program() called before the previous program has run")
        if self.pim_mode == 0 and n:
            raise ValueError("this memory has no PIM design: no programs to run")
        cmd_a, node_a, sel_a, row_a = arrays
        if n and (ch_a.min() < 0 or ch_a.max() >= self.n_channels or cmd_a.min() < 0 or cmd_a.max() >= self.n_cmd
                  or node_a.min() < 0 or node_a.max() >= self.n_nodes or occ_a.min() < 0):
            raise ValueError("program channel, command, node or occupancy out of range")
        # per-entry checks, vectorised (programs run to millions of commands)
        kind = np.asarray(<int32_t[:self.n_cmd]> self.cmd_kind)[cmd_a]
        scope = np.asarray(<int32_t[:self.n_cmd]> self.cmd_scope)[cmd_a]
        level = np.asarray(<int32_t[:self.n_nodes]> self.node_level)[node_a]
        sel = np.asarray(<int32_t[:self.n_cmd]> self.cmd_sel)[cmd_a]
        for bad, what in ((np.isin(kind, [KIND_READ, KIND_WRITE, KIND_READ_PRECHARGE, KIND_WRITE_PRECHARGE, KIND_REFRESH]),
                           "reads, writes and refreshes come from requests, not programs"),
                          (level != scope, "the node is not at the command's scope level"),
                          ((sel != 0) & ((sel_a < 0) | (sel_a >= sel)), "the same-bank choice is outside 0..{}")):
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"program entry {i} (command {cmd_a[i]}, node {node_a[i]}): "
                                 + what.format(sel[i] - 1))
        order = np.argsort(ch_a, kind="stable")
        cmd_a, node_a, sel_a, row_a, occ_a = (a[order].copy() for a in (cmd_a, node_a, sel_a, row_a, occ_a))
        bounds = np.searchsorted(ch_a[order], np.arange(self.n_channels + 1))
        self._prog_arrays = (cmd_a, node_a, sel_a, row_a, occ_a, order, bounds)
        self.p_cmd = <int32_t*> cnp.PyArray_DATA(cmd_a)
        self.p_node = <int32_t*> cnp.PyArray_DATA(node_a)
        self.p_sel = <int32_t*> cnp.PyArray_DATA(sel_a)
        self.p_row = <int32_t*> cnp.PyArray_DATA(row_a)
        self.p_occ = <int64_t*> cnp.PyArray_DATA(occ_a)
        # a program starts in the current cycle, or in the next when this one has been simulated
        # already (the host-simulator API, between advances)
        start = self.now + 1 if self.frontend_pending_at_now else self.now
        for ch in range(self.n_channels):
            self.p_pos[ch] = bounds[ch]
            self.p_end[ch] = bounds[ch + 1]
            if bounds[ch + 1] > bounds[ch] and self.wake[ch] > start:
                self.wake[ch] = start

    # --- host-simulator API (pimdram.MemorySystem): requests one by one or in batches -------------
    # The engine is built with track=True; time moves with advance(), which leaves the frontend
    # open at the current cycle: a request offered now is accepted now and seen by the
    # controllers from the next cycle, as in replay.

    def _check_track(self):
        if not self.track:
            raise RuntimeError("this engine was built without track=True (the host-simulator API)")

    def offer(self, uint64_t address, bint is_write, int64_t size, int64_t tag, int request_bytes=0):
        """Offer one request at the current cycle, as the in-order frontend would: accepted when its
        first access finds room in its queue (and the offer rate allows); its other accesses follow
        in order. Returns whether it was accepted. Refused while an earlier request is still in the
        frontend."""
        cdef int32_t k, j, rec
        cdef int32_t dec[4]
        cdef int64_t acc = self.access_bytes
        self._check_track()
        if self.f_pos != self.f_n:
            return False
        k = _accesses(self, size, request_bytes)
        _api_buffers(self, k)
        rec = _record_new(self, tag, k)
        for j in range(k):
            _decode_one(self, address + <uint64_t>(j * acc), dec)
            self.a_ch[j] = dec[0]
            self.a_bank[j] = dec[1]
            self.a_row[j] = dec[2]
            self.a_col[j] = dec[3]
            self.a_wr[j] = is_write
            self.a_arr[j] = self.now
            self.a_req[j] = rec
            self.a_first[j] = j == 0
        self.f_base += self.f_n
        self._feed_arrays = None
        self.f_ch = self.a_ch
        self.f_bank = self.a_bank
        self.f_row = self.a_row
        self.f_col = self.a_col
        self.f_write = self.a_wr
        self.f_arrival = self.a_arr
        self.f_first = self.a_first
        self.f_req = self.a_req
        self.f_n = k
        self.f_pos = 0
        self.f_waiting += 1
        self.input_done = False
        _frontend(self, self.now)
        if self.f_pos == 0:
            self.f_n = 0
            self.f_waiting -= 1
            _record_free(self, rec)
            return False
        return True

    def will_accept(self, uint64_t address, bint is_write):
        """Whether offer() would accept a request at `address` now (no side effects)."""
        cdef int32_t dec[4]
        self._check_track()
        if self.f_pos != self.f_n:
            return False
        if self.offer_rate > 0 and self.offer_cycle == self.now and self.offer_count >= self.offer_rate:
            return False
        _decode_one(self, address, dec)
        if is_write:
            return self.wq_count[dec[0]] < self.write_queue
        return self.rq_count[dec[0]] < self.read_queue

    def offer_batch(self, address, is_write, arrival, size, tag, int request_bytes=0):
        """Queue requests in the in-order frontend behind any still waiting there: each is offered
        no earlier than its arrival cycle (>= the current cycle) and accepted as its queue allows,
        while time advances. Those due now are offered at once. Returns the number queued.

        The frontend's entries live in arrays that grow by doubling and are appended to in place,
        so a backlog of waiting requests is not copied again with every batch."""
        cdef int64_t n, i, m, total, cap, at
        cdef int32_t[::1] rec_v
        cdef cnp.int64_t[::1] tag_v
        cdef cnp.int64_t[::1] count_v
        self._check_track()
        tag_a = np.ascontiguousarray(tag, dtype=np.int64)
        n = tag_a.shape[0]
        if n == 0:
            return 0
        arrays, total = self.decode(address, is_write, arrival, size, request_bytes, True)
        first = arrays[6]
        recs = np.empty(n, dtype=np.int32)
        rec_v = recs
        tag_v = tag_a
        counts = np.ascontiguousarray(np.diff(np.append(np.flatnonzero(first), total)), dtype=np.int64)
        count_v = counts
        for i in range(n):
            rec_v[i] = _record_new(self, tag_v[i], <int32_t> count_v[i])
        fresh = list(arrays[:7]) + [np.repeat(recs, counts)]
        buf = self._batch_arrays
        m = self.f_n - self.f_pos
        if buf is not None and self._feed_arrays is buf and self.f_n + total <= len(buf[0]):
            # room behind the waiting entries: append in place (the entry pointers stay valid)
            at = self.f_n
            for b_arr, f_arr in zip(buf, fresh):
                b_arr[at:at + total] = f_arr
            self.f_n = at + total
        else:
            # new arrays, twice what is live: the waiting entries first, then the batch
            cap = max(2 * (m + total), 4096)
            new = tuple(np.empty(cap, dtype=f_arr.dtype) for f_arr in fresh)
            if m > 0:
                waiting = [np.asarray(<int32_t[:m]> (self.f_ch + self.f_pos)),
                           np.asarray(<int32_t[:m]> (self.f_bank + self.f_pos)),
                           np.asarray(<int32_t[:m]> (self.f_row + self.f_pos)),
                           np.asarray(<int32_t[:m]> (self.f_col + self.f_pos)),
                           np.asarray(<uint8_t[:m]> (self.f_write + self.f_pos)),
                           np.asarray(<int64_t[:m]> (self.f_arrival + self.f_pos)),
                           np.asarray(<uint8_t[:m]> (self.f_first + self.f_pos)),
                           np.asarray(<int32_t[:m]> (self.f_req + self.f_pos))]
                for b_arr, w_arr in zip(new, waiting):
                    b_arr[:m] = w_arr
            for b_arr, f_arr in zip(new, fresh):
                b_arr[m:m + total] = f_arr
            self.f_base += self.f_pos
            self.f_n = self.f_pos = 0
            self.feed_decoded((new, m + total))
            self._batch_arrays = new
        self.f_waiting += n
        self.input_done = False
        _frontend(self, self.now)
        return n

    def advance(self, int64_t cycle):
        """Simulate up to `cycle` (no earlier than the current one); see _advance."""
        cdef int rc
        self._check_track()
        if cycle < self.now:
            raise ValueError(f"cannot go back in time: at cycle {self.now}, asked for {cycle}")
        if cycle > MAX_CYCLE:
            raise ValueError(f"cycle {cycle} is beyond the latest cycle the engine counts, 2**60")
        with nogil:
            rc = _advance(self, cycle)
        self._raise_for(rc)

    def finish(self):
        """Run until every request offered has been issued to the DRAM and every program has run
        (what replay's final run does); the frontend stays open at the cycle reached."""
        self._check_track()
        self.run(True)
        self.frontend_pending_at_now = True

    def take_completions(self, int64_t until):
        """The requests completed by cycle `until`, in order of completion (ties: in the order
        their last accesses issued): arrays tag, cycle, latency (cycle minus the cycle the
        request's first access was accepted). Their records are freed."""
        cdef CompletionRing* q0 = &self.rings[0]
        cdef CompletionRing* q1 = &self.rings[1]
        cdef int64_t n0 = 0, n1 = 0, i0 = 0, i1 = 0, j, a, b, k0, k1
        cdef int rec
        self._check_track()
        while n0 < q0.count and q0.done[(q0.head + n0) % q0.cap] <= until:
            n0 += 1
        while n1 < q1.count and q1.done[(q1.head + n1) % q1.cap] <= until:
            n1 += 1
        tag = np.empty(n0 + n1, dtype=np.int64)
        cyc = np.empty(n0 + n1, dtype=np.int64)
        lat = np.empty(n0 + n1, dtype=np.int64)
        cdef cnp.int64_t[::1] tv = tag
        cdef cnp.int64_t[::1] cv = cyc
        cdef cnp.int64_t[::1] lv = lat
        for j in range(n0 + n1):
            k0 = (q0.head + i0) % q0.cap
            k1 = (q1.head + i1) % q1.cap
            if i1 >= n1 or (i0 < n0 and (q0.done[k0] < q1.done[k1]
                                         or (q0.done[k0] == q1.done[k1] and q0.seq[k0] < q1.seq[k1]))):
                rec = q0.rec[k0]
                cv[j] = q0.done[k0]
                i0 += 1
            else:
                rec = q1.rec[k1]
                cv[j] = q1.done[k1]
                i1 += 1
            tv[j] = self.r_tag[rec]
            lv[j] = cv[j] - self.r_accept[rec]
            _record_free(self, rec)
        q0.head = (q0.head + n0) % q0.cap
        q0.count -= n0
        q1.head = (q1.head + n1) % q1.cap
        q1.count -= n1
        return tag, cyc, lat

    @property
    def next_completion(self):
        """The earliest completion cycle among the requests not yet taken (a huge number if none)."""
        cdef int64_t t = CYCLE_NEVER
        cdef int k
        for k in range(2):
            if self.rings[k].count and self.rings[k].done[self.rings[k].head] < t:
                t = self.rings[k].done[self.rings[k].head]
        return t

    @property
    def live_requests(self):
        """Requests offered or queued and not yet taken by take_completions()."""
        return self.r_live

    @property
    def pending_requests(self):
        """Requests still (entirely or in part) in the frontend: not yet accepted in full."""
        if self.f_pos == self.f_n:
            return 0
        # the requests none of whose accesses is accepted, and one partly accepted
        return self.f_waiting + (0 if self.f_first == NULL or self.f_first[self.f_pos] else 1)

    def active_cycles_until(self, int64_t end):
        """Per-channel cycles with a bank open (the energy model's active time) up to `end`, as
        close(end) would count them, without changing the engine."""
        cdef int ch, i, pn
        out = self._active.copy()
        for ch in range(self.n_channels):
            for i in range(self.n_pw_nodes):
                pn = ch * self.n_pw_nodes + i
                if self.pw_open[pn] > 0 and end > self.pw_since[pn]:
                    out[ch] += end - self.pw_since[pn]
        return out

    def _raise_for(self, int rc):
        if rc == -3:
            _raise_pending()        # a signal handler's exception (KeyboardInterrupt, Interrupted)
        if rc == -2:
            from pimdram.errors import SimulationError
            i = self.pim_error
            raise SimulationError(
                f"PIM program entry {int(self._prog_arrays[5][i])} (command {self.p_cmd[i]} at node "
                f"{self.p_node[i]}) cannot issue at cycle {self.now}: it activates a row the program has "
                "not closed, or computes on a row the program has not opened")
        if rc < 0:
            from pimdram.errors import SimulationError
            raise SimulationError(f"memory controller stalled at cycle {self.now}: queued accesses made no "
                                  f"progress for {self.stall_limit} cycles (check the constraint table "
                                  "and controller policy)")
        if self.log_cap < 0:
            from pimdram.errors import SimulationError
            raise SimulationError("out of memory while recording the command log")

    def run(self, bint final=False):
        """Simulate until the fed chunk is accepted (final=False) or every access completed."""
        cdef int rc
        with nogil:
            rc = _run(self, final)
        self._raise_for(rc)

    def settle_cycle(self):
        """The first cycle from which no timing row of any command issued so far can constrain a
        later command: the latest earliest-issue entry, bus release and, for window rows (tFAW),
        the latest recorded issue plus the row's latency. A run that starts a fresh engine there
        stays legal across the boundary."""
        cdef int64_t t = 0
        cdef int64_t i, n = <int64_t>self.n_channels * self.n_nodes * self.n_class
        cdef int r, w
        cdef int64_t k, base, cells
        for i in range(n):
            if self.earliest[i] > t:
                t = self.earliest[i]
        for i in range(self.n_channels * 2):
            if self.bus_free[i] > t:
                t = self.bus_free[i]
        for r in range(self.row_start[self.n_cmd]):
            w = self.row_window[r]
            if w <= 1:
                continue
            base = self.row_hist_off[r]
            cells = <int64_t>self.n_channels * self.n_nodes * w
            for k in range(cells):
                if self.hist[base + k] + self.row_latency[r] > t:
                    t = self.hist[base + k] + self.row_latency[r]
        return t

    def close(self, int64_t end):
        """Account open-bank time up to `end` (call once, after the final run)."""
        cdef int ch, i, pn
        for ch in range(self.n_channels):
            for i in range(self.n_pw_nodes):
                pn = ch * self.n_pw_nodes + i
                if self.pw_open[pn] > 0:
                    self.active_cycles[ch] += end - self.pw_since[pn]
                    self.pw_since[pn] = end

    @property
    def current_cycle(self):
        """The cycle the simulation has reached."""
        return self.now

    @property
    def completion_cycle(self):
        """The cycle at which the last completed access finished (data transferred)."""
        return self.last_done

    @property
    def accepted_count(self):
        """Accesses accepted into the controllers' queues so far."""
        return self.accepted

    def counters(self):
        """Per-channel counters as numpy arrays (copies)."""
        C = self.n_channels
        return {
            "commands": self._cmd_count.reshape(C, self.n_cmd).copy(),
            "reads": self._n_read.copy(),
            "writes": self._n_write.copy(),
            "row_hits": self._row_hits.copy(),
            "row_misses": self._row_misses.copy(),
            "row_conflicts": self._row_conflicts.copy(),
            "latency_sum": self._lat_sum.reshape(C, 2).copy(),
            "latency_max": self._lat_max.reshape(C, 2).copy(),
            "latency_histogram": self._lat_hist.reshape(C, 2, N_HIST).copy(),
            "active_cycles": self._active.copy(),
            "bandwidth_window": int(self.bw_window),
            "engine_ticks": int(self.n_ticks),
            "engine_evaluations": int(self.n_evals),
            "bandwidth_read": self._bw_read[: self.bw_bins].copy(),
            "bandwidth_write": self._bw_write[: self.bw_bins].copy(),
        }

    def node_levels(self):
        """For every node id of a channel: (level, index within its level)."""
        lv = np.empty(self.n_nodes, dtype=np.int32)
        ix = np.empty(self.n_nodes, dtype=np.int32)
        for l in range(self.n_levels):
            for i in range(self.level_size[l]):
                lv[self.level_offset[l] + i] = l
                ix[self.level_offset[l] + i] = i
        return lv, ix

    def take_log(self):
        """The command log recorded since the last call, as numpy arrays; clears it."""
        n = self.log_n
        out = {
            "cycle": np.empty(n, dtype=np.int64),
            "command": np.empty(n, dtype=np.uint8),
            "channel": np.empty(n, dtype=np.int32),
            "node": np.empty(n, dtype=np.int32),
            "row": np.empty(n, dtype=np.int32),
            "column": np.empty(n, dtype=np.int32),
        }
        cdef int64_t i
        cdef cnp.int64_t[::1] c = out["cycle"]
        cdef cnp.uint8_t[::1] k = out["command"]
        cdef cnp.int32_t[::1] h = out["channel"]
        cdef cnp.int32_t[::1] d = out["node"]
        cdef cnp.int32_t[::1] r = out["row"]
        cdef cnp.int32_t[::1] o = out["column"]
        for i in range(n):
            c[i] = self.log_cycle[i]
            k[i] = self.log_cmd[i]
            h[i] = self.log_ch[i]
            d[i] = self.log_node[i]
            r[i] = self.log_row[i]
            o[i] = self.log_col[i]
        self.log_n = 0
        return out

    # --- probes for device-timing tests (not used by replay) ------------------------------------
    def node_id(self, path):
        """Node id (within a channel) of the node addressed by `path`: indices from the level below
        channel downwards, e.g. (rank, bank_group, bank) for a bank or (rank,) for a rank."""
        cdef int l, idx = 0
        path = tuple(path)
        if len(path) > self.n_levels - 1:
            raise ValueError("path longer than the organisation")
        for l in range(1, len(path) + 1):
            if not 0 <= path[l - 1] < self.level_count[l]:
                raise ValueError(f"index {path[l - 1]} out of range at level {l}")
            idx = idx * self.level_count[l] + path[l - 1]
        return self.level_offset[len(path)] + idx

    def probe_ready(self, int ch, int cmd, int node):
        """Earliest cycle at which `cmd` may issue at `node` by the timing tables (bus included)."""
        if not (0 <= ch < self.n_channels and 0 <= cmd < self.n_cmd and 0 <= node < self.n_nodes):
            raise ValueError("channel, command or node out of range")
        return max(_ready(self, ch, cmd, node), self.bus_free[ch * 2 + self.cmd_bus[cmd]])

    def probe_issue(self, int ch, int cmd, int node, int64_t t, int row=0):
        """Record `cmd` at `node` at cycle `t` in the timing tables and bank states, bypassing the
        queues (the caller chooses a legal order). Returns nothing; see probe_ready."""
        cdef int kind
        cdef int b
        if not (0 <= ch < self.n_channels and 0 <= cmd < self.n_cmd and 0 <= node < self.n_nodes):
            raise ValueError("channel, command or node out of range")
        kind = self.cmd_kind[cmd]
        _update_timing(self, ch, cmd, node, t)
        self.bus_free[ch * 2 + self.cmd_bus[cmd]] = t + self.cmd_bus_cycles[cmd]
        self.cmd_count[ch * self.n_cmd + cmd] += 1
        if self.node_level[node] == self.bank_level:
            b = node - self.level_offset[self.bank_level]
            if kind == KIND_ACTIVATE:
                _set_open(self, ch, b, row, t)
            elif kind in (KIND_PRECHARGE, KIND_READ_PRECHARGE, KIND_WRITE_PRECHARGE):
                _set_open(self, ch, b, -1, t)
        elif kind == KIND_PRECHARGE:
            for b in range(self.node_first_bank[node], self.node_first_bank[node] + self.node_n_banks[node]):
                if self.bk[ch * self.n_banks + b].open_row >= 0:
                    _set_open(self, ch, b, -1, t)
