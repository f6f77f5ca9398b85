# Included by _engine.pyx: bank state, request queues and issuing. The wheel of ready cycles,
# open rows, the banks' request lists, issuing the requests' commands, the frontend and the main
# loop (the per-channel tick and its candidates are in _engine_tick.pxi).


cdef inline void _invalidate(Engine self, int ch, int b) noexcept nogil:
    """The bank's state or queue changed: its candidate must be chosen again (next tick)."""
    cdef int bi = ch * self.n_banks + b
    self.bk[bi].cand_ready = 0
    self.bk[bi].cand_cmd = -1
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
    cdef int old = self.bk[bi].open_row
    cdef int pn = ch * self.n_pw_nodes + self.bank_pw[b]
    if old < 0 and row >= 0:
        if self.pw_open[pn] == 0:
            self.pw_since[pn] = t
        self.pw_open[pn] += 1
    elif old >= 0 and row < 0:
        self.pw_open[pn] -= 1
        if self.pw_open[pn] == 0:
            self.active_cycles[ch] += t - self.pw_since[pn]
    self.bk[bi].open_row = row
    self.bk[bi].served = 0
    _invalidate(self, ch, b)
    _count_hits(self, ch, b)


cdef void _count_hits(Engine self, int ch, int b) noexcept nogil:
    cdef int lst, s, n
    cdef int bi = ch * self.n_banks + b
    cdef int row = self.bk[bi].open_row
    for lst in range(2):
        n = 0
        if row >= 0:
            s = self.bk[bi].q_head[lst]
            while s >= 0:
                if self.sl[s].row == row:
                    n += 1
                s = self.sl[s].next
        self.bk[bi].q_hits[lst] = n


cdef bint _bank_push(Engine self, int ch, int b, int lst, int s) noexcept nogil:
    """Append slot `s` to the bank's list `lst`. The bank's cached candidate stands unless the
    new request can change it: returns whether it was dropped (the bank needs a look)."""
    cdef int bi = ch * self.n_banks + b
    cdef bint hit = self.sl[s].row == self.bk[bi].open_row
    self.sl[s].next = -1
    if self.bk[bi].q_tail[lst] >= 0:
        self.sl[self.bk[bi].q_tail[lst]].next = s
    else:
        self.bk[bi].q_head[lst] = s
    self.bk[bi].q_tail[lst] = s
    self.bk[bi].q_count[lst] += 1
    self.busy_mask[ch * self.mask_words + (b >> 6)] |= (<uint64_t>1) << (b & 63)
    if hit:
        self.bk[bi].q_hits[lst] += 1
    if lst != (0 if self.bank_queue > 0 else self.drain[ch]):
        return False        # the other mode's list: looked at when the mode changes
    # appended at the tail, a request changes neither the head (ACT) nor the first row hit
    # (column command); it can turn a precharge into a row hit, and it changes the counts
    # behind the closed-page and row-hit-cap choices
    if (self.bk[bi].cand_cmd < 0 or self.closed_page or self.row_hit_cap > 0
            or (hit and not self.bk[bi].cand_col)):
        _invalidate(self, ch, b)
        return True
    return False


