# Included by _engine.pyx: the host-simulator API's part of the simulation (pimdram.MemorySystem).
# Request records with the host's tags, the rings of completed requests, and advancing time to a
# given cycle. Replay does not use any of it (the engine is built with track off).


cdef inline void _track_issue(Engine self, int rec, int64_t done, int k) noexcept nogil:
    """An access of request `rec` issued its column command and completes at `done`: when it was
    the request's last access, the request joins the completion ring of its kind (k: 0 read, 1
    write). A ring holds r_cap entries, one per record, so it never overflows."""
    cdef CompletionRing* q
    cdef int64_t i
    self.r_left[rec] -= 1
    if self.r_left[rec] > 0:
        return
    q = &self.rings[k]
    i = q.head + q.count
    if i >= q.cap:
        i -= q.cap
    q.rec[i] = rec
    q.done[i] = done
    q.seq[i] = self.c_seq
    self.c_seq += 1
    q.count += 1


cdef int _records_grow(Engine self) except -1:
    """Double the request records (and the completion rings with them); the new ones go on the
    free list."""
    cdef int32_t old = self.r_cap
    cdef int32_t cap = max(64, 2 * old)
    cdef int32_t i
    cdef int k
    cdef int64_t j, src
    cdef CompletionRing* q
    cdef int32_t* rec
    cdef int64_t* done
    cdef int64_t* seq
    cdef int64_t* tag = <int64_t*> realloc(self.r_tag, cap * sizeof(int64_t))
    if tag != NULL:
        self.r_tag = tag
    cdef int64_t* acc = <int64_t*> realloc(self.r_accept, cap * sizeof(int64_t))
    if acc != NULL:
        self.r_accept = acc
    cdef int32_t* left = <int32_t*> realloc(self.r_left, cap * sizeof(int32_t))
    if left != NULL:
        self.r_left = left
    if tag == NULL or acc == NULL or left == NULL:
        raise MemoryError("out of memory for request records")
    for i in range(old, cap):
        self.r_left[i] = i + 1 if i + 1 < cap else self.r_free
    self.r_free = old
    for k in range(2):
        q = &self.rings[k]
        rec = <int32_t*> malloc(cap * sizeof(int32_t))
        done = <int64_t*> malloc(cap * sizeof(int64_t))
        seq = <int64_t*> malloc(cap * sizeof(int64_t))
        if rec == NULL or done == NULL or seq == NULL:
            free(rec)
            free(done)
            free(seq)
            raise MemoryError("out of memory for the completion rings")
        for j in range(q.count):
            src = (q.head + j) % q.cap
            rec[j] = q.rec[src]
            done[j] = q.done[src]
            seq[j] = q.seq[src]
        free(q.rec)
        free(q.done)
        free(q.seq)
        q.rec = rec
        q.done = done
        q.seq = seq
        q.head = 0
        q.cap = cap
    self.r_cap = cap
    return 0


cdef int _record_new(Engine self, int64_t tag, int32_t accesses) except -1:
    """A request record for a request of `accesses` accesses, tagged `tag`."""
    cdef int rec
    if self.r_free < 0:
        _records_grow(self)
    rec = self.r_free
    self.r_free = self.r_left[rec]
    self.r_tag[rec] = tag
    self.r_accept[rec] = -1
    self.r_left[rec] = accesses
    self.r_live += 1
    return rec


cdef inline void _record_free(Engine self, int rec) noexcept:
    self.r_left[rec] = self.r_free
    self.r_free = rec
    self.r_live -= 1


