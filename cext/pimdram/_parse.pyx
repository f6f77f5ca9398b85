# Bulk parser of text request traces (DRAMsim3, Ramulator 2 load/store): bytes in, numpy columns out.
#
# The hot loops run without the GIL over a block of whole lines and report a malformed line as an
# error code with its line number and token offset (see ParseErrorCode in _parse.pxd); the Python
# front end (pimdram.trace.requests) owns the messages and raises TraceError.
from libc.stdint cimport UINT64_MAX, int64_t, uint8_t, uint64_t
from libc.string cimport memchr

from pimdram._types cimport MAX_CYCLE

#: the latest arrival cycle a trace may give (the engine's range; pimdram._types MAX_CYCLE)
MAX_ARRIVAL_CYCLE = MAX_CYCLE

# Character classes, filled once at import. A separator is any blank other than the newline, so
# CRLF files and tab-separated fields parse; '\n' alone ends a line.
cdef signed char HEX_DIGIT[256]
cdef unsigned char IS_SEPARATOR[256]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        HEX_DIGIT[c] = -1
        IS_SEPARATOR[c] = 0
    for c in range(10):
        HEX_DIGIT[ord("0") + c] = c
    for c in range(6):
        HEX_DIGIT[ord("a") + c] = 10 + c
        HEX_DIGIT[ord("A") + c] = 10 + c
    for c in (ord(" "), ord("\t"), ord("\r"), ord("\v"), ord("\f")):
        IS_SEPARATOR[c] = 1


_init_tables()

cdef enum NumberStatus:
    NUMBER_OK = 0
    NUMBER_MALFORMED = 1
    NUMBER_TOO_LARGE = 2

cdef enum:
    NEWLINE = 10


cdef inline Py_ssize_t skip_separators(const unsigned char* buf, Py_ssize_t p,
                                       Py_ssize_t end) noexcept nogil:
    while p < end and IS_SEPARATOR[buf[p]]:
        p += 1
    return p


cdef inline bint at_line_end(const unsigned char* buf, Py_ssize_t p, Py_ssize_t end) noexcept nogil:
    return p == end or buf[p] == NEWLINE


cdef inline bint at_token_end(const unsigned char* buf, Py_ssize_t p, Py_ssize_t end) noexcept nogil:
    return p == end or buf[p] == NEWLINE or IS_SEPARATOR[buf[p]]


cdef inline Py_ssize_t token_end(const unsigned char* buf, Py_ssize_t p, Py_ssize_t end) noexcept nogil:
    while not at_token_end(buf, p, end):
        p += 1
    return p


cdef inline bint has_hex_prefix(const unsigned char* buf, Py_ssize_t p, Py_ssize_t end) noexcept nogil:
    return p + 1 < end and buf[p] == c'0' and (buf[p + 1] | 0x20) == c'x'


cdef inline int parse_hex(const unsigned char* buf, Py_ssize_t* p, Py_ssize_t end,
                          uint64_t* value) noexcept nogil:
    """Hex digits (no prefix) up to the end of the token; a number above 2**64-1 is too large."""
    cdef Py_ssize_t q = p[0]
    cdef Py_ssize_t first = q
    cdef uint64_t v = 0
    cdef signed char d
    cdef bint overflow = False
    while q < end:
        d = HEX_DIGIT[buf[q]]
        if d < 0:
            break
        if v >> 60:
            overflow = True
        v = (v << 4) | <uint64_t>d
        q += 1
    if q == first or not at_token_end(buf, q, end):
        return NUMBER_MALFORMED
    p[0] = q
    value[0] = v
    return NUMBER_TOO_LARGE if overflow else NUMBER_OK


cdef int parse_decimal_checked(const unsigned char* buf, Py_ssize_t* p, Py_ssize_t end,
                              uint64_t limit, uint64_t* value) noexcept nogil:
    """Decimal digits up to the end of the token, checking each step against limit (slow path)."""
    cdef Py_ssize_t q = p[0]
    cdef Py_ssize_t first = q
    cdef uint64_t v = 0
    cdef uint64_t d
    cdef bint overflow = False
    while q < end:
        d = <uint64_t>buf[q] - c'0'
        if d > 9:
            break
        if v > (limit - d) / 10:
            overflow = True
        else:
            v = v * 10 + d
        q += 1
    if q == first or not at_token_end(buf, q, end):
        return NUMBER_MALFORMED
    p[0] = q
    value[0] = v
    return NUMBER_TOO_LARGE if overflow else NUMBER_OK


