# Included by _engine.pyx: the timing tables. The update lists compiled from the constraint rows,
# and the earliest-issue checks and updates that use them.


#: compiled update lists by what they are compiled from (_update_inputs): engines of one
#: memory (a PIM kernel's simulations, one per program key) share them, read only
_COMPILED = {}


def _compile_updates(Engine self, int n_rows):
    """The update lists (_compile_lists), compiled once per distinct inputs: compiling them
    took about 3.5 ms of every AttAcc PIM engine's 4.6 ms construction."""
    key = _update_inputs(self, n_rows)
    lists = _COMPILED.get(key)
    if lists is None:
        lists = _pack_lists(_compile_lists(self, n_rows))
        if len(_COMPILED) >= 64:
            _COMPILED.clear()
        _COMPILED[key] = lists
    (starts, entries, wrows, wnodes, sel_start, sel_nodes, sel_base) = lists
    self.upd_start = <UpdStart*> cnp.PyArray_DATA(self._keep_arr(starts))
    self.upd = <UpdEntry*> cnp.PyArray_DATA(self._keep_arr(entries))
    self.wupd_row = <int32_t*> cnp.PyArray_DATA(self._keep_arr(wrows))
    self.wupd_node = <int32_t*> cnp.PyArray_DATA(self._keep_arr(wnodes))
    self.sel_start = <int32_t*> cnp.PyArray_DATA(self._keep_arr(sel_start))
    self.sel_nodes = <int32_t*> cnp.PyArray_DATA(self._keep_arr(sel_nodes))
    self.sel_base = <int32_t*> cnp.PyArray_DATA(self._keep_arr(sel_base))


def _pack_lists(lists):
    """_compile_lists' arrays as the engine reads them: each (offset, latency) entry in 8 bytes
    and the two starts of a (command, node) side by side (UpdEntry, UpdStart), so that an issue
    reads its lists from one or two cache lines instead of four."""
    (starts, offs, lats, wstarts, wrows, wnodes, sel_start, sel_nodes, sel_base) = lists
    if len(lats) and lats.max() > 2**31 - 1:
        raise ValueError(f"a timing latency of {int(lats.max())} cycles is beyond the engine's 2**31 - 1")
    entries = np.ascontiguousarray(np.stack([offs, lats.astype(np.int32)], axis=1), dtype=np.int32)
    both = np.ascontiguousarray(np.stack([starts, wstarts], axis=1), dtype=np.int32)
    return (both, entries, wrows, wnodes, sel_start, sel_nodes, sel_base)


def _update_inputs(Engine self, int n_rows):
    """Everything _compile_lists reads: a channel's organisation, the commands' scopes and
    selection periods, and the merged constraint rows."""
    cdef int nr = self.row_start[self.n_cmd]
    return (tuple(self.level_count[l] for l in range(self.n_levels)), self.n_cmd, self.n_class, n_rows,
            tuple(self.cmd_scope[i] for i in range(self.n_cmd)), tuple(self.cmd_sel[i] for i in range(self.n_cmd)),
            tuple(self.row_start[i] for i in range(self.n_cmd + 1)),
            tuple((self.row_level[r], self.row_to[r], self.row_latency[r], self.row_window[r], self.row_sibling[r])
                  for r in range(nr)))


