# The type vocabulary shared by pimdram's Cython modules.
from libc.stdint cimport int64_t, int32_t, uint64_t, uint32_t, uint8_t

ctypedef int64_t cycle_t      # engine time: cycles of the command clock
ctypedef uint64_t addr_t      # byte address
ctypedef int32_t idx_t        # node, bank, slot, row and column indices

cdef extern from *:
    """
    #define PIMDRAM_CYCLE_NEVER ((int64_t)0x3FFFFFFFFFFFFFFFLL)
    #define PIMDRAM_MAX_CYCLE ((int64_t)1 << 60)
    """
    const int64_t CYCLE_NEVER "PIMDRAM_CYCLE_NEVER"   # "no event pending"
    # the latest cycle an input (an arrival, a cycle to run to) may name: far below CYCLE_NEVER,
    # so that a time plus any latency stays a time, never "no event" or an overflow
    const int64_t MAX_CYCLE "PIMDRAM_MAX_CYCLE"

# Command kinds the engine implements once (pimdram.config.memory.COMMAND_KINDS, same order).
cdef enum CommandKind:
    KIND_ACTIVATE = 0
    KIND_PRECHARGE = 1
    KIND_READ = 2
    KIND_WRITE = 3
    KIND_READ_PRECHARGE = 4
    KIND_WRITE_PRECHARGE = 5
    KIND_REFRESH = 6