cdef inline int parse_decimal(const unsigned char* buf, Py_ssize_t* p, Py_ssize_t end,
                              uint64_t limit, uint64_t* value) noexcept nogil:
    """Decimal digits up to the end of the token; a number above limit is too large."""
    cdef Py_ssize_t q = p[0]
    cdef uint64_t v = 0
    cdef uint64_t d
    while q < end:
        d = <uint64_t>buf[q] - c'0'
        if d > 9:
            break
        v = v * 10 + d
        q += 1
    # Up to 18 digits cannot exceed 10**18 - 1 < 2**63 - 1: only longer numbers need the checks.
    if q - p[0] > 18 or q == p[0] or not at_token_end(buf, q, end):
        return parse_decimal_checked(buf, p, end, limit, value)
    if v > limit:
        return NUMBER_TOO_LARGE
    p[0] = q
    value[0] = v
    return NUMBER_OK


cdef inline bint token_is(const unsigned char* buf, Py_ssize_t start, Py_ssize_t stop,
                          const char* upper_word) noexcept nogil:
    """Case-insensitive comparison of buf[start:stop] with an upper-case ASCII word."""
    cdef Py_ssize_t i = 0
    while start + i < stop:
        if upper_word[i] == 0 or (buf[start + i] & 0xDF) != <unsigned char>upper_word[i]:
            return False
        i += 1
    return upper_word[i] == 0


cdef inline Py_ssize_t fail(ParseState* state, int code, Py_ssize_t token,
                            Py_ssize_t line_start) noexcept nogil:
    state.error = code
    state.error_token = token
    state.error_line_start = line_start
    return line_start


cdef inline Py_ssize_t skip_blank_or_comment(const unsigned char* buf, Py_ssize_t p,
                                             Py_ssize_t end, ParseState* state) noexcept nogil:
    """If the line at p (after separators) is blank or a comment, return the start of the next
    line (counting the line); otherwise return -1."""
    cdef const unsigned char* newline
    if p == end:
        return end
    if buf[p] == NEWLINE:
        state.line += 1
        return p + 1
    if buf[p] == c'#':
        newline = <const unsigned char*>memchr(buf + p, NEWLINE, <size_t>(end - p))
        if newline == NULL:
            return end
        state.line += 1
        return (newline - buf) + 1
    return -1


cdef inline int parse_arrival(const unsigned char* buf, Py_ssize_t* p, Py_ssize_t end,
                              ParseState* state, int64_t* arrival) noexcept nogil:
    """The arrival-cycle token at p: a decimal of at most MAX_CYCLE, not before the previous
    request's."""
    cdef uint64_t value = 0
    cdef int status = parse_decimal(buf, p, end, <uint64_t>MAX_CYCLE, &value)
    if status == NUMBER_MALFORMED:
        return BAD_ARRIVAL
    if status == NUMBER_TOO_LARGE:
        return ARRIVAL_TOO_LARGE
    if <int64_t>value < state.last_arrival:
        return ARRIVAL_DECREASES
    arrival[0] = <int64_t>value
    return PARSE_OK


cdef inline Py_ssize_t fast_dramsim3_line(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t end,
                                          ParseState* state, uint64_t* addr, uint8_t* write,
                                          int64_t* cycle) noexcept nogil:
    """The line at pos if it has the form every generator writes, `0x<1-16 hex digits> READ|WRITE
    <1-18 decimal digits>` with single spaces and a newline, its arrival within range and not
    before the previous one: the start of the next line, with the fields. Else -1, and the line
    goes through the general checks (other spellings, separators, comments, errors)."""
    cdef Py_ssize_t q = pos + 2
    cdef Py_ssize_t first
    cdef uint64_t v = 0
    cdef uint64_t c = 0
    cdef uint64_t d
    cdef signed char h
    if pos + 1 >= end or buf[pos] != c'0' or buf[pos + 1] != c'x':
        return -1
    first = q
    while q < end:
        h = HEX_DIGIT[buf[q]]
        if h < 0:
            break
        v = (v << 4) | <uint64_t>h
        q += 1
    if q == first or q - first > 16 or q >= end or buf[q] != c' ':
        return -1
    q += 1
    if (q + 5 <= end and buf[q] == c'R' and buf[q + 1] == c'E' and buf[q + 2] == c'A'
            and buf[q + 3] == c'D' and buf[q + 4] == c' '):
        write[0] = 0
        q += 5
    elif (q + 6 <= end and buf[q] == c'W' and buf[q + 1] == c'R' and buf[q + 2] == c'I'
            and buf[q + 3] == c'T' and buf[q + 4] == c'E' and buf[q + 5] == c' '):
        write[0] = 1
        q += 6
    else:
        return -1
    first = q
    while q < end:
        d = <uint64_t>buf[q] - c'0'
        if d > 9:
            break
        c = c * 10 + d
        q += 1
    if (q == first or q - first > 18 or q >= end or buf[q] != NEWLINE or c > <uint64_t>MAX_CYCLE
            or <int64_t>c < state.last_arrival):
        return -1
    addr[0] = v
    cycle[0] = <int64_t>c
    return q + 1


