# Included by _engine.pyx: bank state, request queues and scheduling. Candidates per bank, the
# wheel of ready cycles, issuing the requests' commands, the per-channel tick, the frontend and
# the main loop.


cdef inline void _invalidate(Engine self, int ch, int b) noexcept nogil:
    """The bank's state or queue changed: its candidate must be chosen again (next tick)."""
    cdef int bi = ch * self.n_banks + b
    self.cand_ready[bi] = 0
    self.cand_cmd[bi] = -1
    self.pend[ch * self.mask_words + (b >> 6)] |= (<uint64_t>1) << (b & 63)


cdef inline void _wheel_put(Engine self, int ch, int b, int64_t r, int64_t t, int MW) noexcept nogil:
    """Look at bank `b` again at cycle r > t. The wheel holds the next 63 cycles; a later
    cycle is filed in the last slot and put back when that slot comes. MW = self.mask_words."""
    cdef int slot
    if r > t + 63:
        r = t + 63
    slot = <int>(r & 63)
    self.wheel[(ch * 64 + slot) * MW + (b >> 6)] |= (<uint64_t>1) << (b & 63)
    self.wheel_occ[ch] |= (<uint64_t>1) << slot


cdef inline int64_t _wheel_next(Engine self, int ch, int64_t t) noexcept nogil:
    """The first cycle after t with a non-empty wheel slot (the wheel must not be empty)."""
    cdef uint64_t occ = self.wheel_occ[ch]
    cdef int k = <int>((t + 1) & 63)
    if k:
        occ = (occ >> k) | (occ << (64 - k))
    return t + 1 + __builtin_ctzll(occ)


cdef void _set_open(Engine self, int ch, int b, int row, int64_t t) noexcept nogil:
    cdef int bi = ch * self.n_banks + b
    cdef int old = self.open_row[bi]
    cdef int pn = ch * self.n_pw_nodes + self.bank_pw[b]
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
    _invalidate(self, ch, b)
    _count_hits(self, ch, b)


cdef void _count_hits(Engine self, int ch, int b) noexcept nogil:
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


cdef bint _bank_push(Engine self, int ch, int b, int lst, int s) noexcept nogil:
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
        _invalidate(self, ch, b)
        return True
    return False


cdef int _issue(Engine self, int ch, int cmd, int node, int b, int s, int prev, int64_t t) noexcept nogil:
    """Issue `cmd` at `node` (bank `b`, on behalf of slot `s` whose list predecessor is `prev`)."""
    cdef int kind = self.cmd_kind[cmd]
    cdef int bi, qi, i, nb, first, lst, row = -1, col = -1, k
    _update_timing(self, ch, cmd, node, t)
    self.bus_free[ch * 2 + self.cmd_bus[cmd]] = t + self.cmd_bus_cycles[cmd]
    self.cmd_count[ch * self.n_cmd + cmd] += 1
    if kind == KIND_ACTIVATE:
        row = self.s_row[s]
        if self.s_class[s] == 0:
            self.s_class[s] = 1
        if self.leave_at_activate and self.bank_active[ch * self.n_banks + b] < 0:
            # Ramulator: the request whose row opens leaves its queue for the bank's active slot
            self.bank_active[ch * self.n_banks + b] = s
            self.s_released[s] = 1
            if self.s_write[s]:
                self.wq_count[ch] -= 1
            else:
                self.rq_count[ch] -= 1
        _set_open(self, ch, b, row, t)
    elif kind == KIND_PRECHARGE:
        if self.node_level[node] == self.bank_level:
            if s >= 0 and self.s_class[s] == 0:
                self.s_class[s] = 2
            _set_open(self, ch, b, -1, t)
        else:
            first = self.node_first_bank[node]
            nb = self.node_n_banks[node]
            for i in range(first, first + nb):
                if self.open_row[ch * self.n_banks + i] >= 0:
                    _set_open(self, ch, i, -1, t)
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
        _invalidate(self, ch, b)
        if self.q_count[bi * 2] == 0 and self.q_count[bi * 2 + 1] == 0:
            self.busy_mask[ch * self.mask_words + (b >> 6)] &= ~((<uint64_t>1) << (b & 63))
            self.cand_ready[bi] = CYCLE_NEVER
            self.cand_cmd[bi] = -1
        k = <int>self.s_write[s]
        _count_completion(self, ch, k, self.s_class[s], self.s_arrive[s], t)
        if self.track:
            _track_issue(self, self.s_req[s], t + (self.write_latency if k else self.read_latency), k)
        if self.bank_queue > 0:
            self.bankq_total[ch] -= 1
            self.stage_scan[ch * 2] = 0       # a bank queue has room again: staged entries may move
            self.stage_scan[ch * 2 + 1] = 0
        elif self.s_released[s]:
            self.s_released[s] = 0          # it left its queue when its row opened
            self.bank_active[bi] = -1
        elif k:
            self.wq_count[ch] -= 1
        else:
            self.rq_count[ch] -= 1
        self.outstanding[ch] -= 1
        self.last_progress = t
        self.s_next[s] = self.free_head[ch]
        self.free_head[ch] = s
        if kind == KIND_READ_PRECHARGE or kind == KIND_WRITE_PRECHARGE:
            _set_open(self, ch, b, -1, t)
    if self.logging:
        _log(self, ch, cmd, node, row, col, t)
    return 0


