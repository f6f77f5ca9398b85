# Included by _engine.pyx: refresh. Due refreshes per refresh node, their banks closed first.


cdef bint _active_waiting(Engine self, int ch, int first, int nb) noexcept nogil:
    """Whether a request that left its queue at activate waits with its row open in banks
    first .. first + nb - 1."""
    cdef int b, bi
    for b in range(first, first + nb):
        bi = ch * self.n_banks + b
        if self.bank_active[bi] >= 0 and self.bk[bi].open_row == self.sl[self.bank_active[bi]].row:
            return True
    return False


cdef int _refresh_step(Engine self, int ch, int64_t t, int64_t* wake) noexcept nogil:
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
                self.ref_scan[ri] = first
                for b in range(first, first + nb):
                    self.bank_blocked[ch * self.n_banks + b] |= BLOCK_REFRESH
            else:
                wake[0] = imin(wake[0], self.ref_due[ri])
                quiet = imin(quiet, self.ref_due[ri])
                continue
        # pending: close open banks, then refresh (after any PIM operation that holds a row here)
        pending += 1
        if self.pim_open[ch] > 0 and _pim_holds(self, ch, first, nb):
            continue        # the PIM precharge that releases the rows wakes the channel
        if self.leave_at_activate and _active_waiting(self, ch, first, nb):
            continue        # Ramulator closes no row an active request waits for: it is served first
        # the first open bank. An eager engine's blocked banks only close (no PIM program, no
        # active buffer), so the scan resumes where the last one stopped: it touched every bank's
        # record (a cache line each) on every tick of the channel while the refresh waited
        bank = -1
        for b in range(self.ref_scan[ri] if self.eager else first, first + nb):
            if self.bk[ch * self.n_banks + b].open_row >= 0:
                bank = b
                break
        if self.eager:
            self.ref_scan[ri] = bank if bank >= 0 else first + nb
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
        r = imax(_ready(self, ch, cmd, target), self.bus_free[ch * 2 + self.cmd_bus[cmd]])
        if r <= t:
            _issue(self, ch, cmd, target, bank, -1, -1, t)
            used |= 1 << self.cmd_bus[cmd]
            wake[0] = imin(wake[0], t + 1)
            if cmd == self.ref_cmd:
                self.ref_pending[ri] = 0
                self.ref_due[ri] += self.ref_interval
                for b in range(first, first + nb):
                    self.bank_blocked[ch * self.n_banks + b] &= ~BLOCK_REFRESH
                    _invalidate(self, ch, b)
                wake[0] = imin(wake[0], self.ref_due[ri])
        else:
            wake[0] = imin(wake[0], r)
    # nothing pending: until the next due cycle this step has nothing to do
    self.ref_quiet_until[ch] = quiet if pending == 0 else 0
    return used
