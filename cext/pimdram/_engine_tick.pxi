# Included by _engine.pyx: the per-channel tick. Each bank's candidate command and its earliest
# cycle, and the schedulers choosing among the banks whose cycle has come.


cdef inline int64_t _candidate(Engine self, int ch, int b, int lst, int64_t t, int NL,
                               bint fresh, bint PLAIN) noexcept nogil:
    """The next command bank `b` wants and the earliest cycle it is legal (cached lower bound
    when that is still in the future). When that cycle is t or earlier, the command is in
    cand_cmd, cand_slot, cand_prev (the slot's list predecessor) and cand_col (is a column
    command) of the bank. `fresh`: the cached cycle, if a candidate is cached, is exact (no
    command issued on the channel since it was computed). PLAIN (a constant): the engine is
    eager (FR-FCFS, no active buffer)."""
    cdef int bi = ch * self.n_banks + b
    cdef int s, prev, cmd, orow, hits
    cdef bint is_col = False
    cdef int64_t r
    if not PLAIN and self.leave_at_activate and self.bank_active[bi] >= 0 and (
            not self.bank_blocked[bi] or (self.bank_blocked[bi] == BLOCK_REFRESH
                                          and self.bk[bi].open_row == self.sl[self.bank_active[bi]].row)):
        # an active request is served in either mode, and before a refresh closes its row
        return _active_candidate(self, ch, b, t, NL)
    if self.bk[bi].q_count[lst] == 0 or self.bank_blocked[bi]:
        self.bk[bi].cand_ready = CYCLE_NEVER
        return CYCLE_NEVER
    if self.bk[bi].cand_ready > t:
        # ready times only grow while the bank's candidate is unchanged: still not legal
        return self.bk[bi].cand_ready
    cmd = self.bk[bi].cand_cmd
    if cmd >= 0 and fresh:
        return self.bk[bi].cand_ready
    self.n_evals += 1
    if cmd >= 0:
        # same candidate as last time: only its ready cycle needs a fresh look
        r = _bank_ready_n(self, ch, cmd, b, NL)
        self.bk[bi].cand_ready = r
        return r
    orow = self.bk[bi].open_row
    s = self.bk[bi].q_head[lst]
    prev = -1
    if orow >= 0:
        hits = self.bk[bi].q_hits[lst]
        if not PLAIN and (self.scheduler == SCHED_FCFS or (self.scheduler == SCHED_ROUND_ROBIN
                                                           and self.sl[s].row == orow)):
            is_col = self.sl[s].row == orow
        elif hits > 0 and not (self.row_hit_cap > 0 and self.bk[bi].served >= self.row_hit_cap
                               and self.bk[bi].q_count[lst] > hits):
            while self.sl[s].row != orow:
                prev = s
                s = self.sl[s].next
            is_col = True
        if is_col:
            if self.sl[s].write:
                cmd = self.cmd_wra if (self.closed_page and hits <= 1) else self.cmd_wr
            else:
                cmd = self.cmd_rda if (self.closed_page and hits <= 1) else self.cmd_rd
        else:
            cmd = self.cmd_pre
    else:
        cmd = self.cmd_act
    r = _bank_ready_n(self, ch, cmd, b, NL)
    self.bk[bi].cand_ready = r
    self.bk[bi].cand_cmd = cmd
    self.bk[bi].cand_slot = s
    self.bk[bi].cand_prev = prev
    self.bk[bi].cand_col = is_col
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
    if self.bk[bi].cand_ready > t:
        return self.bk[bi].cand_ready
    self.n_evals += 1
    cmd = self.bk[bi].cand_cmd
    if cmd >= 0:
        r = _bank_ready_n(self, ch, cmd, b, NL)
        self.bk[bi].cand_ready = r
        return r
    orow = self.bk[bi].open_row
    if orow == self.sl[a].row:
        s = self.bk[bi].q_head[self.sl[a].write]
        while s != a:
            prev = s
            s = self.sl[s].next
        hits = self.bk[bi].q_hits[self.sl[a].write]
        is_col = True
        if self.sl[a].write:
            cmd = self.cmd_wra if (self.closed_page and hits <= 1) else self.cmd_wr
        else:
            cmd = self.cmd_rda if (self.closed_page and hits <= 1) else self.cmd_rd
    elif orow >= 0:
        cmd = self.cmd_pre          # its row was closed under it (a refresh) and another opened
    else:
        cmd = self.cmd_act
    r = _bank_ready_n(self, ch, cmd, b, NL)
    self.bk[bi].cand_ready = r
    self.bk[bi].cand_cmd = cmd
    self.bk[bi].cand_slot = a
    self.bk[bi].cand_prev = prev
    self.bk[bi].cand_col = is_col
    return r


cdef inline void _tick(Engine self, int ch, int64_t t) noexcept nogil:
    """One cycle of channel `ch` (_tick_in, specialised for the common organisations: the
    words of a bank mask and the levels above a bank become constants there, and for eager
    engines, whose tick then has no code for the other schedulers, PIM or the active buffer).
    The copy is chosen once, when the engine is built: a call through a pointer that never
    changes instead of testing the organisation on every tick."""
    self.tick_fn(self, ch, t)


