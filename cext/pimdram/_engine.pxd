# Declarations of the event-driven memory-controller engine (see _engine.pyx).
cimport cython
from pimdram._types cimport cycle_t, addr_t, idx_t, int64_t, int32_t, uint8_t, uint32_t, uint64_t


# Completed requests waiting to be taken by the host (pimdram.MemorySystem), in the order of their
# completion cycle: one ring per kind (reads, writes), whose latencies are fixed, so each ring is
# sorted by cycle as it fills.
cdef struct CompletionRing:
    int32_t* rec                # request record
    int64_t* done               # completion cycle
    int64_t* seq                # order of the requests' last issues (ties between the rings)
    int64_t head, count, cap


# One queued access (a request slot): what the frontend, the scheduler and the issue read of it
# lies in one 64-byte cache line (separate arrays per field cost a cache miss per field once the
# slots of 16 channels' queues outgrow the first-level cache)
cdef struct SlotRec:
    int64_t seq                 # the access's position in the frontend's order (its age)
    int64_t arrive              # cycle it was accepted
    int32_t row, col, bank
    int32_t write               # int32, not uint8: a byte store would alias every field in the hot loop
    int32_t cls                 # 0 none yet, 1 miss (needed ACT), 2 conflict (needed PRE)
    int32_t next                # next slot of its bank list or of the free list (-1: none)
    int32_t req                 # the access's request record (track only)
    int32_t released            # the request has left its queue (leave_at_activate)
    int32_t pad[4]


# An entry of an update list (_engine_timing.pxi): an issue raises a channel's earliest-table entry
# `off` to its cycle + lat
cdef struct UpdEntry:
    int32_t off                 # node * n_class + class
    int32_t lat


# Where the update lists of a (command, node) start: plain entries, window-row entries
cdef struct UpdStart:
    int32_t upd
    int32_t wupd


# A bank's queues, open row and cached candidate: what a tick, an issue and the frontend read of
# it in one 64-byte cache line
cdef struct BankRec:
    int64_t cand_ready          # lower bound on the cycle the bank's next command is legal
    int32_t cand_cmd            # cached candidate: command (-1: recompute), slot, the slot's list
    int32_t cand_slot           # predecessor, whether it is a column command
    int32_t cand_prev
    int32_t cand_col
    int32_t open_row            # -1: closed
    int32_t served              # column commands since the row opened
    int32_t q_head[2]           # the bank's lists of slots: [list] (reads, writes; list 0 only with
    int32_t q_tail[2]           # bank queues)
    int32_t q_count[2]
    int32_t q_hits[2]           # requests of the list that hit the open row


cdef class Engine

# one channel's tick, compiled for an organisation and scheduler (chosen once per engine)
ctypedef void (*tick_fn_t)(Engine, int, int64_t) noexcept nogil


