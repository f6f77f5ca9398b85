# Included by _engine.pyx: processing in memory. Issuing the command programs (multi-bank
# selections, row buffers, units).


cdef inline int _first_covered(Engine self, int cmd, int k, int first) noexcept nogil:
    """The first bank a command at a node whose banks start at `first` acts on: `first`, or for
    a selecting command (k: its choice) bank first + k. The others follow every _covered_step
    banks, _covered_count of them in all (a node's banks start at a multiple of the selection
    period, which divides their number)."""
    return first + k if self.cmd_sel[cmd] else first


cdef inline int _covered_step(Engine self, int cmd) noexcept nogil:
    return self.cmd_sel[cmd] if self.cmd_sel[cmd] else 1


cdef inline int _covered_count(Engine self, int cmd, int nb) noexcept nogil:
    return nb // self.cmd_sel[cmd] if self.cmd_sel[cmd] else nb


cdef bint _pim_holds(Engine self, int ch, int first, int nb) noexcept nogil:
    """Whether a PIM operation holds an open row in banks first .. first + nb - 1."""
    cdef int b, bi
    for b in range(first, first + nb):
        bi = ch * self.n_banks + b
        if self.bank_blocked[bi] & BLOCK_PIM_ROW or self.pim_row[bi] >= 0:
            return True
    return False


cdef int _pim_step(Engine self, int ch, int64_t t, int used, int64_t* wake) noexcept nogil:
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
    cdef int b, bi, j, pre_bus, open_now
    cdef int b0 = _first_covered(self, cmd, k, first)
    cdef int step = _covered_step(self, cmd)
    cdef int n_cov = _covered_count(self, cmd, nb)
    cdef int64_t r
    if self.pim_mode == 2 and not self.pim_claim[ch]:
        # blocked mode: normal traffic waits until the program has run
        self.pim_claim[ch] = 1
        for b in range(self.n_banks):
            self.bank_blocked[ch * self.n_banks + b] |= BLOCK_PIM_MODE
    if kind == KIND_ACTIVATE or kind == KIND_MAC:
        for j in range(n_cov):
            bi = ch * self.n_banks + b0 + j * step
            if kind == KIND_MAC:
                # the program must have opened the row it computes on
                if rb:
                    open_now = self.pim_row[bi]
                elif self.bank_blocked[bi] & BLOCK_PIM_ROW:
                    open_now = self.bk[bi].open_row
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
            for j in range(n_cov):
                self.bank_blocked[ch * self.n_banks + b0 + j * step] |= BLOCK_PIM_WAIT
            for j in range(n_cov):
                b = b0 + j * step
                if self.bk[ch * self.n_banks + b].open_row < 0:
                    continue
                pre_bus = self.cmd_bus[self.cmd_pre]
                r = _bank_ready(self, ch, self.cmd_pre, b)
                if used & (1 << pre_bus) or r > t:
                    wake[0] = imin(wake[0], imax(r, t + 1))
                    return 0
                _issue(self, ch, self.cmd_pre, self.bank_node[b], b, -1, -1, t)
                self.last_progress = t
                wake[0] = imin(wake[0], t + 1)
                return 1 << pre_bus
    r = imax(_sel_ready(self, ch, cmd, node, k), self.bus_free[ch * 2 + bus])
    if u >= 0:
        for j in range(n_cov):
            b = b0 + j * step
            r = imax(r, self.unit_free[ch * self.unit_total + self.unit_off[u] + b // self.unit_div[u]])
    if used & (1 << bus) or r > t:
        wake[0] = imin(wake[0], imax(r, t + 1))
        return 0
    _pim_issue(self, ch, i, t)
    wake[0] = imin(wake[0], t + 1)
    return 1 << bus


cdef void _pim_issue(Engine self, int ch, int64_t i, int64_t t) noexcept nogil:
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
    cdef int b, bi, j, key
    cdef int b0 = _first_covered(self, cmd, k, first)
    cdef int step = _covered_step(self, cmd)
    if self.cmd_sel[cmd]:
        key = self.n_cmd * self.n_nodes + _sel_key(self, cmd, node, k)
    else:
        key = cmd * self.n_nodes + node
    _update_key(self, ch, key, t)
    self.bus_free[ch * 2 + self.cmd_bus[cmd]] = t + self.cmd_bus_cycles[cmd]
    self.cmd_count[ch * self.n_cmd + cmd] += 1
    for j in range(_covered_count(self, cmd, nb)):
        b = b0 + j * step
        bi = ch * self.n_banks + b
        if kind == KIND_ACTIVATE:
            self.pim_open[ch] += 1
            if rb:
                self.pim_row[bi] = row
            else:
                self.bank_blocked[bi] = (self.bank_blocked[bi] & ~BLOCK_PIM_WAIT) | BLOCK_PIM_ROW
                _set_open(self, ch, b, row, t)
        elif kind == KIND_PRECHARGE:
            if rb:
                if self.pim_row[bi] >= 0:
                    self.pim_open[ch] -= 1
                self.pim_row[bi] = -1
            else:
                if self.bank_blocked[bi] & BLOCK_PIM_ROW:
                    self.pim_open[ch] -= 1
                    self.bank_blocked[bi] &= ~BLOCK_PIM_ROW
                if self.bk[bi].open_row >= 0:
                    _set_open(self, ch, b, -1, t)
                else:
                    _invalidate(self, ch, b)
        elif u >= 0:
            self.unit_free[ch * self.unit_total + self.unit_off[u] + b // self.unit_div[u]] = t + occ
    if t + occ > self.last_done:
        self.last_done = t + occ
    self.last_progress = t
    if self.logging:
        _log(self, ch, cmd, node + (self.n_nodes * (k + 1) if self.cmd_sel[cmd] else 0),
                  row if kind == KIND_ACTIVATE or kind == KIND_MAC else -1, -1, t)
    self.p_pos[ch] = i + 1
    if i + 1 == self.p_end[ch] and self.pim_claim[ch]:
        self.pim_claim[ch] = 0
        for b in range(self.n_banks):
            self.bank_blocked[ch * self.n_banks + b] &= ~BLOCK_PIM_MODE
            _invalidate(self, ch, b)