cdef tick_fn_t _tick_for(Engine self) noexcept:
    """The specialised tick for this engine's organisation, scheduler and channel wheel."""
    cdef int MW = self.mask_words
    cdef int NL = self.n_levels
    if self.eager and self.cw_on:
        if MW == 1 and NL == 4:
            return _tick_eager_1_4_cw
        if MW == 1 and NL == 3:
            return _tick_eager_1_3_cw
        if MW == 1 and NL == 5:
            return _tick_eager_1_5_cw
        return _tick_eager_any_cw
    if self.eager:
        if MW == 1 and NL == 4:
            return _tick_eager_1_4
        if MW == 1 and NL == 3:
            return _tick_eager_1_3
        if MW == 1 and NL == 5:
            return _tick_eager_1_5
        return _tick_eager_any
    if self.cw_on:
        if MW == 1 and NL == 4:
            return _tick_general_1_4_cw
        if MW == 1 and NL == 3:
            return _tick_general_1_3_cw
        if MW == 1 and NL == 5:
            return _tick_general_1_5_cw
        return _tick_general_any_cw
    if MW == 1 and NL == 4:
        return _tick_general_1_4
    if MW == 1 and NL == 3:
        return _tick_general_1_3
    if MW == 1 and NL == 5:
        return _tick_general_1_5
    return _tick_general_any


cdef void _tick_eager_1_4(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 4, True, False)


cdef void _tick_eager_1_3(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 3, True, False)


cdef void _tick_eager_1_5(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 5, True, False)


cdef void _tick_eager_any(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, self.mask_words, self.n_levels, True, False)


cdef void _tick_eager_1_4_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 4, True, True)


cdef void _tick_eager_1_3_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 3, True, True)


cdef void _tick_eager_1_5_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 5, True, True)


cdef void _tick_eager_any_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, self.mask_words, self.n_levels, True, True)


cdef void _tick_general_1_4(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 4, False, False)


cdef void _tick_general_1_3(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 3, False, False)


cdef void _tick_general_1_5(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 5, False, False)


cdef void _tick_general_any(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, self.mask_words, self.n_levels, False, False)


cdef void _tick_general_1_4_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 4, False, True)


cdef void _tick_general_1_3_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 3, False, True)


cdef void _tick_general_1_5_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, 1, 5, False, True)


cdef void _tick_general_any_cw(Engine self, int ch, int64_t t) noexcept nogil:
    _tick_in(self, ch, t, self.mask_words, self.n_levels, False, True)