cdef int _issue(Engine self, int ch, int cmd, int node, int b, int s, int prev, int64_t t) noexcept nogil:
    """Issue `cmd` at `node` (bank `b`, on behalf of slot `s` whose list predecessor is `prev`)."""
    cdef int kind = self.cmd_kind[cmd]
    cdef int bi, i, nb, first, lst, row = -1, col = -1, k
    _update_timing(self, ch, cmd, node, t)
    self.bus_free[ch * 2 + self.cmd_bus[cmd]] = t + self.cmd_bus_cycles[cmd]
    self.cmd_count[ch * self.n_cmd + cmd] += 1
    if kind == KIND_ACTIVATE:
        row = self.sl[s].row
        if self.sl[s].cls == 0:
            self.sl[s].cls = 1
        if self.leave_at_activate and self.bank_active[ch * self.n_banks + b] < 0:
            # Ramulator: the request whose row opens leaves its queue for the bank's active slot
            self.bank_active[ch * self.n_banks + b] = s
            self.sl[s].released = 1
            if self.sl[s].write:
                self.wq_count[ch] -= 1
            else:
                self.rq_count[ch] -= 1
        _set_open(self, ch, b, row, t)
    elif kind == KIND_PRECHARGE:
        if self.node_level[node] == self.bank_level:
            if s >= 0 and self.sl[s].cls == 0:
                self.sl[s].cls = 2
            _set_open(self, ch, b, -1, t)
        else:
            first = self.node_first_bank[node]
            nb = self.node_n_banks[node]
            for i in range(first, first + nb):
                if self.bk[ch * self.n_banks + i].open_row >= 0:
                    _set_open(self, ch, i, -1, t)
    elif kind == KIND_REFRESH:
        pass
    else:
        bi = ch * self.n_banks + b
        lst = 0 if self.bank_queue > 0 else <int>self.sl[s].write
        row = self.sl[s].row
        col = self.sl[s].col
        # unlink s from its bank list
        if prev >= 0:
            self.sl[prev].next = self.sl[s].next
        else:
            self.bk[bi].q_head[lst] = self.sl[s].next
        if self.bk[bi].q_tail[lst] == s:
            self.bk[bi].q_tail[lst] = prev
        self.bk[bi].q_count[lst] -= 1
        self.bk[bi].q_hits[lst] -= 1
        self.bk[bi].served += 1
        _invalidate(self, ch, b)
        if self.bk[bi].q_count[0] == 0 and self.bk[bi].q_count[1] == 0:
            self.busy_mask[ch * self.mask_words + (b >> 6)] &= ~((<uint64_t>1) << (b & 63))
            self.bk[bi].cand_ready = CYCLE_NEVER
            self.bk[bi].cand_cmd = -1
        k = <int>self.sl[s].write
        _count_completion(self, ch, k, self.sl[s].cls, self.sl[s].arrive, t)
        if self.track:
            _track_issue(self, self.sl[s].req, t + (self.write_latency if k else self.read_latency), k)
        if self.bank_queue > 0:
            self.bankq_total[ch] -= 1
            self.stage_scan[ch * 2] = 0       # a bank queue has room again: staged entries may move
            self.stage_scan[ch * 2 + 1] = 0
        elif self.sl[s].released:
            self.sl[s].released = 0          # it left its queue when its row opened
            self.bank_active[bi] = -1
        elif k:
            self.wq_count[ch] -= 1
        else:
            self.rq_count[ch] -= 1
        self.outstanding[ch] -= 1
        self.last_progress = t
        self.sl[s].next = self.free_head[ch]
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
        b = self.sl[s].bank
        if self.bk[ch * self.n_banks + b].q_count[0] < self.bank_queue:
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
        self.free_head[ch] = self.sl[s].next
        b = self.f_bank[self.f_pos]
        self.sl[s].row = self.f_row[self.f_pos]
        self.sl[s].col = self.f_col[self.f_pos]
        self.sl[s].bank = b
        self.sl[s].write = wr
        self.sl[s].cls = 0
        self.sl[s].seq = self.f_base + self.f_pos
        self.sl[s].arrive = t
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
            self.sl[s].req = rec
            if self.r_accept[rec] < 0:
                self.r_accept[rec] = t
                self.f_waiting -= 1
        # the channel looks at its queues next cycle when the request changed a bank's
        # candidate, goes to a staging queue, or flips the read/write mode
        if not look and self.bank_queue == 0:
            look = _mode_flip_due(self, ch)
        if look and self.wake[ch] > t + 1:
            if self.cw_on:
                # _run moves it on the channel wheel (here the slot's bits would be computed on
                # every call: gcc hoists them out of the loop)
                self.cw_old[ch] = self.wake[ch]
                self.cw_woken |= (<uint64_t>1) << ch
            self.wake[ch] = t + 1
            self.front_woke = True
        self.f_pos += 1
    return 0


cdef inline void _cw_file(Engine self, int ch, int64_t w, int64_t t, int span) noexcept nogil:
    """File channel `ch` (in no slot and not in the far set) by its wake w, seen from cycle t: in
    w's slot when t < w <= t + span (span <= 64), else, unless it has none, in the far set."""
    if <uint64_t>(w - t - 1) < <uint64_t>span:
        self.cw_slot[w & 63] |= (<uint64_t>1) << ch
        self.cw_occ |= (<uint64_t>1) << (w & 63)
    elif w < CYCLE_NEVER:
        self.cw_far |= (<uint64_t>1) << ch


cdef inline void _cw_woken(Engine self, int64_t t) noexcept nogil:
    """The channels whose wake the frontend lowered to t + 1 (cw_woken; cw_old: the wakes that
    filed them) move to the next cycle's slot. A slot emptied here keeps its occupancy bit
    until _cw_next finds it empty."""
    cdef uint64_t bits = self.cw_woken
    cdef uint64_t bit
    cdef int ch
    self.cw_woken = 0
    while bits:
        ch = __builtin_ctzll(bits)
        bit = bits & (~bits + 1)
        bits &= bits - 1
        if self.cw_far & bit:
            self.cw_far &= ~bit
        else:
            self.cw_slot[self.cw_old[ch] & 63] &= ~bit
        self.cw_slot[(t + 1) & 63] |= bit
    self.cw_occ |= (<uint64_t>1) << ((t + 1) & 63)


