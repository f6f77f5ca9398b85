# cython: language_level=3
"""Event-driven DRAM memory controller: queues, FR-FCFS scheduling, timing tables, refresh.

The engine gets only resolved plain data (integer timing rows, organisation, address mapping)
from pimdram.replay and requests as numpy arrays in chunks. Time advances from one event to the
next: per channel it keeps the earliest cycle at which anything could happen (a command becoming
legal, a refresh falling due, a request arriving) and never looks at the cycles in between.
Legality of a command is a handful of integer comparisons against per-node earliest-issue
tables that are updated only where a timing row says.
"""
import numpy as np
cimport cython
cimport numpy as cnp

from pimdram._types cimport (cycle_t, addr_t, idx_t, int64_t, int32_t, uint8_t, uint32_t, uint64_t,
                             CYCLE_NEVER, KIND_ACTIVATE, KIND_PRECHARGE, KIND_READ, KIND_WRITE,
                             KIND_READ_PRECHARGE, KIND_WRITE_PRECHARGE, KIND_REFRESH)
from libc.stdlib cimport realloc, free
from libc.string cimport memmove

cnp.import_array()

cdef enum:
    SCHED_FRFCFS = 0
    SCHED_FCFS = 1
    SCHED_ROUND_ROBIN = 2

SCHEDULERS = ("frfcfs", "fcfs", "round_robin")   # index = the engine's scheduler code

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