cdef inline void _tick_in(Engine self, int ch, int64_t t, int MW, int NL, bint PLAIN,
                          bint CW) noexcept nogil:
    """One cycle of channel `ch`: refresh, read/write mode, then schedule among the banks whose
    cached ready cycle has come (the pending set and this cycle's wheel slot only). MW =
    self.mask_words, NL = self.n_levels, PLAIN = self.eager, CW = self.cw_on (constants)."""
    cdef int64_t w = CYCLE_NEVER
    cdef int64_t r, seq
    cdef int nb = self.n_banks
    cdef int used = 0
    cdef int lst, b, k, bus, start, slot, lo, cmd, s
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
    cdef uint64_t fr[8]            # banks whose cached ready cycle is exact (eager)
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
    if not PLAIN and self.pim_mode:
        pim_first = self.p_pos[ch] < self.p_end[ch] and not self.pim_yield[ch]
        if pim_first:
            pim_used = _pim_step(self, ch, t, used, &w)
            used |= pim_used

    # read/write mode (queue mode without bank queues)
    if not PLAIN and self.bank_queue > 0:
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
                r = self.bk[base + b].cand_ready
                if r <= t:
                    rmask[mw] |= (<uint64_t>1) << (b & 63)
                elif r < CYCLE_NEVER:
                    _wheel_put(self, ch, b, r, t, MW)
    for mw in range(MW):
        rmask[mw] &= bm[mw]
        keep[mw] = rmask[mw]

    if not PLAIN and self.scheduler == SCHED_ROUND_ROBIN:
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
                    r = _candidate(self, ch, b, lst, t, NL, False, False)
                    if r > t:
                        keep[mw] &= ~bit
                        if r < CYCLE_NEVER:
                            _wheel_put(self, ch, b, r, t, MW)
                        continue
                    cmd = self.bk[base + b].cand_cmd
                    bus = self.cmd_bus[cmd]
                    if used & (1 << bus):
                        if found:
                            self.rr_next[ch] = b + 1 if b + 1 < nb else 0
                            stop = True     # the second ready command was for the same bus: not issued
                            break
                        continue
                    _issue(self, ch, cmd, self.bank_node[b], b, self.bk[base + b].cand_slot, self.bk[base + b].cand_prev, t)
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
        if not PLAIN and self.scheduler == SCHED_FCFS:
            # only the bank holding the oldest request may issue
            for mw in range(MW):
                keep[mw] = 0
                rmask[mw] = 0
            if self.leave_at_activate:
                # requests that left their queue at activate go first, in either mode (Ramulator's
                # active buffer; a pending refresh waits for them)
                for b in range(nb):
                    if self.bank_active[base + b] >= 0 and self.sl[self.bank_active[base + b]].seq < oldest:
                        oldest = self.sl[self.bank_active[base + b]].seq
                        oldest_bank = b
            if oldest_bank < 0:
                for b in range(nb):
                    if self.bk[base + b].q_count[lst] > 0 and self.sl[self.bk[base + b].q_head[lst]].seq < oldest:
                        oldest = self.sl[self.bk[base + b].q_head[lst]].seq
                        oldest_bank = b
            if oldest_bank >= 0:
                rmask[oldest_bank >> 6] = (<uint64_t>1) << (oldest_bank & 63)
                keep[oldest_bank >> 6] = rmask[oldest_bank >> 6]
        for mw in range(MW):
            # exact since the previous tick's end, unless this tick's refresh step issued
            fr[mw] = self.fresh[ch * MW + mw] if (PLAIN and not used) else 0
        for mw in range(MW):
            bits = rmask[mw]
            while bits:
                b = mw * 64 + __builtin_ctzll(bits)
                bits &= bits - 1
                r = _candidate(self, ch, b, lst, t, NL, (fr[mw] >> (b & 63)) & 1, PLAIN)
                if r > t:
                    keep[mw] &= ~((<uint64_t>1) << (b & 63))
                    if r < CYCLE_NEVER:
                        _wheel_put(self, ch, b, r, t, MW)
                    continue
                cmd = self.bk[base + b].cand_cmd
                if used & (1 << self.cmd_bus[cmd]):
                    continue
                s = self.bk[base + b].cand_slot
                seq = self.sl[s].seq
                if not PLAIN and self.leave_at_activate and self.bank_active[base + b] == s:
                    seq -= (<int64_t>1) << 62   # Ramulator serves its active buffer first
                if self.bk[base + b].cand_col:
                    if best_col < 0 or seq < best_col_seq:
                        best_col, best_col_s, best_col_prev, best_col_cmd, best_col_seq = (
                            b, s, self.bk[base + b].cand_prev, cmd, seq)
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

    if not PLAIN and self.pim_mode:
        if self.p_pos[ch] < self.p_end[ch] and not pim_first:
            pim_used = _pim_step(self, ch, t, used, &w)
            used |= pim_used
        self.pim_yield[ch] = pim_used != 0

    if PLAIN:
        anyp = _settle(self, ch, t, lst, keep, MW, NL)
        if anyp or _mode_flip_due(self, ch):
            w = t + 1
        elif self.wheel_occ[ch]:
            w = imin(w, _wheel_next(self, ch, t))
    else:
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
    if not PLAIN and self.bank_queue > 0 and (self.rq_count[ch] > 0 or self.wq_count[ch] > 0):
        if _move_one(self, ch):
            w = t + 1
    self.wake[ch] = w
    if CW:
        # _run took it off the channel wheel (the host API's loop keeps no wheel: what this
        # files there is overwritten when _run starts)
        _cw_file(self, ch, w, t, 64)


cdef inline uint64_t _settle(Engine self, int ch, int64_t t, int lst, uint64_t* keep, int MW,
                            int NL) noexcept nogil:
    """End of an eager tick (FR-FCFS): the ready banks that did not issue (`keep`) and the banks
    whose state changed are evaluated now, after this cycle's issues. Those ready next cycle are
    looked at then (their cycle exact: `fresh`), the others are filed on the wheel at their
    cycle, so the next cycle is ticked only for them (or for a flip of the read/write mode).
    Returns whether any bank is ready next cycle."""
    cdef uint64_t* pm = &self.pend[ch * MW]
    cdef uint64_t* bm = &self.busy_mask[ch * MW]
    cdef uint64_t bits, lost, nxt, anyp = 0
    cdef int mw, b, base = ch * self.n_banks
    cdef int64_t r
    for mw in range(MW):
        lost = keep[mw] & ~pm[mw]       # ready, not issued, state unchanged: same candidate
        bits = (pm[mw] | keep[mw]) & bm[mw]
        nxt = 0
        while bits:
            b = mw * 64 + __builtin_ctzll(bits)
            bits &= bits - 1
            if (lost >> (b & 63)) & 1:
                self.n_evals += 1
                r = _bank_ready_n(self, ch, self.bk[base + b].cand_cmd, b, NL)
                self.bk[base + b].cand_ready = r
            else:
                r = _candidate(self, ch, b, lst, t, NL, False, True)
            if r <= t + 1:
                nxt |= (<uint64_t>1) << (b & 63)
            elif r < CYCLE_NEVER:
                _wheel_put(self, ch, b, r, t, MW)
        pm[mw] = nxt
        self.fresh[ch * MW + mw] = nxt
        anyp |= nxt
    return anyp