cdef inline bint _mode_flip_due(Engine self, int ch) noexcept nogil:
    """Queue mode without bank queues: whether the channel's read/write mode flips at its
    next tick (drain writes when the write queue reaches the high watermark or no read waits;
    back to reads when it is empty, or at the low watermark with reads waiting)."""
    cdef int wq = self.wq_count[ch]
    if self.drain[ch] == 0:
        return wq > 0 and (wq >= self.wq_high or self.rq_count[ch] == 0)
    return wq == 0 or (wq <= self.wq_low and self.rq_count[ch] > 0)


cdef bint _move_one(Engine self, int ch) noexcept nogil:
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
    # the entries before stage_scan found their bank queues full, and none has been served since
    for i in range(self.stage_scan[ch * 2 + writes], n):
        s = self.stage[off + i]
        b = self.s_bank[s]
        if self.q_count[(ch * self.n_banks + b) * 2] < self.bank_queue:
            memmove(&self.stage[off + i], &self.stage[off + i + 1], (n - i - 1) * sizeof(int32_t))
            self.stage_scan[ch * 2 + writes] = i
            _bank_push(self, ch, b, 0, s)
            self.bankq_total[ch] += 1
            if writes:
                self.wq_count[ch] -= 1
                self.drain[ch] -= 1
            else:
                self.rq_count[ch] -= 1
            return True
    self.stage_scan[ch * 2 + writes] = n
    return False


cdef inline int64_t _candidate(Engine self, int ch, int b, int lst, int64_t t, int NL) noexcept nogil:
    """The next command bank `b` wants and the earliest cycle it is legal (cached lower bound
    when that is still in the future). When that cycle is t or earlier, the command is in
    cand_cmd, cand_slot, cand_prev (the slot's list predecessor) and cand_col (is a column
    command) of the bank."""
    cdef int bi = ch * self.n_banks + b
    cdef int qi = bi * 2 + lst
    cdef int s, prev, cmd, orow, hits
    cdef bint is_col = False
    cdef int64_t r
    if self.leave_at_activate and self.bank_active[bi] >= 0 and (
            not self.bank_blocked[bi] or (self.bank_blocked[bi] == BLOCK_REFRESH
                                          and self.open_row[bi] == self.s_row[self.bank_active[bi]])):
        # an active request is served in either mode, and before a refresh closes its row
        return _active_candidate(self, ch, b, t, NL)
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
        r = _bank_ready_n(self, ch, cmd, b, NL)
        self.cand_ready[bi] = r
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
    r = _bank_ready_n(self, ch, cmd, b, NL)
    self.cand_ready[bi] = r
    self.cand_cmd[bi] = cmd
    self.cand_slot[bi] = s
    self.cand_prev[bi] = prev
    self.cand_col[bi] = is_col
    return r