cdef inline int64_t imin(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline int lat_bin(int64_t v) noexcept nogil:
    cdef int e
    if v < 1024:
        return <int>(v if v > 0 else 0)
    e = 53 - __builtin_clzll(<unsigned long long>v)     # floor(log2 v) - 10
    if e > 30:
        return N_HIST - 1
    # v in [2^(10+e), 2^(11+e)): 128 sub-bins
    return 1024 + e * 128 + <int>(((v >> (e + 3)) & 127))


def latency_bin_edges():
    """[start, end) cycles of every latency histogram bin."""
    start = np.empty(N_HIST, dtype=np.int64)
    end = np.empty(N_HIST, dtype=np.int64)
    start[:1024] = np.arange(1024)
    end[:1024] = np.arange(1, 1025)
    for e in range(31):
        w = 1 << (e + 3)
        base = 1024 << e
        for k in range(128):
            i = 1024 + e * 128 + k
            start[i] = base + k * w
            end[i] = base + (k + 1) * w
    return start, end


@cython.final
cdef class Engine:
    """One memory system: every channel's controller, a shared in-order frontend, statistics."""

    def __init__(self, dict p):
        cdef int l, m, i, r, n, ch, b, lvl
        self._keep = []
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
        self.n_sel = p.get("n_sel", 0)
        self.cmd_sel = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p.get("cmd_sel", [0] * self.n_cmd), dtype=np.int32).copy()))
        self.cmd_rb = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p.get("cmd_rb", [0] * self.n_cmd), dtype=np.int32).copy()))
        self.cmd_unit = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(p.get("cmd_unit", [-1] * self.n_cmd), dtype=np.int32).copy()))
        for i in range(self.n_cmd):
            if self.cmd_sel[i] and self.n_sel <= 0:
                raise ValueError("a same-bank command needs n_sel (banks per bank group)")

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
        self._compile_updates(n_rows)
        self.bus_free = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels * 2))

        # refresh
        self.ref_cmd = p["refresh_cmd"]
        self.ref_level = p["refresh_level"] if self.ref_cmd >= 0 else 1
        self.ref_interval = p["refresh_interval"] if self.ref_cmd >= 0 else 0
        self.n_ref_nodes = self.level_size[self.ref_level]
        ref_due = self._i64(self.n_channels * self.n_ref_nodes)
        self.ref_due = <int64_t*> cnp.PyArray_DATA(ref_due)
        for ch in range(self.n_channels):
            for i in range(self.n_ref_nodes):
                self.ref_due[ch * self.n_ref_nodes + i] = (self.ref_interval + i * self.ref_interval // self.n_ref_nodes
                                                           if self.ref_cmd >= 0 else CYCLE_NEVER)
        self.ref_pending = <uint8_t*> cnp.PyArray_DATA(self._u8(self.n_channels * self.n_ref_nodes))
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

        # request slots and queues
        self.n_slots = self.read_queue + self.write_queue + self.n_banks * self.bank_queue
        ns = self.n_channels * self.n_slots
        self.s_row = <int32_t*> cnp.PyArray_DATA(self._i32(ns))
        self.s_col = <int32_t*> cnp.PyArray_DATA(self._i32(ns))
        self.s_bank = <int32_t*> cnp.PyArray_DATA(self._i32(ns))
        self.s_write = <uint8_t*> cnp.PyArray_DATA(self._u8(ns))
        self.s_class = <uint8_t*> cnp.PyArray_DATA(self._u8(ns))
        self.s_seq = <int64_t*> cnp.PyArray_DATA(self._i64(ns))
        self.s_arrive = <int64_t*> cnp.PyArray_DATA(self._i64(ns))
        self.s_next = <int32_t*> cnp.PyArray_DATA(self._i32(ns, -1))
        self.free_head = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        for ch in range(self.n_channels):
            for i in range(self.n_slots):
                self.s_next[ch * self.n_slots + i] = ch * self.n_slots + i + 1 if i + 1 < self.n_slots else -1
            self.free_head[ch] = ch * self.n_slots
        nq = self.n_channels * self.n_banks * 2
        self.q_head = <int32_t*> cnp.PyArray_DATA(self._i32(nq, -1))
        self.q_tail = <int32_t*> cnp.PyArray_DATA(self._i32(nq, -1))
        self.q_count = <int32_t*> cnp.PyArray_DATA(self._i32(nq))
        self.q_hits = <int32_t*> cnp.PyArray_DATA(self._i32(nq))
        self.open_row = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * self.n_banks, -1))
        self.served = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * self.n_banks))
        self.cand_ready = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels * self.n_banks, CYCLE_NEVER))
        nbt = self.n_channels * self.n_banks
        self.cand_cmd = <int32_t*> cnp.PyArray_DATA(self._i32(nbt, -1))
        self.cand_slot = <int32_t*> cnp.PyArray_DATA(self._i32(nbt))
        self.cand_prev = <int32_t*> cnp.PyArray_DATA(self._i32(nbt))
        self.cand_col = <uint8_t*> cnp.PyArray_DATA(self._u8(nbt))
        anc_off = self._i32(self.n_banks * self.n_levels)
        self.bank_anc_off = <int32_t*> cnp.PyArray_DATA(anc_off)
        for b in range(self.n_banks):
            for l in range(self.n_levels):
                self.bank_anc_off[b * self.n_levels + l] = self.node_anc[self.bank_node[b] * self.n_levels + l] * self.n_class
        self.mask_words = (self.n_banks + 63) // 64
        self.busy_mask = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels * self.mask_words, dtype=np.uint64)))
        self.pend = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels * self.mask_words, dtype=np.uint64)))
        self.wheel = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels * 64 * self.mask_words, dtype=np.uint64)))
        self.wheel_occ = <uint64_t*> cnp.PyArray_DATA(self._keep_arr(np.zeros(self.n_channels, dtype=np.uint64)))
        self.rr_next = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.rq_count = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.wq_count = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.stage = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels * (self.read_queue + self.write_queue)))
        self.bankq_total = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.drain = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.outstanding = <int32_t*> cnp.PyArray_DATA(self._i32(self.n_channels))
        self.wake = <int64_t*> cnp.PyArray_DATA(self._i64(self.n_channels))
        for ch in range(self.n_channels):
            self.wake[ch] = self.ref_due[ch * self.n_ref_nodes] if self.ref_cmd >= 0 else CYCLE_NEVER

        # power bookkeeping: open banks per power node (rank-like level)
        self.pw_level = p["power_level"]
        self.n_pw_nodes = self.level_size[self.pw_level]
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
        self.last_progress = 0
        # no access accepted or completed for this long while work is queued: report a stall
        self.stall_limit = p.get("stall_limit", max(10_000_000, 100 * (self.ref_interval + 1)))
        self.f_n = 0
        self.f_pos = 0
        self.f_base = 0

    def __dealloc__(self):
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

    cdef object _i32(self, n, fill=0):
        return self._keep_arr(np.full(int(n), fill, dtype=np.int32))

    cdef object _i64(self, n, fill=0):
        return self._keep_arr(np.full(int(n), fill, dtype=np.int64))

    cdef object _u8(self, n, fill=0):
        return self._keep_arr(np.full(int(n), fill, dtype=np.uint8))

    # --- timing tables -------------------------------------------------------------------------
    def _compile_updates(self, int n_rows):
        """For every (command, node) the flat lists of table entries an issue there raises, so that
        issuing walks short arrays instead of interpreting the rows (levels, siblings, subtrees).
        Plain rows become (offset in a channel's earliest table, latency), one entry per offset
        with the largest latency; window rows become (row, node) for the ring buffers.

        Same-bank commands (bank k of every bank group under the node) get one list per k after
        the (command, node) lists, at key n_cmd * n_nodes + (cmd * n_nodes + node) * n_sel + k,
        reaching only the nodes below the node that hold such a bank; sel_start/sel_nodes list
        those nodes for the ready check."""
        cdef int c, node, lvl, k
        starts, wstarts = [0], [0]
        offs, lats, wrows, wnodes = [], [], [], []

        def add(c, node, keep):
            plain = {}
            for r, x in self._row_targets(c, node):
                if self.node_level[x] > self.node_level[node] and not keep(x):
                    continue
                if self.row_window[r] > 1:
                    wrows.append(r)
                    wnodes.append(x)
                else:
                    o = x * self.n_class + self.row_to[r]
                    plain[o] = max(plain.get(o, -1), self.row_latency[r])
            for o in sorted(plain):
                offs.append(o)
                lats.append(plain[o])
            starts.append(len(offs))
            wstarts.append(len(wrows))

        for c in range(self.n_cmd):
            for node in range(self.n_nodes):
                add(c, node, lambda x: True)
        n_sel = max(self.n_sel, 0)
        sel_start, sel_nodes = [0], []
        for c in range(self.n_cmd):
            for node in range(self.n_nodes):
                for k in range(n_sel):
                    if self.cmd_sel[c] and self.node_level[node] == self.cmd_scope[c]:
                        add(c, node, lambda x, k=k: self._holds_sel(x, k))
                    else:
                        starts.append(len(offs))
                        wstarts.append(len(wrows))
        for node in range(self.n_nodes):
            lvl = self.node_level[node]
            for k in range(n_sel):
                sel_nodes.extend(x for x in range(self.n_nodes)
                                 if self.node_level[x] > lvl and self.node_anc[x * self.n_levels + lvl] == node
                                 and self._holds_sel(x, k))
                sel_start.append(len(sel_nodes))
        self.upd_start = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(starts, dtype=np.int32)))
        self.upd_off = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(offs + [0], dtype=np.int32)))
        self.upd_lat = <int64_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(lats + [0], dtype=np.int64)))
        self.wupd_start = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(wstarts, dtype=np.int32)))
        self.wupd_row = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(wrows + [0], dtype=np.int32)))
        self.wupd_node = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(wnodes + [0], dtype=np.int32)))
        self.sel_start = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(sel_start, dtype=np.int32)))
        self.sel_nodes = <int32_t*> cnp.PyArray_DATA(self._keep_arr(np.asarray(sel_nodes + [0], dtype=np.int32)))

    def _row_targets(self, int c, int node):
        """(row, target node) for every constraint row from command c issued at `node`: the
        ancestor at the row's level (or its siblings), or every node at a deeper level below."""
        cdef int lvl = self.node_level[node]
        cdef int r, L, first, tgt
        cdef int64_t span, start
        NL = self.n_levels
        out = []
        for r in range(self.row_start[c], self.row_start[c + 1]):
            L = self.row_level[r]
            targets = []
            if L <= lvl:
                tgt = self.node_anc[node * NL + L]
                if self.row_sibling[r]:
                    first = self.level_offset[L] + ((tgt - self.level_offset[L]) // self.level_count[L]) * self.level_count[L]
                    targets = [x for x in range(first, first + self.level_count[L]) if x != tgt]
                else:
                    targets = [tgt]
            elif not self.row_sibling[r]:
                span = self.level_span[lvl * MAXL + L]
                start = self.level_offset[L] + (node - self.level_offset[lvl]) * span
                targets = list(range(start, start + span))
            out.extend((r, x) for x in targets)
        return out

    def _holds_sel(self, int x, int k):
        """Whether node x holds bank k of some bank group (the banks a same-bank command selects)."""
        if self.node_n_banks[x] >= self.n_sel:
            return True
        return self.node_first_bank[x] % self.n_sel == k

    cdef int64_t _ready(self, int ch, int cmd, int node) noexcept nogil:
        """Earliest cycle `cmd` may issue at `node`: the max over the node, its ancestors and,
        for commands that cover several banks, every node below it."""
        return self._sel_ready(ch, cmd, node, -1)

    cdef int64_t _sel_ready(self, int ch, int cmd, int node, int k) noexcept nogil:
        """_ready where a same-bank command (k >= 0) covers only bank k of every bank group."""
        cdef int NL = self.n_levels
        cdef int cls = self.cmd_class[cmd]
        cdef int lvl = self.node_level[node]
        cdef int64_t base = <int64_t>ch * self.n_nodes
        cdef int64_t e = 0
        cdef int l, m, j
        cdef int64_t d, start, span
        for l in range(lvl + 1):
            e = imax(e, self.earliest[(base + self.node_anc[node * NL + l]) * self.n_class + cls])
        if k >= 0 and self.cmd_sel[cmd]:
            for j in range(self.sel_start[node * self.n_sel + k], self.sel_start[node * self.n_sel + k + 1]):
                e = imax(e, self.earliest[(base + self.sel_nodes[j]) * self.n_class + cls])
        elif lvl < self.bank_level:
            for m in range(lvl + 1, NL):
                span = self.level_span[lvl * MAXL + m]
                start = self.level_offset[m] + (node - self.level_offset[lvl]) * span
                for d in range(start, start + span):
                    e = imax(e, self.earliest[(base + d) * self.n_class + cls])
        return e

    cdef void _apply_row(self, int ch, int r, int node, int64_t t) noexcept nogil:
        cdef int64_t v, pos, hb
        cdef int w = self.row_window[r]
        cdef int64_t cnode = <int64_t>ch * self.n_nodes + node
        cdef int64_t idx = cnode * self.n_class + self.row_to[r]
        if w <= 1:
            v = t + self.row_latency[r]
        else:
            pos = self.hist_pos[self.row_pos_off[r] + cnode]
            hb = self.row_hist_off[r] + cnode * w
            self.hist[hb + pos % w] = t
            self.hist_pos[self.row_pos_off[r] + cnode] = pos + 1
            if pos + 1 < w:
                return
            # the oldest of the last w issues bounds the next one
            v = self.hist[hb + (pos + 1) % w] + self.row_latency[r]
        if self.earliest[idx] < v:
            self.earliest[idx] = v

    cdef void _update_timing(self, int ch, int cmd, int node, int64_t t) noexcept nogil:
        self._update_key(ch, cmd * self.n_nodes + node, t)

    cdef void _update_key(self, int ch, int i, int64_t t) noexcept nogil:
        """Raise the table entries of update list i (see _compile_updates) for an issue at t."""
        cdef int64_t* e = &self.earliest[<int64_t>ch * self.n_nodes * self.n_class]
        cdef int k
        cdef int end = self.upd_start[i + 1]
        cdef int64_t v
        for k in range(self.upd_start[i], end):
            v = t + self.upd_lat[k]
            if e[self.upd_off[k]] < v:
                e[self.upd_off[k]] = v
        end = self.wupd_start[i + 1]
        for k in range(self.wupd_start[i], end):
            self._apply_row(ch, self.wupd_row[k], self.wupd_node[k], t)

    # --- bank state ----------------------------------------------------------------------------
    cdef inline void _invalidate(self, int ch, int b) noexcept nogil:
        """The bank's state or queue changed: its candidate must be chosen again (next tick)."""
        cdef int bi = ch * self.n_banks + b
        self.cand_ready[bi] = 0
        self.cand_cmd[bi] = -1
        self.pend[ch * self.mask_words + (b >> 6)] |= (<uint64_t>1) << (b & 63)

    cdef inline void _wheel_put(self, int ch, int b, int64_t r, int64_t t) noexcept nogil:
        """Look at bank `b` again at cycle r > t. The wheel holds the next 63 cycles; a later
        cycle is filed in the last slot and put back when that slot comes."""
        cdef int slot
        if r > t + 63:
            r = t + 63
        slot = <int>(r & 63)
        self.wheel[(<int64_t>ch * 64 + slot) * self.mask_words + (b >> 6)] |= (<uint64_t>1) << (b & 63)
        self.wheel_occ[ch] |= (<uint64_t>1) << slot

    cdef inline int64_t _wheel_next(self, int ch, int64_t t) noexcept nogil:
        """The first cycle after t with a non-empty wheel slot (the wheel must not be empty)."""
        cdef uint64_t occ = self.wheel_occ[ch]
        cdef int k = <int>((t + 1) & 63)
        if k:
            occ = (occ >> k) | (occ << (64 - k))
        return t + 1 + __builtin_ctzll(occ)

    cdef inline int64_t _bank_ready(self, int ch, int cmd, int b) noexcept nogil:
        """_ready for a bank-scope command, unrolled over the bank's ancestors."""
        cdef const int64_t* e = &self.earliest[<int64_t>ch * self.n_nodes * self.n_class + self.cmd_class[cmd]]
        cdef const int32_t* off = &self.bank_anc_off[b * self.n_levels]
        cdef int64_t r = e[off[0]]
        cdef int l
        for l in range(1, self.n_levels):
            if e[off[l]] > r:
                r = e[off[l]]
        return imax(r, self.bus_free[ch * 2 + self.cmd_bus[cmd]])

    cdef void _set_open(self, int ch, int b, int row, int64_t t) noexcept nogil:
        cdef int bi = ch * self.n_banks + b
        cdef int old = self.open_row[bi]
        cdef int pn = ch * self.n_pw_nodes + b // <int>self.level_span[self.pw_level * MAXL + self.bank_level]
        if old < 0 and row >= 0:
            if self.pw_open[pn] == 0:
                self.pw_since[pn] = t
            self.pw_open[pn] += 1
        elif old >= 0 and row < 0:
            self.pw_open[pn] -= 1
            if self.pw_open[pn] == 0:
                self.active_cycles[ch] += t - self.pw_since[pn]
        self.open_row[bi] = row
        self.served[bi] = 0
        self._invalidate(ch, b)
        self._count_hits(ch, b)

    cdef void _count_hits(self, int ch, int b) noexcept nogil:
        cdef int lst, s, n
        cdef int bi = ch * self.n_banks + b
        cdef int row = self.open_row[bi]
        for lst in range(2):
            n = 0
            if row >= 0:
                s = self.q_head[bi * 2 + lst]
                while s >= 0:
                    if self.s_row[s] == row:
                        n += 1
                    s = self.s_next[s]
            self.q_hits[bi * 2 + lst] = n

    cdef bint _bank_push(self, int ch, int b, int lst, int s) noexcept nogil:
        """Append slot `s` to the bank's list `lst`. The bank's cached candidate stands unless the
        new request can change it: returns whether it was dropped (the bank needs a look)."""
        cdef int bi = ch * self.n_banks + b
        cdef int qi = bi * 2 + lst
        cdef bint hit = self.s_row[s] == self.open_row[bi]
        self.s_next[s] = -1
        if self.q_tail[qi] >= 0:
            self.s_next[self.q_tail[qi]] = s
        else:
            self.q_head[qi] = s
        self.q_tail[qi] = s
        self.q_count[qi] += 1
        self.busy_mask[ch * self.mask_words + (b >> 6)] |= (<uint64_t>1) << (b & 63)
        if hit:
            self.q_hits[qi] += 1
        if lst != (0 if self.bank_queue > 0 else self.drain[ch]):
            return False        # the other mode's list: looked at when the mode changes
        # appended at the tail, a request changes neither the head (ACT) nor the first row hit
        # (column command); it can turn a precharge into a row hit, and it changes the counts
        # behind the closed-page and row-hit-cap choices
        if (self.cand_cmd[bi] < 0 or self.closed_page or self.row_hit_cap > 0
                or (hit and not self.cand_col[bi])):
            self._invalidate(ch, b)
            return True
        return False

    # --- issuing -------------------------------------------------------------------------------
    cdef void _log(self, int ch, int cmd, int node, int row, int col, int64_t t) noexcept nogil:
        cdef int64_t cap
        if self.log_n == self.log_cap:
            cap = self.log_cap * 2 if self.log_cap else 65536
            self.log_cycle = <int64_t*> realloc(self.log_cycle, cap * sizeof(int64_t))
            self.log_cmd = <uint8_t*> realloc(self.log_cmd, cap * sizeof(uint8_t))
            self.log_ch = <int32_t*> realloc(self.log_ch, cap * sizeof(int32_t))
            self.log_node = <int32_t*> realloc(self.log_node, cap * sizeof(int32_t))
            self.log_row = <int32_t*> realloc(self.log_row, cap * sizeof(int32_t))
            self.log_col = <int32_t*> realloc(self.log_col, cap * sizeof(int32_t))
            if (self.log_cycle == NULL or self.log_cmd == NULL or self.log_ch == NULL or self.log_node == NULL
                    or self.log_row == NULL or self.log_col == NULL):
                self.logging = False   # out of memory: stop logging; take_log() reports it
                self.log_cap = -1
                return
            self.log_cap = cap
        self.log_cycle[self.log_n] = t
        self.log_cmd[self.log_n] = <uint8_t>cmd
        self.log_ch[self.log_n] = ch
        self.log_node[self.log_n] = node
        self.log_row[self.log_n] = row
        self.log_col[self.log_n] = col
        self.log_n += 1

    cdef int _issue(self, int ch, int cmd, int node, int b, int s, int prev, int64_t t) noexcept nogil:
        """Issue `cmd` at `node` (bank `b`, on behalf of slot `s` whose list predecessor is `prev`)."""
        cdef int kind = self.cmd_kind[cmd]
        cdef int bi, qi, i, nb, first, lst, row = -1, col = -1, k, bin
        cdef int64_t done, lat
        self._update_timing(ch, cmd, node, t)
        self.bus_free[ch * 2 + self.cmd_bus[cmd]] = t + self.cmd_bus_cycles[cmd]
        self.cmd_count[ch * self.n_cmd + cmd] += 1
        if kind == KIND_ACTIVATE:
            row = self.s_row[s]
            if self.s_class[s] == 0:
                self.s_class[s] = 1
            self._set_open(ch, b, row, t)
        elif kind == KIND_PRECHARGE:
            if self.node_level[node] == self.bank_level:
                if s >= 0 and self.s_class[s] == 0:
                    self.s_class[s] = 2
                self._set_open(ch, b, -1, t)
            else:
                first = self.node_first_bank[node]
                nb = self.node_n_banks[node]
                for i in range(first, first + nb):
                    if self.open_row[ch * self.n_banks + i] >= 0:
                        self._set_open(ch, i, -1, t)
        elif kind == KIND_REFRESH:
            pass
        else:
            bi = ch * self.n_banks + b
            lst = 0 if self.bank_queue > 0 else <int>self.s_write[s]
            qi = bi * 2 + lst
            row = self.s_row[s]
            col = self.s_col[s]
            # unlink s from its bank list
            if prev >= 0:
                self.s_next[prev] = self.s_next[s]
            else:
                self.q_head[qi] = self.s_next[s]
            if self.q_tail[qi] == s:
                self.q_tail[qi] = prev
            self.q_count[qi] -= 1
            self.q_hits[qi] -= 1
            self.served[bi] += 1
            self._invalidate(ch, b)
            if self.q_count[bi * 2] == 0 and self.q_count[bi * 2 + 1] == 0:
                self.busy_mask[ch * self.mask_words + (b >> 6)] &= ~((<uint64_t>1) << (b & 63))
                self.cand_ready[bi] = CYCLE_NEVER
                self.cand_cmd[bi] = -1
            k = <int>self.s_write[s]
            done = t + (self.write_latency if k else self.read_latency)
            lat = done - self.s_arrive[s]
            if k:
                self.n_write[ch] += 1
            else:
                self.n_read[ch] += 1
            self.lat_sum[ch * 2 + k] += lat
            if lat > self.lat_max[ch * 2 + k]:
                self.lat_max[ch * 2 + k] = lat
            self.lat_hist[(ch * 2 + k) * N_HIST + lat_bin(lat)] += 1
            if self.s_class[s] == 0:
                self.row_hits[ch] += 1
            elif self.s_class[s] == 1:
                self.row_misses[ch] += 1
            else:
                self.row_conflicts[ch] += 1
            if done > self.last_done:
                self.last_done = done
            bin = <int>(done >> self.bw_shift)
            while bin >= BW_BINS:
                for i in range(BW_BINS // 2):
                    self.bw_read[i] = self.bw_read[2 * i] + self.bw_read[2 * i + 1]
                    self.bw_write[i] = self.bw_write[2 * i] + self.bw_write[2 * i + 1]
                for i in range(BW_BINS // 2, BW_BINS):
                    self.bw_read[i] = 0
                    self.bw_write[i] = 0
                self.bw_window *= 2
                self.bw_shift += 1
                bin = <int>(done >> self.bw_shift)
            if k:
                self.bw_write[bin] += self.access_bytes
            else:
                self.bw_read[bin] += self.access_bytes
            if bin + 1 > self.bw_bins:
                self.bw_bins = bin + 1
            if self.bank_queue > 0:
                self.bankq_total[ch] -= 1
            elif k:
                self.wq_count[ch] -= 1
            else:
                self.rq_count[ch] -= 1
            self.outstanding[ch] -= 1
            self.last_progress = t
            self.s_next[s] = self.free_head[ch]
            self.free_head[ch] = s
            if kind == KIND_READ_PRECHARGE or kind == KIND_WRITE_PRECHARGE:
                self._set_open(ch, b, -1, t)
        if self.logging:
            self._log(ch, cmd, node, row, col, t)
        return 0

    # --- refresh -------------------------------------------------------------------------------
    cdef int _refresh_step(self, int ch, int64_t t, int64_t* wake) noexcept nogil:
        """Start due refreshes and issue the next command of a pending one (called only from
        ref_quiet_until[ch] on). Returns the buses used this cycle as a bit mask (1 = row bus,
        2 = column bus)."""
        cdef int i, node, b, first, nb, cmd, bank, ri, target, used = 0, pending = 0
        cdef int64_t r, quiet = CYCLE_NEVER
        for i in range(self.n_ref_nodes):
            ri = ch * self.n_ref_nodes + i
            node = self.level_offset[self.ref_level] + i
            first = self.node_first_bank[node]
            nb = self.node_n_banks[node]
            if not self.ref_pending[ri]:
                if t >= self.ref_due[ri]:
                    self.ref_pending[ri] = 1
                    for b in range(first, first + nb):
                        self.bank_blocked[ch * self.n_banks + b] |= BLOCK_REFRESH
                else:
                    wake[0] = imin(wake[0], self.ref_due[ri])
                    quiet = imin(quiet, self.ref_due[ri])
                    continue
            # pending: close open banks, then refresh (after any PIM operation that holds a row here)
            pending += 1
            if self.pim_open[ch] > 0 and self._pim_holds(ch, first, nb):
                continue        # the PIM precharge that releases the rows wakes the channel
            bank = -1
            for b in range(first, first + nb):
                if self.open_row[ch * self.n_banks + b] >= 0:
                    bank = b
                    break
            if bank >= 0:
                if self.cmd_pre_refresh >= 0:
                    cmd = self.cmd_pre_refresh
                    target = node
                else:
                    cmd = self.cmd_pre
                    target = self.bank_node[bank]
            else:
                cmd = self.ref_cmd
                target = node
            if used & (1 << self.cmd_bus[cmd]):
                wake[0] = imin(wake[0], t + 1)
                continue
            r = imax(self._ready(ch, cmd, target), self.bus_free[ch * 2 + self.cmd_bus[cmd]])
            if r <= t:
                self._issue(ch, cmd, target, bank, -1, -1, t)
                used |= 1 << self.cmd_bus[cmd]
                wake[0] = imin(wake[0], t + 1)
                if cmd == self.ref_cmd:
                    self.ref_pending[ri] = 0
                    self.ref_due[ri] += self.ref_interval
                    for b in range(first, first + nb):
                        self.bank_blocked[ch * self.n_banks + b] &= ~BLOCK_REFRESH
                        self._invalidate(ch, b)
                    wake[0] = imin(wake[0], self.ref_due[ri])
            else:
                wake[0] = imin(wake[0], r)
        # nothing pending: until the next due cycle this step has nothing to do
        self.ref_quiet_until[ch] = quiet if pending == 0 else 0
        return used

    cdef inline bint _mode_flip_due(self, int ch) noexcept nogil:
        """Queue mode without bank queues: whether the channel's read/write mode flips at its
        next tick (drain writes when the write queue reaches the high watermark or no read waits;
        back to reads when it is empty, or at the low watermark with reads waiting)."""
        cdef int wq = self.wq_count[ch]
        if self.drain[ch] == 0:
            return wq > 0 and (wq >= self.wq_high or self.rq_count[ch] == 0)
        return wq == 0 or (wq <= self.wq_low and self.rq_count[ch] > 0)

    # --- processing in memory -----------------------------------------------------------------
    cdef inline bint _covers(self, int cmd, int k, int b) noexcept nogil:
        """Whether a command at a node over bank b acts on b (k: the same-bank choice)."""
        return self.cmd_sel[cmd] == 0 or b % self.n_sel == k

    cdef bint _pim_holds(self, int ch, int first, int nb) noexcept nogil:
        """Whether a PIM operation holds an open row in banks first .. first + nb - 1."""
        cdef int b, bi
        for b in range(first, first + nb):
            bi = ch * self.n_banks + b
            if self.bank_blocked[bi] & BLOCK_PIM_ROW or self.pim_row[bi] >= 0:
                return True
        return False

    cdef int _pim_step(self, int ch, int64_t t, int used, int64_t* wake) noexcept nogil:
        """Issue the channel's next PIM program command if it is legal now (first closing banks
        that normal traffic left open under a PIM activate). Returns the buses used."""
        cdef int64_t i = self.p_pos[ch]
        cdef int cmd = self.p_cmd[i]
        cdef int node = self.p_node[i]
        cdef int k = self.p_sel[i]
        cdef int kind = self.cmd_kind[cmd]
        cdef int rb = self.cmd_rb[cmd]
        cdef int first = self.node_first_bank[node]
        cdef int nb = self.node_n_banks[node]
        cdef int bus = self.cmd_bus[cmd]
        cdef int u = self.cmd_unit[cmd]
        cdef int b, bi, pre_bus, open_now
        cdef int64_t r
        if self.pim_mode == 2 and not self.pim_claim[ch]:
            # blocked mode: normal traffic waits until the program has run
            self.pim_claim[ch] = 1
            for b in range(self.n_banks):
                self.bank_blocked[ch * self.n_banks + b] |= BLOCK_PIM_MODE
        if kind == KIND_ACTIVATE or kind == KIND_MAC:
            for b in range(first, first + nb):
                if not self._covers(cmd, k, b):
                    continue
                bi = ch * self.n_banks + b
                if kind == KIND_MAC:
                    # the program must have opened the row it computes on
                    if rb:
                        open_now = self.pim_row[bi]
                    elif self.bank_blocked[bi] & BLOCK_PIM_ROW:
                        open_now = self.open_row[bi]
                    else:
                        open_now = -1
                    if open_now != self.p_row[i]:
                        self.pim_error = i
                        return 0
                elif (rb and self.pim_row[bi] >= 0) or (not rb and self.bank_blocked[bi] & BLOCK_PIM_ROW):
                    self.pim_error = i          # the program activates a row it has not closed
                    return 0
                elif self.bank_blocked[bi] & BLOCK_REFRESH and self.pim_open[ch] == 0:
                    return 0                    # the refresh goes first; its issue wakes the channel
            if kind == KIND_ACTIVATE and not rb:
                # hold the banks against normal traffic, and close those it left open
                for b in range(first, first + nb):
                    if self._covers(cmd, k, b):
                        self.bank_blocked[ch * self.n_banks + b] |= BLOCK_PIM_WAIT
                for b in range(first, first + nb):
                    if not self._covers(cmd, k, b) or self.open_row[ch * self.n_banks + b] < 0:
                        continue
                    pre_bus = self.cmd_bus[self.cmd_pre]
                    r = self._bank_ready(ch, self.cmd_pre, b)
                    if used & (1 << pre_bus) or r > t:
                        wake[0] = imin(wake[0], imax(r, t + 1))
                        return 0
                    self._issue(ch, self.cmd_pre, self.bank_node[b], b, -1, -1, t)
                    self.last_progress = t
                    wake[0] = imin(wake[0], t + 1)
                    return 1 << pre_bus
        r = imax(self._sel_ready(ch, cmd, node, k), self.bus_free[ch * 2 + bus])
        if u >= 0:
            for b in range(first, first + nb):
                if self._covers(cmd, k, b):
                    r = imax(r, self.unit_free[ch * self.unit_total + self.unit_off[u] + b // self.unit_div[u]])
        if used & (1 << bus) or r > t:
            wake[0] = imin(wake[0], imax(r, t + 1))
            return 0
        self._pim_issue(ch, i, t)
        wake[0] = imin(wake[0], t + 1)
        return 1 << bus

    cdef void _pim_issue(self, int ch, int64_t i, int64_t t) noexcept nogil:
        """Issue program command i: timing tables, bus, row buffers, units, statistics, log."""
        cdef int cmd = self.p_cmd[i]
        cdef int node = self.p_node[i]
        cdef int k = self.p_sel[i]
        cdef int row = self.p_row[i]
        cdef int64_t occ = self.p_occ[i]
        cdef int kind = self.cmd_kind[cmd]
        cdef int rb = self.cmd_rb[cmd]
        cdef int u = self.cmd_unit[cmd]
        cdef int first = self.node_first_bank[node]
        cdef int nb = self.node_n_banks[node]
        cdef int b, bi, key
        if self.cmd_sel[cmd]:
            key = self.n_cmd * self.n_nodes + (cmd * self.n_nodes + node) * self.n_sel + k
        else:
            key = cmd * self.n_nodes + node
        self._update_key(ch, key, t)
        self.bus_free[ch * 2 + self.cmd_bus[cmd]] = t + self.cmd_bus_cycles[cmd]
        self.cmd_count[ch * self.n_cmd + cmd] += 1
        for b in range(first, first + nb):
            if not self._covers(cmd, k, b):
                continue
            bi = ch * self.n_banks + b
            if kind == KIND_ACTIVATE:
                self.pim_open[ch] += 1
                if rb:
                    self.pim_row[bi] = row
                else:
                    self.bank_blocked[bi] = (self.bank_blocked[bi] & ~BLOCK_PIM_WAIT) | BLOCK_PIM_ROW
                    self._set_open(ch, b, row, t)
            elif kind == KIND_PRECHARGE:
                if rb:
                    if self.pim_row[bi] >= 0:
                        self.pim_open[ch] -= 1
                    self.pim_row[bi] = -1
                else:
                    if self.bank_blocked[bi] & BLOCK_PIM_ROW:
                        self.pim_open[ch] -= 1
                        self.bank_blocked[bi] &= ~BLOCK_PIM_ROW
                    if self.open_row[bi] >= 0:
                        self._set_open(ch, b, -1, t)
                    else:
                        self._invalidate(ch, b)
            elif u >= 0:
                self.unit_free[ch * self.unit_total + self.unit_off[u] + b // self.unit_div[u]] = t + occ
        if t + occ > self.last_done:
            self.last_done = t + occ
        self.last_progress = t
        if self.logging:
            self._log(ch, cmd, node + (self.n_nodes * (k + 1) if self.cmd_sel[cmd] else 0),
                      row if kind == KIND_ACTIVATE or kind == KIND_MAC else -1, -1, t)
        self.p_pos[ch] = i + 1
        if i + 1 == self.p_end[ch] and self.pim_claim[ch]:
            self.pim_claim[ch] = 0
            for b in range(self.n_banks):
                self.bank_blocked[ch * self.n_banks + b] &= ~BLOCK_PIM_MODE
                self._invalidate(ch, b)

    # --- scheduling ----------------------------------------------------------------------------
    cdef bint _move_one(self, int ch) noexcept nogil:
        """Bank-queue mode: move one transaction from a staging queue into its bank's queue."""
        cdef int rq = self.read_queue
        cdef int base = ch * (self.read_queue + self.write_queue)
        cdef int i, s, n, off, b
        cdef bint writes
        if self.drain[ch] == 0:
            # drain when the write queue is full, or when no read waits and enough writes have
            # gathered (or no more will come)
            if self.wq_count[ch] >= self.wq_high or (self.rq_count[ch] == 0 and self.wq_count[ch] > 0 and (
                    self.wq_count[ch] >= self.wq_low or (self.input_done and self.f_pos == self.f_n))):
                self.drain[ch] = self.wq_count[ch]
        writes = self.drain[ch] > 0
        off = base + (rq if writes else 0)
        n = self.wq_count[ch] if writes else self.rq_count[ch]
        for i in range(n):
            s = self.stage[off + i]
            b = self.s_bank[s]
            if self.q_count[(ch * self.n_banks + b) * 2] < self.bank_queue:
                memmove(&self.stage[off + i], &self.stage[off + i + 1], (n - i - 1) * sizeof(int32_t))
                self._bank_push(ch, b, 0, s)
                self.bankq_total[ch] += 1
                if writes:
                    self.wq_count[ch] -= 1
                    self.drain[ch] -= 1
                else:
                    self.rq_count[ch] -= 1
                return True
        return False

    cdef int64_t _candidate(self, int ch, int b, int lst, int64_t t, int* out) noexcept nogil:
        """The next command bank `b` wants and the earliest cycle it is legal (cached lower bound
        when that is still in the future). out = [cmd, slot, prev slot, is_column]; cmd -1 = none."""
        cdef int bi = ch * self.n_banks + b
        cdef int qi = bi * 2 + lst
        cdef int s, prev, cmd, orow, hits
        cdef bint is_col = False
        cdef int64_t r
        out[0] = -1
        if self.q_count[qi] == 0 or self.bank_blocked[bi]:
            self.cand_ready[bi] = CYCLE_NEVER
            return CYCLE_NEVER
        if self.cand_ready[bi] > t:
            # ready times only grow while the bank's candidate is unchanged: still not legal
            return self.cand_ready[bi]
        self.n_evals += 1
        cmd = self.cand_cmd[bi]
        if cmd >= 0:
            # same candidate as last time: only its ready cycle needs a fresh look
            r = self._bank_ready(ch, cmd, b)
            self.cand_ready[bi] = r
            out[0] = cmd
            out[1] = self.cand_slot[bi]
            out[2] = self.cand_prev[bi]
            out[3] = self.cand_col[bi]
            return r
        orow = self.open_row[bi]
        s = self.q_head[qi]
        prev = -1
        if orow >= 0:
            hits = self.q_hits[qi]
            if self.scheduler == SCHED_FCFS or (self.scheduler == SCHED_ROUND_ROBIN and self.s_row[s] == orow):
                is_col = self.s_row[s] == orow
            elif hits > 0 and not (self.row_hit_cap > 0 and self.served[bi] >= self.row_hit_cap
                                   and self.q_count[qi] > hits):
                while self.s_row[s] != orow:
                    prev = s
                    s = self.s_next[s]
                is_col = True
            if is_col:
                if self.s_write[s]:
                    cmd = self.cmd_wra if (self.closed_page and hits <= 1) else self.cmd_wr
                else:
                    cmd = self.cmd_rda if (self.closed_page and hits <= 1) else self.cmd_rd
            else:
                cmd = self.cmd_pre
        else:
            cmd = self.cmd_act
        r = self._bank_ready(ch, cmd, b)
        self.cand_ready[bi] = r
        self.cand_cmd[bi] = cmd
        self.cand_slot[bi] = s
        self.cand_prev[bi] = prev
        self.cand_col[bi] = is_col
        out[0] = cmd
        out[1] = s
        out[2] = prev
        out[3] = is_col
        return r

    cdef void _tick(self, int ch, int64_t t) noexcept nogil:
        """One cycle of channel `ch`: refresh, read/write mode, then schedule among the banks whose
        cached ready cycle has come (the pending set and this cycle's wheel slot only)."""
        cdef int64_t w = CYCLE_NEVER
        cdef int64_t r, seq
        cdef int nb = self.n_banks
        cdef int MW = self.mask_words
        cdef int used = 0
        cdef int lst, b, k, qi, bus, start, slot
        cdef int c[4]
        cdef int best_col = -1, best_col_s = -1, best_col_prev = -1, best_col_cmd = -1
        cdef int best_row = -1, best_row_s = -1, best_row_cmd = -1
        cdef int64_t best_col_seq = 0, best_row_seq = 0, oldest = CYCLE_NEVER
        cdef int oldest_bank = -1, found = 0, mw, base = ch * nb
        cdef int pim_used = 0
        cdef bint pim_first = False
        cdef uint64_t bits, bit, anyp = 0
        cdef uint64_t rmask[8]
        cdef uint64_t keep[8]          # banks to look at again next cycle
        cdef uint64_t* pm = &self.pend[ch * MW]
        cdef uint64_t* bm = &self.busy_mask[ch * MW]
        cdef uint64_t* wl

        self.n_ticks += 1
        if self.ref_cmd >= 0:
            if t >= self.ref_quiet_until[ch]:
                used = self._refresh_step(ch, t, &w)
            else:
                w = self.ref_quiet_until[ch]

        # PIM program and normal traffic take turns when both have a command ready: the program
        # goes first unless it issued in the previous tick of the channel
        if self.pim_mode:
            pim_first = self.p_pos[ch] < self.p_end[ch] and not self.pim_yield[ch]
            if pim_first:
                pim_used = self._pim_step(ch, t, used, &w)
                used |= pim_used

        # read/write mode (queue mode without bank queues)
        if self.bank_queue > 0:
            lst = 0
        else:
            lst = self.drain[ch]
            if self._mode_flip_due(ch):
                lst = self.drain[ch] = 1 - lst
                for b in range(nb):
                    self._invalidate(ch, b)

        # the banks to look at: those invalidated or left ready since the last tick, and those
        # whose cached ready cycle is this cycle (the wheel slot); a slot entry whose bank has
        # since got a later cycle goes back on the wheel, one whose bank has none is dropped
        for mw in range(MW):
            rmask[mw] = pm[mw]
            pm[mw] = 0
        slot = <int>(t & 63)
        if (self.wheel_occ[ch] >> slot) & 1:
            self.wheel_occ[ch] &= ~((<uint64_t>1) << slot)
            wl = &self.wheel[(<int64_t>ch * 64 + slot) * MW]
            for mw in range(MW):
                bits = wl[mw]
                wl[mw] = 0
                while bits:
                    b = mw * 64 + __builtin_ctzll(bits)
                    bits &= bits - 1
                    r = self.cand_ready[base + b]
                    if r <= t:
                        rmask[mw] |= (<uint64_t>1) << (b & 63)
                    elif r < CYCLE_NEVER:
                        self._wheel_put(ch, b, r, t)
        for mw in range(MW):
            rmask[mw] &= bm[mw]
            keep[mw] = rmask[mw]

        if self.scheduler == SCHED_ROUND_ROBIN:
            # per-bank first-ready, banks in round-robin order, no priority of column over row
            # commands; with separate buses a second command may go on the other bus
            start = self.rr_next[ch]
            for k in range(nb):
                b = start + k
                if b >= nb:
                    b -= nb
                bit = (<uint64_t>1) << (b & 63)
                if not rmask[b >> 6] & bit:
                    continue
                r = self._candidate(ch, b, lst, t, c)
                if r > t or c[0] < 0:
                    keep[b >> 6] &= ~bit
                    if t < r < CYCLE_NEVER:
                        self._wheel_put(ch, b, r, t)
                    continue
                bus = self.cmd_bus[c[0]]
                if used & (1 << bus):
                    if found:
                        self.rr_next[ch] = b + 1 if b + 1 < nb else 0
                        break       # the second ready command was for the same bus: not issued
                    continue
                self._issue(ch, c[0], self.bank_node[b], b, c[1], c[2], t)
                used |= 1 << bus
                found += 1
                self.rr_next[ch] = b + 1 if b + 1 < nb else 0
                if found == 2 or not self.separate_bus:
                    break
        else:
            if self.scheduler == SCHED_FCFS:
                # only the bank holding the oldest request may issue
                for mw in range(MW):
                    keep[mw] = 0
                    rmask[mw] = 0
                for b in range(nb):
                    qi = (base + b) * 2 + lst
                    if self.q_count[qi] > 0 and self.s_seq[self.q_head[qi]] < oldest:
                        oldest = self.s_seq[self.q_head[qi]]
                        oldest_bank = b
                if oldest_bank >= 0:
                    rmask[oldest_bank >> 6] = (<uint64_t>1) << (oldest_bank & 63)
                    keep[oldest_bank >> 6] = rmask[oldest_bank >> 6]
            for mw in range(MW):
                bits = rmask[mw]
                while bits:
                    b = mw * 64 + __builtin_ctzll(bits)
                    bits &= bits - 1
                    r = self._candidate(ch, b, lst, t, c)
                    if c[0] < 0 or r > t:
                        keep[mw] &= ~((<uint64_t>1) << (b & 63))
                        if t < r < CYCLE_NEVER:
                            self._wheel_put(ch, b, r, t)
                        continue
                    if used & (1 << self.cmd_bus[c[0]]):
                        continue
                    seq = self.s_seq[c[1]]
                    if c[3]:
                        if best_col < 0 or seq < best_col_seq:
                            best_col, best_col_s, best_col_prev, best_col_cmd, best_col_seq = b, c[1], c[2], c[0], seq
                    elif best_row < 0 or seq < best_row_seq:
                        best_row, best_row_s, best_row_cmd, best_row_seq = b, c[1], c[0], seq
            if best_col >= 0:
                self._issue(ch, best_col_cmd, self.bank_node[best_col], best_col, best_col_s, best_col_prev, t)
                used |= 1 << self.cmd_bus[best_col_cmd]
            if best_row >= 0:
                # the column command may have changed what is legal: check again
                if not (used & (1 << self.cmd_bus[best_row_cmd])) and imax(
                        self._ready(ch, best_row_cmd, self.bank_node[best_row]),
                        self.bus_free[ch * 2 + self.cmd_bus[best_row_cmd]]) <= t:
                    self._issue(ch, best_row_cmd, self.bank_node[best_row], best_row, best_row_s, -1, t)
                    used |= 1 << self.cmd_bus[best_row_cmd]

        if self.pim_mode:
            if self.p_pos[ch] < self.p_end[ch] and not pim_first:
                pim_used = self._pim_step(ch, t, used, &w)
                used |= pim_used
            self.pim_yield[ch] = pim_used != 0

        # ready banks that did not issue, and banks whose state changed, are looked at next
        # cycle; so is the whole channel after an issue (queue counts, mode and oldest request
        # may have changed)
        for mw in range(MW):
            pm[mw] = (pm[mw] | keep[mw]) & bm[mw]
            anyp |= pm[mw]
        if anyp or used:
            w = t + 1
        elif self.wheel_occ[ch]:
            w = imin(w, self._wheel_next(ch, t))
        if self.bank_queue > 0 and (self.rq_count[ch] > 0 or self.wq_count[ch] > 0):
            if self._move_one(ch):
                w = t + 1
        self.wake[ch] = w

    # --- frontend and main loop ----------------------------------------------------------------
    cdef int _frontend(self, int64_t t) noexcept nogil:
        """Offer requests in trace order until one arrives later or finds its queue full.
        Returns 1 when blocked by a full queue."""
        cdef int ch, s, b, off
        cdef uint8_t wr
        cdef bint look
        while self.f_pos < self.f_n:
            if self.f_arrival[self.f_pos] > t:
                return 0
            ch = self.f_ch[self.f_pos]
            wr = self.f_write[self.f_pos]
            if wr:
                if self.wq_count[ch] >= self.write_queue:
                    return 1
            elif self.rq_count[ch] >= self.read_queue:
                return 1
            s = self.free_head[ch]
            self.free_head[ch] = self.s_next[s]
            b = self.f_bank[self.f_pos]
            self.s_row[s] = self.f_row[self.f_pos]
            self.s_col[s] = self.f_col[self.f_pos]
            self.s_bank[s] = b
            self.s_write[s] = wr
            self.s_class[s] = 0
            self.s_seq[s] = self.f_base + self.f_pos
            self.s_arrive[s] = t
            look = True
            if self.bank_queue > 0:
                off = ch * (self.read_queue + self.write_queue)
                if wr:
                    self.stage[off + self.read_queue + self.wq_count[ch]] = s
                else:
                    self.stage[off + self.rq_count[ch]] = s
            else:
                look = self._bank_push(ch, b, wr, s)
            if wr:
                self.wq_count[ch] += 1
            else:
                self.rq_count[ch] += 1
            self.outstanding[ch] += 1
            self.accepted += 1
            self.last_progress = t
            # the channel looks at its queues next cycle when the request changed a bank's
            # candidate, goes to a staging queue, or flips the read/write mode
            if not look and self.bank_queue == 0:
                look = self._mode_flip_due(ch)
            if look and self.wake[ch] > t + 1:
                self.wake[ch] = t + 1
            self.f_pos += 1
        return 0

    cdef int _run(self, bint final) noexcept nogil:
        cdef int64_t t = self.now
        cdef int64_t tn
        cdef int ch, blocked, busy
        self.input_done = final
        self.last_progress = imax(self.last_progress, t)
        while True:
            if not self.frontend_pending_at_now:
                for ch in range(self.n_channels):
                    if self.wake[ch] <= t:
                        self._tick(ch, t)
                if self.pim_error >= 0:
                    self.now = t
                    return -2
            self.frontend_pending_at_now = False
            blocked = self._frontend(t)
            if self.f_pos == self.f_n:
                if not final:
                    self.now = t
                    self.frontend_pending_at_now = True
                    return 0
                busy = 0
                for ch in range(self.n_channels):
                    busy += self.outstanding[ch] + (self.p_end[ch] - self.p_pos[ch])
                if busy == 0:
                    self.now = t
                    return 0
            tn = CYCLE_NEVER
            for ch in range(self.n_channels):
                if self.wake[ch] < tn:
                    tn = self.wake[ch]
            if self.f_pos < self.f_n and not blocked:
                tn = imin(tn, imax(self.f_arrival[self.f_pos], t + 1))
            if tn >= CYCLE_NEVER or tn - self.last_progress > self.stall_limit:
                self.now = t
                return -1
            t = tn

    # --- Python API ----------------------------------------------------------------------------
    def decode(self, address, is_write, arrival, size=None, int request_bytes=0):
        """Map a chunk of requests to the engine's accesses: each request becomes
        ceil(size / access_bytes) consecutive accesses (size 0 or no `size`: request_bytes, or one
        access when that is 0), each decoded to channel, bank, row and column.

        Returns the arrays to hand to feed_decoded() and the number of accesses. It reads only
        the address mapping and runs without the GIL, so it may run on another thread while
        run() simulates the previous chunk."""
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
        if sized:
            sz = np.ascontiguousarray(size, dtype=np.int64)
            if sz.shape[0] != n:
                raise ValueError("size must have the length of address")
            with nogil:
                for i in range(n):
                    total += (sz[i] + acc - 1) // acc if sz[i] > 0 else k0
        else:
            sz = np.zeros(0, dtype=np.int64)
            total = n * k0
        ch_a = np.empty(total, dtype=np.int32)
        bank_a = np.empty(total, dtype=np.int32)
        row_a = np.empty(total, dtype=np.int32)
        col_a = np.empty(total, dtype=np.int32)
        wr_a = np.empty(total, dtype=np.uint8)
        arr_a = np.empty(total, dtype=np.int64)
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
        for l in range(NL + 2):
            sh[l] = 0
        for f in range(nf - 1, -1, -1):
            fid[f] = self.field_id[f]
            src[f] = at
            dst[f] = sh[fid[f]]
            fmask[f] = ((<uint64_t>1) << self.field_bits[f]) - 1
            sh[fid[f]] += self.field_bits[f]
            at += self.field_bits[f]
        with nogil:
            for i in range(n):
                k = k0
                if sized and sz[i] > 0:
                    k = (sz[i] + acc - 1) // acc
                for j in range(k):
                    x = a[i] + <uint64_t>(j * acc)
                    for l in range(NL + 2):
                        comp[l] = 0
                    for f in range(nf):
                        comp[fid[f]] |= <int64_t>((x >> src[f]) & fmask[f]) << dst[f]
                    bank = 0
                    for l in range(1, NL):
                        bank = bank * self.level_count[l] + comp[l]
                    och[m] = <int32_t>comp[0]
                    obank[m] = <int32_t>bank
                    orow[m] = <int32_t>comp[NL]
                    ocol[m] = <int32_t>comp[NL + 1]
                    owr[m] = w[i]
                    oarr[m] = arr[i]
                    m += 1
        return (ch_a, bank_a, row_a, col_a, wr_a, arr_a), total

    def feed_decoded(self, decoded):
        """Queue a chunk of accesses from decode() for the frontend.

        The previous chunk must have been consumed (run() returned)."""
        if self.f_pos != self.f_n:
            raise RuntimeError("feed() called before the previous chunk was consumed")
        arrays, n = decoded
        self.f_base += self.f_n
        self._feed_arrays = arrays
        self.f_ch = <int32_t*> cnp.PyArray_DATA(arrays[0])
        self.f_bank = <int32_t*> cnp.PyArray_DATA(arrays[1])
        self.f_row = <int32_t*> cnp.PyArray_DATA(arrays[2])
        self.f_col = <int32_t*> cnp.PyArray_DATA(arrays[3])
        self.f_write = <uint8_t*> cnp.PyArray_DATA(arrays[4])
        self.f_arrival = <int64_t*> cnp.PyArray_DATA(arrays[5])
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
                          ((sel != 0) & ((sel_a < 0) | (sel_a >= max(self.n_sel, 1))),
                           f"the same-bank choice is outside 0..{self.n_sel - 1}")):
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"program entry {i} (command {cmd_a[i]}, node {node_a[i]}): {what}")
        order = np.argsort(ch_a, kind="stable")
        cmd_a, node_a, sel_a, row_a, occ_a = (a[order].copy() for a in (cmd_a, node_a, sel_a, row_a, occ_a))
        bounds = np.searchsorted(ch_a[order], np.arange(self.n_channels + 1))
        self._prog_arrays = (cmd_a, node_a, sel_a, row_a, occ_a, order, bounds)
        self.p_cmd = <int32_t*> cnp.PyArray_DATA(cmd_a)
        self.p_node = <int32_t*> cnp.PyArray_DATA(node_a)
        self.p_sel = <int32_t*> cnp.PyArray_DATA(sel_a)
        self.p_row = <int32_t*> cnp.PyArray_DATA(row_a)
        self.p_occ = <int64_t*> cnp.PyArray_DATA(occ_a)
        for ch in range(self.n_channels):
            self.p_pos[ch] = bounds[ch]
            self.p_end[ch] = bounds[ch + 1]
            if bounds[ch + 1] > bounds[ch] and self.wake[ch] > self.now:
                self.wake[ch] = self.now

    def run(self, bint final=False):
        """Simulate until the fed chunk is accepted (final=False) or every access completed."""
        cdef int rc
        with nogil:
            rc = self._run(final)
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
        return max(self._ready(ch, cmd, node), self.bus_free[ch * 2 + self.cmd_bus[cmd]])

    def probe_issue(self, int ch, int cmd, int node, int64_t t, int row=0):
        """Record `cmd` at `node` at cycle `t` in the timing tables and bank states, bypassing the
        queues (the caller chooses a legal order). Returns nothing; see probe_ready."""
        cdef int kind
        cdef int b
        if not (0 <= ch < self.n_channels and 0 <= cmd < self.n_cmd and 0 <= node < self.n_nodes):
            raise ValueError("channel, command or node out of range")
        kind = self.cmd_kind[cmd]
        self._update_timing(ch, cmd, node, t)
        self.bus_free[ch * 2 + self.cmd_bus[cmd]] = t + self.cmd_bus_cycles[cmd]
        self.cmd_count[ch * self.n_cmd + cmd] += 1
        if self.node_level[node] == self.bank_level:
            b = node - self.level_offset[self.bank_level]
            if kind == KIND_ACTIVATE:
                self._set_open(ch, b, row, t)
            elif kind in (KIND_PRECHARGE, KIND_READ_PRECHARGE, KIND_WRITE_PRECHARGE):
                self._set_open(ch, b, -1, t)
        elif kind == KIND_PRECHARGE:
            for b in range(self.node_first_bank[node], self.node_first_bank[node] + self.node_n_banks[node]):
                if self.open_row[ch * self.n_banks + b] >= 0:
                    self._set_open(ch, b, -1, t)