cdef inline void _store_timed(int64_t* arrival, uint64_t* address, uint8_t* is_write, Py_ssize_t n,
                              int64_t cycle, uint64_t addr, uint8_t write, ParseState* state) noexcept nogil:
    """Request n of a DRAMsim3 line with its arrival cycle (the trace now gives arrivals)."""
    arrival[n] = cycle
    address[n] = addr
    is_write[n] = write
    state.last_arrival = cycle
    if state.arrival_given < 0:
        state.arrival_given = 1
        state.arrival_decided_on = state.line


cdef Py_ssize_t parse_dramsim3_lines(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t end,
                                     int64_t* arrival, uint64_t* address, uint8_t* is_write,
                                     Py_ssize_t capacity, Py_ssize_t* n_out,
                                     ParseState* state) noexcept nogil:
    # <hex address> READ|WRITE|RD|WR <arrival cycle>
    cdef Py_ssize_t n = n_out[0]
    cdef Py_ssize_t line_start, p, token, stop, next_line
    cdef uint64_t addr = 0
    cdef int64_t cycle = 0
    cdef uint8_t write
    cdef int status
    cdef bint ok
    while pos < end and n < capacity:
        line_start = pos
        p = fast_dramsim3_line(buf, pos, end, state, &addr, &write, &cycle)
        if p >= 0:
            # the common form, taken whole: what the checks below would find for it
            _store_timed(arrival, address, is_write, n, cycle, addr, write, state)
            n += 1
            state.line += 1
            pos = p
            continue
        p = skip_separators(buf, pos, end)
        next_line = skip_blank_or_comment(buf, p, end, state)
        if next_line >= 0:
            pos = next_line
            continue

        token = p
        if has_hex_prefix(buf, p, end):
            p += 2
        status = parse_hex(buf, &p, end, &addr)
        if status == NUMBER_MALFORMED:
            n_out[0] = n
            return fail(state, BAD_ADDRESS, token, line_start)
        if status == NUMBER_TOO_LARGE:
            n_out[0] = n
            return fail(state, ADDRESS_TOO_LARGE, token, line_start)

        p = skip_separators(buf, p, end)
        if at_line_end(buf, p, end):
            n_out[0] = n
            return fail(state, MISSING_OPERATION, p, line_start)
        token = p
        stop = token_end(buf, p, end)
        # The first letter picks the only words the token can be.
        write = (buf[token] & 0xDF) == c'W'
        if write:
            ok = token_is(buf, token, stop, b"WRITE") or token_is(buf, token, stop, b"WR")
        else:
            ok = token_is(buf, token, stop, b"READ") or token_is(buf, token, stop, b"RD")
        if not ok:
            n_out[0] = n
            return fail(state, BAD_OPERATION, token, line_start)

        p = skip_separators(buf, stop, end)
        if at_line_end(buf, p, end):
            n_out[0] = n
            return fail(state, MISSING_ARRIVAL, p, line_start)
        token = p
        status = parse_arrival(buf, &p, end, state, &cycle)
        if status != PARSE_OK:
            n_out[0] = n
            return fail(state, status, token, line_start)

        p = skip_separators(buf, p, end)
        if not at_line_end(buf, p, end):
            n_out[0] = n
            return fail(state, TRAILING_TEXT, p, line_start)

        _store_timed(arrival, address, is_write, n, cycle, addr, write, state)
        n += 1
        if p < end:
            state.line += 1
            p += 1
        pos = p
    n_out[0] = n
    return pos