cdef int64_t _active_candidate(Engine self, int ch, int b, int64_t t, int NL) noexcept nogil:
    """_candidate for a bank whose request left its queue at activate (leave_at_activate): that
    request's next command, in either read/write mode, before any other request of the bank
    (Ramulator serves its active buffer first and closes no row an active request waits for)."""
    cdef int bi = ch * self.n_banks + b
    cdef int a = self.bank_active[bi]
    cdef int s, prev = -1, cmd, orow, hits
    cdef bint is_col = False
    cdef int64_t r
    if self.cand_ready[bi] > t:
        return self.cand_ready[bi]
    self.n_evals += 1
    cmd = self.cand_cmd[bi]
    if cmd >= 0:
        r = _bank_ready_n(self, ch, cmd, b, NL)
        self.cand_ready[bi] = r
        return r
    orow = self.open_row[bi]
    if orow == self.s_row[a]:
        s = self.q_head[bi * 2 + self.s_write[a]]
        while s != a:
            prev = s
            s = self.s_next[s]
        hits = self.q_hits[bi * 2 + self.s_write[a]]
        is_col = True
        if self.s_write[a]:
            cmd = self.cmd_wra if (self.closed_page and hits <= 1) else self.cmd_wr
        else:
            cmd = self.cmd_rda if (self.closed_page and hits <= 1) else self.cmd_rd
    elif orow >= 0:
        cmd = self.cmd_pre          # its row was closed under it (a refresh) and another opened
    else:
        cmd = self.cmd_act
    r = _bank_ready_n(self, ch, cmd, b, NL)
    self.cand_ready[bi] = r
    self.cand_cmd[bi] = cmd
    self.cand_slot[bi] = a
    self.cand_prev[bi] = prev
    self.cand_col[bi] = is_col
    return r


cdef void _tick(Engine self, int ch, int64_t t) noexcept nogil:
    """One cycle of channel `ch` (_tick_in, specialised for the common organisations: the
    words of a bank mask and the levels above a bank become constants there)."""
    cdef int MW = self.mask_words
    cdef int NL = self.n_levels
    if MW == 1 and NL == 4:
        _tick_in(self, ch, t, 1, 4)
    elif MW == 1 and NL == 3:
        _tick_in(self, ch, t, 1, 3)
    elif MW == 1 and NL == 5:
        _tick_in(self, ch, t, 1, 5)
    else:
        _tick_in(self, ch, t, MW, NL)