cdef inline int64_t _cw_next(Engine self, int64_t t) noexcept nogil:
    """The earliest wake of any channel: the first non-empty slot after t, or a far one."""
    cdef int64_t tn = CYCLE_NEVER
    cdef uint64_t o, bits
    cdef int k = <int>((t + 1) & 63)
    cdef int ch, d
    while self.cw_occ:
        o = self.cw_occ
        if k:
            o = (o >> k) | (o << (64 - k))
        d = __builtin_ctzll(o)
        if self.cw_slot[(k + d) & 63]:
            tn = t + 1 + d
            break
        self.cw_occ &= ~((<uint64_t>1) << ((k + d) & 63))     # emptied by the frontend
    bits = self.cw_far
    while bits:
        ch = __builtin_ctzll(bits)
        bits &= bits - 1
        if self.wake[ch] < tn:
            tn = self.wake[ch]
    return tn


cdef uint64_t _cw_far_due(Engine self, int64_t t) noexcept nogil:
    """The channels of the far set due at cycle t (wake <= t), taken out of it."""
    cdef uint64_t bits = self.cw_far
    cdef uint64_t bit, due = 0
    while bits:
        bit = bits & (~bits + 1)
        if self.wake[__builtin_ctzll(bits)] <= t:
            due |= bit
        bits &= bits - 1
    self.cw_far &= ~due
    return due


cdef int _run(Engine self, bint final) noexcept nogil:
    """Simulate until the fed requests are accepted (final: until every access completed)."""
    if self.cw_on:
        return _run_in(self, final, True)
    return _run_in(self, final, False)


cdef inline int _run_in(Engine self, bint final, bint cw) noexcept nogil:
    """_run, with the channel wheel (cw, a constant: one copy each) or a pass over the channels."""
    cdef int64_t t = self.now
    cdef int64_t tn
    cdef int ch, blocked, busy
    cdef int block_ch = -1          # the channel whose full queue blocked the frontend's head
    cdef bint block_wr = False
    cdef uint32_t polls = 0
    cdef int nch = self.n_channels
    cdef int64_t* wake = self.wake
    cdef uint64_t due
    cdef int k
    self.input_done = final
    self.last_progress = imax(self.last_progress, t)
    if cw:
        # the channel wheel filed afresh: wakes may have changed between runs (a PIM program
        # fed, the host API's own loop, which does not keep it). Those due by t and
        # those due at t + 64 go to the far set: slot t & 63 is taken at t (or, when this run
        # resumes the frontend's visit at t, left alone), so it must hold no later cycle
        memset(self.cw_slot, 0, sizeof(self.cw_slot))
        self.cw_occ = 0
        self.cw_far = 0
        self.cw_woken = 0
        for ch in range(nch):
            _cw_file(self, ch, wake[ch], t, 63)
    while True:
        polls += 1
        if (polls & 0xFFFF) == 0 and _signalled():
            # Ctrl-C, SIGTERM (or a test's alarm) stops even a run that lasts long in here
            self.now = t
            return -3
        # tick the channels due now, in channel order; the next cycle anything happens is the
        # earliest wake after that (a tick sets only its own channel's wake, the frontend only
        # lowers one to t + 1). With 16 to 64 channels the channel wheel gives both, so that
        # a cycle costs the channels due in it, not a pass over all of them
        tn = CYCLE_NEVER
        if not self.frontend_pending_at_now:
            if cw:
                # the tick files its channel again (_tick_in)
                k = <int>(t & 63)
                due = self.cw_slot[k]
                self.cw_slot[k] = 0
                self.cw_occ &= ~((<uint64_t>1) << k)
                if self.cw_far:
                    due |= _cw_far_due(self, t)
                while due:
                    ch = __builtin_ctzll(due)
                    due &= due - 1
                    _tick(self, ch, t)
            else:
                for ch in range(nch):
                    if wake[ch] <= t:
                        _tick(self, ch, t)
                    if wake[ch] < tn:
                        tn = wake[ch]
            if self.pim_error >= 0:
                self.now = t
                return -2
        elif not cw:
            for ch in range(nch):
                if wake[ch] < tn:
                    tn = wake[ch]
        self.frontend_pending_at_now = False
        self.front_woke = False
        if block_ch >= 0 and (self.wq_count[block_ch] >= self.write_queue if block_wr
                              else self.rq_count[block_ch] >= self.read_queue):
            # the head that found its queue full still does (without an offer rate, which counts
            # offers per cycle, that is all the frontend would find: it changes nothing then)
            blocked = 1
        else:
            blocked = _frontend(self, t)
            block_ch = -1
            if blocked and self.offer_rate == 0:
                block_ch = self.f_ch[self.f_pos]
                block_wr = self.f_write[self.f_pos] != 0
        if cw:
            if self.cw_woken:
                _cw_woken(self, t)
            tn = _cw_next(self, t)
        elif self.front_woke:
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