cdef Py_ssize_t parse_ramulator_lines(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t end,
                                      int64_t* arrival, uint64_t* address, uint8_t* is_write,
                                      Py_ssize_t capacity, Py_ssize_t* n_out,
                                      ParseState* state) noexcept nogil:
    # LD|ST <address: 0x hex or decimal> [<arrival cycle>]
    cdef Py_ssize_t n = n_out[0]
    cdef Py_ssize_t line_start, p, token, stop, next_line
    cdef uint64_t addr = 0
    cdef int64_t cycle = 0
    cdef uint8_t write
    cdef int status
    cdef bint given
    while pos < end and n < capacity:
        line_start = pos
        p = skip_separators(buf, pos, end)
        next_line = skip_blank_or_comment(buf, p, end, state)
        if next_line >= 0:
            pos = next_line
            continue

        token = p
        stop = token_end(buf, p, end)
        if token_is(buf, token, stop, b"LD"):
            write = 0
        elif token_is(buf, token, stop, b"ST"):
            write = 1
        elif token_is(buf, token, stop, b"R") or token_is(buf, token, stop, b"W"):
            n_out[0] = n
            return fail(state, VECTOR_ADDRESS_TRACE, token, line_start)
        else:
            n_out[0] = n
            return fail(state, BAD_OPERATION, token, line_start)

        p = skip_separators(buf, stop, end)
        if at_line_end(buf, p, end):
            n_out[0] = n
            return fail(state, MISSING_ADDRESS, p, line_start)
        token = p
        if has_hex_prefix(buf, p, end):
            p += 2
            status = parse_hex(buf, &p, end, &addr)
        else:
            status = parse_decimal(buf, &p, end, UINT64_MAX, &addr)
        if status == NUMBER_MALFORMED:
            n_out[0] = n
            return fail(state, BAD_ADDRESS, token, line_start)
        if status == NUMBER_TOO_LARGE:
            n_out[0] = n
            return fail(state, ADDRESS_TOO_LARGE, token, line_start)

        p = skip_separators(buf, p, end)
        given = not at_line_end(buf, p, end)
        token = p
        if state.arrival_given >= 0 and given != state.arrival_given:
            n_out[0] = n
            return fail(state, ARRIVAL_NOW_GIVEN if given else ARRIVAL_NOW_MISSING, token,
                        line_start)
        if given:
            status = parse_arrival(buf, &p, end, state, &cycle)
            if status != PARSE_OK:
                n_out[0] = n
                return fail(state, status, token, line_start)
            p = skip_separators(buf, p, end)
            if not at_line_end(buf, p, end):
                n_out[0] = n
                return fail(state, TRAILING_TEXT, p, line_start)
        else:
            cycle = -1

        arrival[n] = cycle
        address[n] = addr
        is_write[n] = write
        n += 1
        if given:
            state.last_arrival = cycle
        if state.arrival_given < 0:
            state.arrival_given = given
            state.arrival_decided_on = state.line
        if p < end:
            state.line += 1
            p += 1
        pos = p
    n_out[0] = n
    return pos


cdef class TextParser:
    """Parses one text trace block by block, carrying the line number and arrival order across
    blocks. Each block handed to parse() must end at a line end, except the file's last one."""

    def __cinit__(self, int text_format):
        if text_format != TEXT_DRAMSIM3 and text_format != TEXT_RAMULATOR:
            raise ValueError(f"unknown text format code {text_format}")
        self.text_format = text_format
        self.state.line = 1
        self.state.last_arrival = -1
        self.state.arrival_given = -1
        self.state.arrival_decided_on = 0
        self.state.error = PARSE_OK
        self.state.error_token = 0
        self.state.error_line_start = 0

    def parse(self, const unsigned char[::1] block not None, Py_ssize_t start, Py_ssize_t end,
              int64_t[::1] arrival not None, uint64_t[::1] address not None,
              uint8_t[::1] is_write not None, Py_ssize_t out_start):
        """Parse block[start:end] into the arrays from index out_start until the lines or the
        arrays run out. Returns (offset of the first unparsed byte, number of requests written).
        After an error (see .error) the offset is the start of the offending line."""
        cdef Py_ssize_t capacity = min(arrival.shape[0], address.shape[0], is_write.shape[0])
        cdef Py_ssize_t n = out_start
        cdef Py_ssize_t pos
        if self.state.error != PARSE_OK:
            raise RuntimeError("TextParser.parse called again after a parse error")
        if not 0 <= start <= end <= block.shape[0]:
            raise ValueError(f"block range [{start}, {end}) outside a block of {block.shape[0]} bytes")
        if not 0 <= out_start <= capacity:
            raise ValueError(f"out_start {out_start} outside arrays of length {capacity}")
        if start == end or out_start == capacity:
            return start, 0
        with nogil:
            if self.text_format == TEXT_DRAMSIM3:
                pos = parse_dramsim3_lines(&block[0], start, end, &arrival[0], &address[0],
                                           &is_write[0], capacity, &n, &self.state)
            else:
                pos = parse_ramulator_lines(&block[0], start, end, &arrival[0], &address[0],
                                            &is_write[0], capacity, &n, &self.state)
        return pos, n - out_start

    @property
    def line(self):
        """Number (1-based) of the line at the read position; of the bad line after an error."""
        return self.state.line

    @property
    def error(self):
        """The ParseErrorCode of the last parse() (PARSE_OK = 0 if none)."""
        return self.state.error

    @property
    def error_token(self):
        """Byte offset in the block of the token that caused the error."""
        return self.state.error_token

    @property
    def error_line_start(self):
        """Byte offset in the block of the start of the line that caused the error."""
        return self.state.error_line_start

    @property
    def last_arrival(self):
        """Arrival cycle of the last request parsed (-1 if none gave one)."""
        return self.state.last_arrival

    @property
    def arrival_given(self):
        """-1 before the first request; then whether requests carry an arrival cycle."""
        return self.state.arrival_given

    @property
    def arrival_decided_on(self):
        """Line of the first request, whose form (with or without arrival) all must follow."""
        return self.state.arrival_decided_on