cdef inline int32_t _accesses(Engine self, int64_t size, int request_bytes) noexcept:
    """Accesses of a request of `size` bytes (0: request_bytes, or one access when that is 0)."""
    cdef int64_t acc = self.access_bytes
    if size <= 0:
        size = request_bytes if request_bytes > 0 else acc
    return <int32_t>((size + acc - 1) // acc)


cdef int _api_buffers(Engine self, int32_t n) except -1:
    """The engine's own frontend entries (offer()) for a request of n accesses."""
    cdef int32_t cap
    if n <= self.a_cap:
        return 0
    cap = max(n, 2 * self.a_cap, 16)
    self.a_ch = <int32_t*> realloc(self.a_ch, cap * sizeof(int32_t))
    self.a_bank = <int32_t*> realloc(self.a_bank, cap * sizeof(int32_t))
    self.a_row = <int32_t*> realloc(self.a_row, cap * sizeof(int32_t))
    self.a_col = <int32_t*> realloc(self.a_col, cap * sizeof(int32_t))
    self.a_wr = <uint8_t*> realloc(self.a_wr, cap * sizeof(uint8_t))
    self.a_arr = <int64_t*> realloc(self.a_arr, cap * sizeof(int64_t))
    self.a_req = <int32_t*> realloc(self.a_req, cap * sizeof(int32_t))
    self.a_first = <uint8_t*> realloc(self.a_first, cap * sizeof(uint8_t))
    if (self.a_ch == NULL or self.a_bank == NULL or self.a_row == NULL or self.a_col == NULL
            or self.a_wr == NULL or self.a_arr == NULL or self.a_req == NULL or self.a_first == NULL):
        self.a_cap = 0
        raise MemoryError("out of memory for a request's accesses")
    self.a_cap = cap
    return 0


cdef void _decode_one(Engine self, uint64_t x, int32_t* out) noexcept nogil:
    """Channel, bank (within the channel), row and column of byte address x (as decode())."""
    cdef int NL = self.n_levels
    cdef int f, l, fid
    cdef int at = self.offset_bits
    cdef int sh[10]
    cdef int64_t comp[10]
    cdef int64_t bank = 0
    for l in range(NL + 2):
        sh[l] = 0
        comp[l] = 0
    for f in range(self.n_fields - 1, -1, -1):
        fid = self.field_id[f]
        comp[fid] |= <int64_t>((x >> at) & (((<uint64_t>1) << self.field_bits[f]) - 1)) << sh[fid]
        sh[fid] += self.field_bits[f]
        at += self.field_bits[f]
    for l in range(1, NL):
        bank = bank * self.level_count[l] + comp[l]
    out[0] = <int32_t>comp[0]
    out[1] = <int32_t>bank
    out[2] = <int32_t>comp[NL]
    out[3] = <int32_t>comp[NL + 1]


cdef int _advance(Engine self, int64_t t_end) noexcept nogil:
    """Simulate every cycle up to t_end: each cycle the channels' ticks, then the frontend (which
    offers what is queued in it). Returns with the frontend open at t_end (a request sent now is
    accepted at t_end and seen by the controllers from t_end + 1). Same steps as _run, but it
    stops at a cycle instead of at the end of the input; -1: stalled, -2: PIM program error."""
    cdef int64_t t = self.now
    cdef int64_t tn, busy
    cdef int ch, blocked
    cdef uint32_t polls = 0
    self.last_progress = imax(self.last_progress, t)
    while True:
        polls += 1
        if (polls & 0xFFFF) == 0 and _signalled():
            self.now = t
            return -3
        if not self.frontend_pending_at_now:
            for ch in range(self.n_channels):
                if self.wake[ch] <= t:
                    _tick(self, ch, t)
            if self.pim_error >= 0:
                self.now = t
                return -2
        self.frontend_pending_at_now = False
        blocked = _frontend(self, t)
        if t >= t_end:
            self.now = t
            self.frontend_pending_at_now = True
            return 0
        tn = CYCLE_NEVER
        for ch in range(self.n_channels):
            if self.wake[ch] < tn:
                tn = self.wake[ch]
        if self.f_pos < self.f_n and not blocked:
            tn = imin(tn, imax(self.f_arrival[self.f_pos], t + 1))
        if tn > t_end:
            tn = t_end
        if tn - self.last_progress > self.stall_limit:
            # a stall only when work waits that could progress (not a request due later)
            busy = blocked
            for ch in range(self.n_channels):
                busy += self.outstanding[ch] + (self.p_end[ch] - self.p_pos[ch])
            if busy:
                self.now = t
                return -1
            self.last_progress = t
        t = tn
