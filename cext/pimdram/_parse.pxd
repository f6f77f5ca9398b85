# Declarations of the bulk text parser for request traces (DRAMsim3, Ramulator 2 load/store).
from libc.stdint cimport int64_t, uint8_t, uint64_t


# The text formats the parser reads (pimdram.trace.requests names them "dramsim3", "ramulator").
cpdef enum TextFormat:
    TEXT_DRAMSIM3 = 1
    TEXT_RAMULATOR = 2


# What went wrong on a line. The parser only returns these codes (with the line number and the
# byte offset of the offending token); pimdram.trace.requests turns them into TraceError messages.
cpdef enum ParseErrorCode:
    PARSE_OK = 0
    MISSING_ADDRESS = 1
    BAD_ADDRESS = 2
    ADDRESS_TOO_LARGE = 3
    MISSING_OPERATION = 4
    BAD_OPERATION = 5
    VECTOR_ADDRESS_TRACE = 6       # Ramulator 2 "R"/"W" lines: DRAM address vectors, not byte addresses
    MISSING_ARRIVAL = 7            # DRAMsim3: the arrival cycle is required
    BAD_ARRIVAL = 8
    ARRIVAL_TOO_LARGE = 9
    ARRIVAL_DECREASES = 10
    ARRIVAL_NOW_MISSING = 11       # earlier requests gave an arrival cycle, this one does not
    ARRIVAL_NOW_GIVEN = 12         # earlier requests gave no arrival cycle, this one does
    TRAILING_TEXT = 13


# Everything the parser carries from one block (and one call) to the next.
cdef struct ParseState:
    int64_t line              # 1-based number of the line that starts at the read position
    int64_t last_arrival      # arrival cycle of the previous request; -1 before the first
    int arrival_given         # -1: not decided yet (no request seen), 0: no arrival column, 1: present
    int64_t arrival_decided_on  # line of the first request, which decided arrival_given
    int error                 # a ParseErrorCode; PARSE_OK while all is well
    Py_ssize_t error_token    # byte offset, in the block, of the offending token
    Py_ssize_t error_line_start  # byte offset, in the block, of the start of the offending line


# Parse whole lines of buf[pos:end] into the output arrays from index n_out[0] up to capacity.
# Returns the offset of the first unparsed byte (a line start); n_out[0] is advanced. On an error,
# state.error is set and the returned offset is the start of the offending line.
cdef Py_ssize_t parse_dramsim3_lines(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t end,
                                     int64_t* arrival, uint64_t* address, uint8_t* is_write,
                                     Py_ssize_t capacity, Py_ssize_t* n_out,
                                     ParseState* state) noexcept nogil

cdef Py_ssize_t parse_ramulator_lines(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t end,
                                      int64_t* arrival, uint64_t* address, uint8_t* is_write,
                                      Py_ssize_t capacity, Py_ssize_t* n_out,
                                      ParseState* state) noexcept nogil


# A resumable parser of one text trace: holds the ParseState across blocks.
cdef class TextParser:
    cdef ParseState state
    cdef readonly int text_format