@cython.final
cdef class Engine:
    # --- organisation ---------------------------------------------------------------------
    cdef int n_channels, n_levels, bank_level, n_nodes, n_banks, n_cmd
    cdef int level_count[8]        # children per parent, per level
    cdef int level_offset[8]       # first node id of each level (within one channel)
    cdef int level_size[8]         # nodes of each level per channel
    cdef int64_t level_span[64]    # [l * 8 + m]: nodes of level m under one node of level l (m >= l)
    cdef int32_t* node_level       # [node] -> level of the node
    cdef int32_t* node_anc         # [node * n_levels + level] -> ancestor node id
    cdef int32_t* node_first_bank  # [node] -> first bank index under the node
    cdef int32_t* node_n_banks     # [node] -> banks under the node
    cdef int32_t* bank_node        # [bank] -> node id of the bank

    # --- commands and timing ------------------------------------------------------------------
    cdef int n_class                # timing classes: commands that every constraint row treats alike
    cdef int32_t* cmd_class         # [cmd] -> timing class (column of the earliest tables)
    cdef int32_t* cmd_kind
    cdef int32_t* cmd_scope
    cdef int32_t* cmd_bus
    cdef int32_t* cmd_bus_cycles
    cdef int32_t* row_start        # [cmd] first constraint row with from == cmd (rows sorted by from)
    cdef int32_t* row_level
    cdef int32_t* row_to           # timing class
    cdef int64_t* row_latency
    cdef int32_t* row_window
    cdef int32_t* row_sibling
    cdef int64_t* row_pos_off      # [row] offset into hist_pos for window rows, -1 otherwise
    cdef int64_t* row_hist_off     # [row] offset into hist for window rows
    cdef int64_t* hist             # window ring buffers: [row_hist_off + (ch * n_nodes + node) * window + k]
    cdef int64_t* hist_pos         # [row_pos_off + ch * n_nodes + node]: issues recorded so far
    cdef UpdStart* upd_start       # [cmd * n_nodes + node]: first entry of the command's update lists at node
    cdef UpdEntry* upd             # entries of the plain update lists
    cdef int32_t* wupd_row         # window entry: the row, applied through the ring buffers
    cdef int32_t* wupd_node        # window entry: the node
    cdef int64_t* earliest         # [(ch * n_nodes + node) * n_class + class]
    cdef int64_t* bus_free         # [ch * 2 + bus]
    cdef bint separate_bus
    cdef int64_t read_latency, write_latency
    cdef int cmd_act, cmd_pre, cmd_rd, cmd_wr, cmd_rda, cmd_wra, cmd_pre_refresh

    # --- refresh ------------------------------------------------------------------------------
    cdef int ref_cmd, ref_level, n_ref_nodes
    cdef int64_t ref_interval
    cdef int64_t* ref_due          # [ch * n_ref_nodes + i]
    cdef uint8_t* ref_pending
    cdef int32_t* ref_scan         # [ch * n_ref_nodes + i] (eager engines): the pending refresh's banks before
                                    # this one are closed (blocked, they cannot open again until it is done)
    cdef int64_t* ref_quiet_until  # [ch]: no refresh of the channel is pending or due before this cycle
    cdef uint8_t* bank_blocked     # [ch * n_banks + b] refresh pending on the bank's node

    # --- controller policy --------------------------------------------------------------------
    cdef int read_queue, write_queue, bank_queue, scheduler, row_hit_cap, closed_page
    cdef int wq_high, wq_low
    cdef bint leave_at_activate     # a request leaves its queue when its row opens (Ramulator's active buffer)
    cdef int32_t* bank_active       # [ch * n_banks + b] slot of the request that left its queue at activate and
                                    # waits for its column command (-1: none); the bank serves it first

    # --- request slots and queues (per channel) -------------------------------------------------
    cdef int n_slots
    cdef SlotRec* sl               # [slot] (ch * n_slots + i), 64-byte aligned
    cdef BankRec* bk               # [ch * n_banks + b], 64-byte aligned
    cdef int32_t* free_head        # [ch]
    cdef uint64_t* busy_mask       # [ch * mask_words + w]: banks with a non-empty list (either list)
    cdef int mask_words
    cdef uint64_t* pend            # [ch * mask_words + w]: banks to look at on the channel's next tick
    cdef uint64_t* wheel           # [(ch * 64 + slot) * mask_words + w]: banks to look at in cycle = slot (mod 64)
    cdef uint64_t* wheel_occ       # [ch]: non-empty wheel slots
    cdef tick_fn_t tick_fn          # _tick_in specialised for this engine (see _tick_for)
    cdef bint eager                 # FR-FCFS without PIM, active buffer or bank queues: a tick evaluates the
                                    # banks it leaves behind itself (_settle) instead of ticking again next cycle
    cdef uint64_t* fresh           # [ch * mask_words + w] (eager): banks evaluated at the end of the channel's
                                    # last tick: their cached cycle is exact until the channel issues again
    cdef int32_t* bank_abs         # [(ch * n_banks + b) * n_levels + l]: offset of the bank's level-l ancestor in the earliest table
    cdef int32_t* bank_pw          # [b] the bank's power node (index within its level)
    cdef int32_t* rr_next          # [ch] round-robin scheduler: bank to look at first
    cdef int32_t* rq_count         # [ch] reads waiting in the channel's read queue
    cdef int32_t* wq_count
    cdef int32_t* stage            # [ch * (rq + wq) + i]: staging FIFOs (bank_queue > 0)
    cdef int32_t* bankq_total      # [ch] entries in all bank queues
    cdef int32_t* stage_scan       # [ch * 2 + writes]: leading staged entries whose bank queues are full
    cdef int32_t* drain            # [ch] writes left to drain (bank_queue mode) / write mode flag
    cdef int32_t* outstanding      # [ch] accesses accepted and not yet issued
    cdef int64_t* wake             # [ch] next cycle the channel must be looked at
    # the channels by their wake (kept in _run for 16 to 64 channels): slot k holds those whose
    # wake is the cycle = k (mod 64) within the next 64, the far set later ones (and at the
    # start of a run any due already)
    cdef uint64_t cw_slot[64]
    cdef uint64_t cw_occ           # non-empty slots
    cdef uint64_t cw_far
    cdef uint64_t cw_woken         # channels whose wake the frontend lowered (moved by _run)
    cdef int64_t cw_old[64]        # [ch] their wake before
    cdef bint cw_on                # _run keeps the channel wheel

    # --- power bookkeeping ----------------------------------------------------------------------
    cdef int pw_level, n_pw_nodes
    cdef int32_t* pw_open          # [ch * n_pw_nodes + i] open banks
    cdef int64_t* pw_since
    cdef int64_t* active_cycles    # [ch]

    # --- processing in memory ---------------------------------------------------------------
    cdef int pim_mode               # 0 no PIM, 1 concurrent with normal traffic, 2 blocked (normal waits)
    cdef int32_t* cmd_sel           # [cmd] 0: every bank under the node; P > 0: bank k of every P consecutive
                                    # banks (the same bank in every node of the command's selection level)
    cdef int32_t* sel_base          # [cmd] first selection list of a selecting command (see _sel_key)
    cdef int32_t* cmd_rb            # [cmd] row buffer used: 0 normal, 1 the PIM row buffer
    cdef int32_t* cmd_unit          # [cmd] PIM unit occupied (mac, unit_op) or -1
    cdef int32_t* sel_start         # [_sel_key(cmd, node, k)]: nodes below `node` holding a selected bank
    cdef int32_t* sel_nodes
    cdef int32_t* pim_row           # [ch * n_banks + b] open row of the PIM row buffer, -1 closed
    cdef int unit_total             # unit instances per channel (all units)
    cdef int32_t* unit_off          # [unit] first instance of the unit in a channel's unit_free
    cdef int32_t* unit_div          # [unit] banks per instance
    cdef int64_t* unit_free         # [ch * unit_total + instance] cycle the instance is free again
    cdef object _prog_arrays
    cdef int32_t* p_cmd             # command programs, grouped by channel, in issue order
    cdef int32_t* p_node
    cdef int32_t* p_sel
    cdef int32_t* p_row
    cdef int64_t* p_occ             # cycles the command keeps its unit busy (and completes after)
    cdef int64_t* p_pos             # [ch] next program command
    cdef int64_t* p_end             # [ch] end of the channel's program
    cdef uint8_t* pim_claim         # [ch] blocked mode: the running program holds every bank
    cdef int32_t* pim_open          # [ch] banks holding a row a PIM activate opened
    cdef uint8_t* pim_yield         # [ch] the PIM program issued last tick: normal traffic goes first
    cdef int64_t pim_error          # program index of a command that cannot be issued (-1: none)

    # --- frontend -----------------------------------------------------------------------------
    cdef object _feed_arrays
    cdef object _dec_tables         # decode(): byte tables of the address mapping (_decode_tables; False: none)
    cdef int64_t f_n, f_pos, f_base
    cdef int32_t* f_ch
    cdef int32_t* f_bank
    cdef int32_t* f_row
    cdef int32_t* f_col
    cdef uint8_t* f_write
    cdef int64_t* f_arrival
    cdef int64_t now
    cdef bint frontend_pending_at_now
    cdef bint input_done            # the last chunk has been fed: nothing more will arrive
    cdef bint front_woke            # the frontend set some channel's wake to the next cycle
    cdef int64_t last_progress, stall_limit
    cdef int offer_rate             # requests offered per cycle (0: as many as the queues take)
    cdef int64_t offer_cycle        # the cycle offer_count counts
    cdef int offer_count
    cdef uint8_t* f_first           # 1 for the first access of a request (NULL: every access is one)

    # --- host-simulator API (pimdram.MemorySystem; _engine_api.pxi) ------------------------------
    cdef bint track                 # keep a record per request and report completions
    cdef int32_t* f_req             # [frontend entry] request record (track only)
    cdef int64_t f_waiting          # requests in the frontend none of whose accesses is accepted (track only)
    cdef object _batch_arrays       # offer_batch()'s frontend arrays, filled up to f_n (track only)
    cdef int32_t r_cap, r_free      # request records: capacity, head of the free list
    cdef int64_t r_live             # records in use (sent, not yet taken as completed)
    cdef int64_t* r_tag             # the host's tag
    cdef int64_t* r_accept          # cycle the request's first access was accepted (-1: not yet)
    cdef int32_t* r_left            # accesses not yet issued; in a free record, the next free one
    cdef int64_t c_seq
    cdef CompletionRing rings[2]
    cdef int32_t a_cap              # the engine's own frontend entries for one request (offer)
    cdef int32_t* a_ch
    cdef int32_t* a_bank
    cdef int32_t* a_row
    cdef int32_t* a_col
    cdef uint8_t* a_wr
    cdef int64_t* a_arr
    cdef int32_t* a_req
    cdef uint8_t* a_first

    # --- address mapping ------------------------------------------------------------------------
    cdef int n_fields, offset_bits
    cdef int field_id[24]
    cdef int field_bits[24]

    # --- statistics -----------------------------------------------------------------------------
    cdef int64_t* cmd_count        # [ch * n_cmd + cmd]
    cdef int64_t* n_read
    cdef int64_t* n_write
    cdef int64_t* row_hits
    cdef int64_t* row_misses
    cdef int64_t* row_conflicts
    cdef int64_t* lat_sum          # [ch * 2 + kind]
    cdef int64_t* lat_max
    cdef int64_t* lat_hist         # [(ch * 2 + kind) * N_HIST + bin]
    cdef int64_t last_done
    cdef int64_t n_ticks, n_evals   # engine work: channel ticks, candidate evaluations
    cdef int64_t accepted
    cdef int64_t bw_window
    cdef int bw_shift               # bw_window == 1 << bw_shift
    cdef int bw_bins
    cdef int64_t* bw_read
    cdef int64_t* bw_write
    cdef int access_bytes

    # --- command log ----------------------------------------------------------------------------
    cdef bint logging
    cdef int64_t log_n, log_cap
    cdef int64_t* log_cycle
    cdef uint8_t* log_cmd
    cdef int32_t* log_ch
    cdef int32_t* log_node
    cdef int32_t* log_row
    cdef int32_t* log_col

    cdef list _keep
    cdef object _active, _cmd_count, _n_read, _n_write, _row_hits, _row_misses, _row_conflicts
    cdef object _lat_sum, _lat_max, _lat_hist, _bw_read, _bw_write

    cdef object _keep_arr(self, a)
    cdef void* _aligned(self, size_t nbytes)
    cdef object _i32(self, n, fill=*)
    cdef object _i64(self, n, fill=*)
    cdef object _u8(self, n, fill=*)

    # The simulation's functions take the Engine as their first argument and live in the parts
    # _engine.pyx includes (Cython allows include only at module level): _engine_timing.pxi,
    # _engine_schedule.pxi, _engine_tick.pxi, _engine_refresh.pxi, _engine_pim.pxi,
    # _engine_stats.pxi, _engine_api.pxi.