cdef inline void _tick_in(Engine self, int ch, int64_t t, int MW, int NL) noexcept nogil:
    """One cycle of channel `ch`: refresh, read/write mode, then schedule among the banks whose
    cached ready cycle has come (the pending set and this cycle's wheel slot only). MW =
    self.mask_words, NL = self.n_levels."""
    cdef int64_t w = CYCLE_NEVER
    cdef int64_t r, seq
    cdef int nb = self.n_banks
    cdef int used = 0
    cdef int lst, b, k, qi, bus, start, slot, lo, cmd, s
    cdef bint stop
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
            used = _refresh_step(self, ch, t, &w)
        else:
            w = self.ref_quiet_until[ch]

    # PIM program and normal traffic take turns when both have a command ready: the program
    # goes first unless it issued in the previous tick of the channel
    if self.pim_mode:
        pim_first = self.p_pos[ch] < self.p_end[ch] and not self.pim_yield[ch]
        if pim_first:
            pim_used = _pim_step(self, ch, t, used, &w)
            used |= pim_used

    # read/write mode (queue mode without bank queues)
    if self.bank_queue > 0:
        lst = 0
    else:
        lst = self.drain[ch]
        if _mode_flip_due(self, ch):
            lst = self.drain[ch] = 1 - lst
            for b in range(nb):
                _invalidate(self, ch, b)

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
                    _wheel_put(self, ch, b, r, t, MW)
    for mw in range(MW):
        rmask[mw] &= bm[mw]
        keep[mw] = rmask[mw]

    if self.scheduler == SCHED_ROUND_ROBIN:
        # per-bank first-ready, banks in round-robin order, no priority of column over row
        # commands; with separate buses a second command may go on the other bus
        # the set banks from rr_next up, then those below it (bit by bit, not bank by bank)
        start = self.rr_next[ch]
        stop = False
        for k in range(2):
            for mw in range(MW):
                lo = mw * 64
                bits = rmask[mw]
                if k == 0:
                    if lo + 64 <= start:
                        continue
                    if start > lo:
                        bits &= ~(((<uint64_t>1) << (start - lo)) - 1)
                else:
                    if lo >= start:
                        break
                    if start < lo + 64:
                        bits &= ((<uint64_t>1) << (start - lo)) - 1
                while bits:
                    b = lo + __builtin_ctzll(bits)
                    bits &= bits - 1
                    bit = (<uint64_t>1) << (b & 63)
                    r = _candidate(self, ch, b, lst, t, NL)
                    if r > t:
                        keep[mw] &= ~bit
                        if r < CYCLE_NEVER:
                            _wheel_put(self, ch, b, r, t, MW)
                        continue
                    cmd = self.cand_cmd[base + b]
                    bus = self.cmd_bus[cmd]
                    if used & (1 << bus):
                        if found:
                            self.rr_next[ch] = b + 1 if b + 1 < nb else 0
                            stop = True     # the second ready command was for the same bus: not issued
                            break
                        continue
                    _issue(self, ch, cmd, self.bank_node[b], b, self.cand_slot[base + b], self.cand_prev[base + b], t)
                    used |= 1 << bus
                    found += 1
                    self.rr_next[ch] = b + 1 if b + 1 < nb else 0
                    if found == 2 or not self.separate_bus:
                        stop = True
                        break
                if stop:
                    break
            if stop:
                break
    else:
        if self.scheduler == SCHED_FCFS:
            # only the bank holding the oldest request may issue
            for mw in range(MW):
                keep[mw] = 0
                rmask[mw] = 0
            if self.leave_at_activate:
                # requests that left their queue at activate go first, in either mode (Ramulator's
                # active buffer; a pending refresh waits for them)
                for b in range(nb):
                    if self.bank_active[base + b] >= 0 and self.s_seq[self.bank_active[base + b]] < oldest:
                        oldest = self.s_seq[self.bank_active[base + b]]
                        oldest_bank = b
            if oldest_bank < 0:
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
                r = _candidate(self, ch, b, lst, t, NL)
                if r > t:
                    keep[mw] &= ~((<uint64_t>1) << (b & 63))
                    if r < CYCLE_NEVER:
                        _wheel_put(self, ch, b, r, t, MW)
                    continue
                cmd = self.cand_cmd[base + b]
                if used & (1 << self.cmd_bus[cmd]):
                    continue
                s = self.cand_slot[base + b]
                seq = self.s_seq[s]
                if self.leave_at_activate and self.bank_active[base + b] == s:
                    seq -= (<int64_t>1) << 62   # Ramulator serves its active buffer first
                if self.cand_col[base + b]:
                    if best_col < 0 or seq < best_col_seq:
                        best_col, best_col_s, best_col_prev, best_col_cmd, best_col_seq = (
                            b, s, self.cand_prev[base + b], cmd, seq)
                elif best_row < 0 or seq < best_row_seq:
                    best_row, best_row_s, best_row_cmd, best_row_seq = b, s, cmd, seq
        if (self.scheduler == SCHED_FIRST_READY and best_col >= 0 and best_row >= 0 and best_row_seq < best_col_seq
                and self.cmd_bus[best_row_cmd] == self.cmd_bus[best_col_cmd]):
            best_col = -1           # first ready, then oldest: an older request's row command goes first
        if best_col >= 0:
            _issue(self, ch, best_col_cmd, self.bank_node[best_col], best_col, best_col_s, best_col_prev, t)
            used |= 1 << self.cmd_bus[best_col_cmd]
        if best_row >= 0:
            # the column command may have changed what is legal: check again (a row command
            # has bank scope: _bank_ready, bus included)
            if not (used & (1 << self.cmd_bus[best_row_cmd])) and _bank_ready_n(
                    self, ch, best_row_cmd, best_row, NL) <= t:
                _issue(self, ch, best_row_cmd, self.bank_node[best_row], best_row, best_row_s, -1, t)
                used |= 1 << self.cmd_bus[best_row_cmd]

    if self.pim_mode:
        if self.p_pos[ch] < self.p_end[ch] and not pim_first:
            pim_used = _pim_step(self, ch, t, used, &w)
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
        w = imin(w, _wheel_next(self, ch, t))
    if self.bank_queue > 0 and (self.rq_count[ch] > 0 or self.wq_count[ch] > 0):
        if _move_one(self, ch):
            w = t + 1
    self.wake[ch] = w