def _compile_lists(Engine self, int n_rows):
    """For every (command, node) the flat lists of table entries an issue there raises, so that
    issuing walks short arrays instead of interpreting the rows (levels, siblings, subtrees).
    Plain rows become (offset in a channel's earliest table, latency), one entry per offset
    with the largest latency; window rows become (row, node) for the ring buffers.

    Selecting commands (bank k of every `period` consecutive banks under the node: the same
    bank in every node of their selection level) get one list per (node of their scope, k)
    after the (command, node) lists, at key n_cmd * n_nodes + sel_key(cmd, node, k), reaching
    only the nodes below the node that hold a selected bank; sel_start/sel_nodes list those
    nodes for the ready check, under the same sel_key."""
    cdef int c, node, lvl, k, period
    starts, wstarts = [0], [0]
    offs, lats, wrows, wnodes = [], [], [], []
    # per table offset: the largest latency of the list being built (-1 before any), and
    # whether the list has it yet
    best = np.full(self.n_nodes * self.n_class, -1, dtype=np.int64)
    seen = np.zeros(self.n_nodes * self.n_class, dtype=np.uint8)
    for c in range(self.n_cmd):
        for node in range(self.n_nodes):
            _add_updates(self, c, node, -1, 0, best, seen, offs, lats, wrows, wnodes)
            starts.append(len(offs))
            wstarts.append(len(wrows))
    sel_start, sel_nodes, sel_base = [0], [], []
    for c in range(self.n_cmd):
        period = self.cmd_sel[c]
        sel_base.append(len(sel_start) - 1 if period else -1)
        if not period:
            continue
        lvl = self.cmd_scope[c]
        for node in range(self.level_offset[lvl], self.level_offset[lvl] + self.level_size[lvl]):
            for k in range(period):
                _add_updates(self, c, node, k, period, best, seen, offs, lats, wrows, wnodes)
                starts.append(len(offs))
                wstarts.append(len(wrows))
                sel_nodes.extend(x for x in range(self.n_nodes)
                                 if self.node_level[x] > lvl and self.node_anc[x * self.n_levels + lvl] == node
                                 and _holds_sel(self, x, k, period))
                sel_start.append(len(sel_nodes))
    return (np.asarray(starts, dtype=np.int32), np.asarray(offs + [0], dtype=np.int32),
            np.asarray(lats + [0], dtype=np.int64), np.asarray(wstarts, dtype=np.int32),
            np.asarray(wrows + [0], dtype=np.int32), np.asarray(wnodes + [0], dtype=np.int32),
            np.asarray(sel_start, dtype=np.int32), np.asarray(sel_nodes + [0], dtype=np.int32),
            np.asarray(sel_base + [0], dtype=np.int32))


