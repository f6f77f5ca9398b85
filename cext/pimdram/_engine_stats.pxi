# Included by _engine.pyx: statistics (what an issued access counts) and the command log.


cdef inline int lat_bin(int64_t v) noexcept nogil:
    cdef int e
    if v < 1024:
        return <int>(v if v > 0 else 0)
    e = 53 - __builtin_clzll(<unsigned long long>v)     # floor(log2 v) - 10
    if e > 30:
        return N_HIST - 1
    # v in [2^(10+e), 2^(11+e)): 128 sub-bins
    return 1024 + e * 128 + <int>(((v >> (e + 3)) & 127))


cdef inline void _count_completion(Engine self, int ch, int k, int row_class, int64_t arrive,
                                   int64_t t) noexcept nogil:
    """Statistics of an access whose column command (k: 0 read, 1 write) issued at t: counts,
    latency (sum, max, histogram), row-buffer outcome (row_class: 0 hit, 1 miss, 2 conflict),
    the last completion and the bandwidth series (whose window doubles when it runs out of bins)."""
    cdef int64_t done, lat, slot
    cdef int bin, i
    done = t + (self.write_latency if k else self.read_latency)
    lat = done - arrive
    if k:
        self.n_write[ch] += 1
    else:
        self.n_read[ch] += 1
    self.lat_sum[ch * 2 + k] += lat
    if lat > self.lat_max[ch * 2 + k]:
        self.lat_max[ch * 2 + k] = lat
    self.lat_hist[(ch * 2 + k) * N_HIST + lat_bin(lat)] += 1
    if row_class == 0:
        self.row_hits[ch] += 1
    elif row_class == 1:
        self.row_misses[ch] += 1
    else:
        self.row_conflicts[ch] += 1
    if done > self.last_done:
        self.last_done = done
    # the bin in 64 bits: a completion late in a long run (10**13 cycles) is far beyond an int's
    # range at the first window, and a truncated index wrote outside the series
    slot = done >> self.bw_shift
    while slot >= BW_BINS:
        for i in range(BW_BINS // 2):
            self.bw_read[i] = self.bw_read[2 * i] + self.bw_read[2 * i + 1]
            self.bw_write[i] = self.bw_write[2 * i] + self.bw_write[2 * i + 1]
        for i in range(BW_BINS // 2, BW_BINS):
            self.bw_read[i] = 0
            self.bw_write[i] = 0
        self.bw_window *= 2
        self.bw_shift += 1
        slot = done >> self.bw_shift
    bin = <int>slot
    if k:
        self.bw_write[bin] += self.access_bytes
    else:
        self.bw_read[bin] += self.access_bytes
    if bin + 1 > self.bw_bins:
        self.bw_bins = bin + 1


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


cdef void _log(Engine self, int ch, int cmd, int node, int row, int col, int64_t t) noexcept nogil:
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