cdef int _frontend(Engine self, int64_t t) noexcept nogil:
    """Offer requests in trace order until one arrives later, finds its queue full or, with an
    offer rate, exceeds the requests this cycle may offer. Returns 1 when blocked by a full queue."""
    cdef int ch, s, b, off, rec
    cdef uint8_t wr
    cdef bint look, first
    while self.f_pos < self.f_n:
        if self.f_arrival[self.f_pos] > t:
            return 0
        first = self.f_first == NULL or self.f_first[self.f_pos]
        if self.offer_rate > 0 and first:
            if self.offer_cycle != t:
                self.offer_cycle = t
                self.offer_count = 0
            if self.offer_count >= self.offer_rate:
                return 0        # the rest waits for the next cycle
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
            look = _bank_push(self, ch, b, wr, s)
        if wr:
            self.wq_count[ch] += 1
        else:
            self.rq_count[ch] += 1
        self.outstanding[ch] += 1
        self.accepted += 1
        self.last_progress = t
        if self.offer_rate > 0 and first:
            self.offer_count += 1
        if self.track:
            rec = self.f_req[self.f_pos]
            self.s_req[s] = rec
            if self.r_accept[rec] < 0:
                self.r_accept[rec] = t
                self.f_waiting -= 1
        # the channel looks at its queues next cycle when the request changed a bank's
        # candidate, goes to a staging queue, or flips the read/write mode
        if not look and self.bank_queue == 0:
            look = _mode_flip_due(self, ch)
        if look and self.wake[ch] > t + 1:
            self.wake[ch] = t + 1
            self.front_woke = True
        self.f_pos += 1
    return 0


cdef int _run(Engine self, bint final) noexcept nogil:
    cdef int64_t t = self.now
    cdef int64_t tn
    cdef int ch, blocked, busy
    cdef uint32_t polls = 0
    cdef int nch = self.n_channels
    cdef int64_t* wake = self.wake
    self.input_done = final
    self.last_progress = imax(self.last_progress, t)
    while True:
        polls += 1
        if (polls & 0xFFFF) == 0 and _signalled():
            # Ctrl-C, SIGTERM (or a test's alarm) stops even a run that lasts long in here
            self.now = t
            return -3
        # tick the channels due now; the next cycle anything happens is the earliest wake
        # after that (a tick sets only its own channel's wake, the frontend only lowers one
        # to t + 1)
        tn = CYCLE_NEVER
        if not self.frontend_pending_at_now:
            for ch in range(nch):
                if wake[ch] <= t:
                    _tick(self, ch, t)
                if wake[ch] < tn:
                    tn = wake[ch]
            if self.pim_error >= 0:
                self.now = t
                return -2
        else:
            for ch in range(nch):
                if wake[ch] < tn:
                    tn = wake[ch]
        self.frontend_pending_at_now = False
        self.front_woke = False
        blocked = _frontend(self, t)
        if self.front_woke:
            tn = imin(tn, t + 1)
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
        if self.f_pos < self.f_n and not blocked:
            tn = imin(tn, imax(self.f_arrival[self.f_pos], t + 1))
        if tn < CYCLE_NEVER and tn - self.last_progress > self.stall_limit and _idle(self):
            # nothing queued or programmed: the frontend waits for its next arrival (an idle
            # gap in the trace), which is not a stall
            self.last_progress = tn
        if tn >= CYCLE_NEVER or tn - self.last_progress > self.stall_limit:
            self.now = t
            return -1
        t = tn


cdef bint _signalled() noexcept nogil:
    """Run Python's signal handlers (with the GIL, briefly); whether one raised."""
    with gil:
        return _check_signals() != 0


cdef bint _idle(Engine self) noexcept nogil:
    """No access waits in any controller and no PIM program entry is left to issue."""
    cdef int ch
    for ch in range(self.n_channels):
        if self.outstanding[ch] or self.p_end[ch] > self.p_pos[ch]:
            return False
    return True