cdef _add_updates(Engine self, int c, int node, int k, int period, int64_t[::1] best, uint8_t[::1] seen,
                  list offs, list lats, list wrows, list wnodes):
    """Append the update list of command c issued at `node` to offs/lats and wrows/wnodes. A
    constraint row from c reaches the ancestor of `node` at the row's level (or that ancestor's
    siblings), or every node of a deeper level below `node`; for a selecting command (choice
    k >= 0 of `period`) only the deeper nodes holding a selected bank. In C loops: a Python list
    of (row, node) per (command, node) took 5.8 ms of every engine's construction on HBM3 and
    9.5 ms on the AttAcc presets. `best` and `seen` are all -1 and 0 on entry and are left so."""
    cdef int NL = self.n_levels
    cdef int lvl = self.node_level[node]
    cdef int r, L, first, tgt, x, o
    cdef int64_t span, start, xx
    touched = []
    for r in range(self.row_start[c], self.row_start[c + 1]):
        L = self.row_level[r]
        if L <= lvl:
            tgt = self.node_anc[node * NL + L]
            if self.row_sibling[r]:
                first = self.level_offset[L] + ((tgt - self.level_offset[L]) // self.level_count[L]) * self.level_count[L]
                start = first
                span = self.level_count[L]
            else:
                start = tgt
                span = 1
        elif not self.row_sibling[r]:
            span = self.level_span[lvl * MAXL + L]
            start = self.level_offset[L] + (node - self.level_offset[lvl]) * span
            tgt = -1
        else:
            continue
        for xx in range(start, start + span):
            x = <int>xx
            if L <= lvl and self.row_sibling[r] and x == tgt:
                continue
            if k >= 0 and self.node_level[x] > lvl and not _holds_sel(self, x, k, period):
                continue
            if self.row_window[r] > 1:
                wrows.append(r)
                wnodes.append(x)
            else:
                o = x * self.n_class + self.row_to[r]
                if not seen[o]:
                    seen[o] = 1
                    touched.append(o)
                if self.row_latency[r] > best[o]:
                    best[o] = self.row_latency[r]
    touched.sort()
    for o in touched:
        offs.append(o)
        lats.append(best[o])
        best[o] = -1
        seen[o] = 0


def _holds_sel(Engine self, int x, int k, int period):
    """Whether node x holds a bank b with b % period == k (the banks a selecting command with
    that period and choice k acts on). Nodes nest, so a node smaller than a period holds one
    aligned run of banks within it."""
    cdef int n = self.node_n_banks[x]
    if n >= period:
        return True
    return 0 <= k - self.node_first_bank[x] % period < n


cdef inline int _sel_key(Engine self, int cmd, int node, int k) noexcept nogil:
    """Index of the selection lists of a selecting command at `node` (of its scope) with choice k."""
    return self.sel_base[cmd] + (node - self.level_offset[self.cmd_scope[cmd]]) * self.cmd_sel[cmd] + k


cdef int64_t _ready(Engine self, int ch, int cmd, int node) noexcept nogil:
    """Earliest cycle `cmd` may issue at `node`: the max over the node, its ancestors and,
    for commands that cover several banks, every node below it."""
    return _sel_ready(self, ch, cmd, node, -1)


cdef int64_t _sel_ready(Engine self, int ch, int cmd, int node, int k) noexcept nogil:
    """_ready where a selecting command (k >= 0) covers only the banks its choice k selects."""
    cdef int NL = self.n_levels
    cdef int cls = self.cmd_class[cmd]
    cdef int lvl = self.node_level[node]
    cdef int64_t base = <int64_t>ch * self.n_nodes
    cdef int64_t e = 0
    cdef int l, m, j, key
    cdef int64_t d, start, span
    for l in range(lvl + 1):
        e = imax(e, self.earliest[(base + self.node_anc[node * NL + l]) * self.n_class + cls])
    if k >= 0 and self.cmd_sel[cmd]:
        key = _sel_key(self, cmd, node, k)
        for j in range(self.sel_start[key], self.sel_start[key + 1]):
            e = imax(e, self.earliest[(base + self.sel_nodes[j]) * self.n_class + cls])
    elif lvl < self.bank_level:
        for m in range(lvl + 1, NL):
            span = self.level_span[lvl * MAXL + m]
            start = self.level_offset[m] + (node - self.level_offset[lvl]) * span
            for d in range(start, start + span):
                e = imax(e, self.earliest[(base + d) * self.n_class + cls])
    return e


cdef void _apply_row(Engine self, int ch, int r, int node, int64_t t) noexcept nogil:
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


cdef inline void _update_timing(Engine self, int ch, int cmd, int node, int64_t t) noexcept nogil:
    _update_key(self, ch, cmd * self.n_nodes + node, t)


cdef inline void _update_key(Engine self, int ch, int i, int64_t t) noexcept nogil:
    """Raise the table entries of update list i (see _compile_updates) for an issue at t."""
    cdef int64_t* e = &self.earliest[<int64_t>ch * self.n_nodes * self.n_class]
    cdef int k
    cdef int end = self.upd_start[i + 1].upd
    cdef int64_t v
    for k in range(self.upd_start[i].upd, end):
        v = t + self.upd[k].lat
        if e[self.upd[k].off] < v:
            e[self.upd[k].off] = v
    end = self.upd_start[i + 1].wupd
    for k in range(self.upd_start[i].wupd, end):
        _apply_row(self, ch, self.wupd_row[k], self.wupd_node[k], t)


cdef inline int64_t _bank_ready(Engine self, int ch, int cmd, int b) noexcept nogil:
    """_ready for a bank-scope command, bus included."""
    return _bank_ready_n(self, ch, cmd, b, self.n_levels)


cdef inline int64_t _bank_ready_n(Engine self, int ch, int cmd, int b, int NL) noexcept nogil:
    """_bank_ready with the number of levels as an argument (a constant where the scheduler is
    specialised): the max over the bank's ancestors' entries (bank_abs: their offsets in the
    whole earliest table, channel included) and the command's bus."""
    cdef const int64_t* e = self.earliest + self.cmd_class[cmd]
    cdef const int32_t* off = &self.bank_abs[(ch * self.n_banks + b) * NL]
    cdef int64_t r = self.bus_free[ch * 2 + self.cmd_bus[cmd]]
    cdef int l
    for l in range(NL):
        if e[off[l]] > r:
            r = e[off[l]]
    return r
