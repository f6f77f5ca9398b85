"""AttAcc's head-wise mapping (Park et al., ASPLOS 2024; shared/reference/pim_designs.md) as
command programs for the engine, for the three AttAcc variants and the designs that reuse its
commands (PAPI's FC-PIM and Attn-PIM).

Mapping. Each attention instance (one request and one KV head: its K and V, L tokens of d
dimensions) lives in one channel; instances go to channels round robin, so the 16 channels of
a stack work on 16 heads at a time. A GEMV over a matrix of L rows (tokens) by d columns
(dimensions) is made of MAC groups, as in AttAcc's trace generators:

    mode       MAC command (banks)                       a MAC group          groups
    bank       MACAB: one 32 B column of every bank       ceil(d/64) MACs      ceil(L/16)
    bankgroup  MACSB: bank k of every bank group          ceil(d/16) MACs      ceil(L/16)
    buffer     MACPB: bank k of each pseudo-channel       ceil(d/16) MACs      ceil(L/2)

(bank level: tokens over the 16 pseudo-channel x SID x bank-group units, dimensions over the 4
banks of a group; bank-group level: tokens over the units, 16 dimensions per MAC; buffer die:
two tokens per MACPB, one per pseudo-channel, since the command is broadcast to both). The
score GEMV (q . K^T) runs its groups token group by token group; the context GEMV (s . V) runs
the same number of MACs output group by output group (ceil(d/64) groups of ceil(L/16) MACs,
ceil(d/16) of ceil(L/16), ceil(d/16) of ceil(L/2)).

Where a MAC reads. The n-th MAC of a GEMV reads column (n / T) mod 32 of its bank, in row
n / (32 T) of the GEMV's rows, T being the banks a mode cycles through: one (bank level: every
bank at once), the 4 banks of a group (bank-group level: 32 MACs on bank k, then 32 on bank
k+1, ...), or the 32 banks of a pseudo-channel (buffer die: round robin over the 8 SID x bank-
group units first, then over the banks, so consecutive MACPBs meet the short nBL/nCCD_S
spacing). These are the address sequences of AttAcc's generators.

Rows. A bank's row is opened before its first MAC and closed after its last, and the program
places those activates and precharges as AttAcc's scheduler issues them (it may issue row
commands ahead of the column commands of its queue, up to and past BARRIERs): a precharge
ceil((nRTP_L - 1) / s) MACs after the bank's last MAC (and ceil((nRAS - 1) / s) after its
activate; precharges that would share a gap go one per MAC), its next activate ceil(nRP / s)
MACs later and ceil(nRCD / s) MACs before the bank's next MAC, where room allows (s = the MAC
issue interval: the channel's MAC-to-MAC spacing or the unit time, whichever is longer). So at bank-
group level the next bank's row opens while this bank computes, and at buffer level the banks
change rows in a rolling wave. Every nREFI worth of MACs (at a row boundary) the program closes
every row before opening the next, so that a due refresh (which waits for PIM rows to close)
gets its turn.

Blocks and the BARRIER. AttAcc's traces close every block of 16 score MAC groups (every context
output group) with a BARRIER, an in-order fence for the column commands of its PIM queue:
those after it wait until everything before it has issued. A block carries the previous
block's MVSB (results out: 8 per score block at bank and bank-group level, 1 at buffer level;
8, 2 or 1 per context group) and its share of the other head's buffer traffic (below). The
engine issues a program strictly in order, so the fence needs no command of its own: every
column command of block j+1 follows block j's MACs, MVSB, WRGB and MVGB in the program. (It is
stronger than the fence: AttAcc's scheduler may reorder inside a block, issuing whatever is
ready; the program stands in for that by its order.) The block's moves go evenly between its
MACs, where AttAcc's scheduler issues them, in the MACs' gaps; a GEMV's last MVSB and the
precharges of its last rows go before the next GEMV's first MAC, with the next activates, the
query (WRGB) or softmax moves that precede it, in the order AttAcc's scheduler gives them
(row commands overlapping the moves; _Builder._carried).

Moves. A move addresses a bank group, as AttAcc's traces do (all in pseudo-channel 0): WRGB
and, at buffer level, every move go to bank group 0 of SID 0 (so consecutive ones are nCCD_L
apart); the 8 MVSB of a score block go to the 8 SID x bank-group pairs, those of a context
group to SID 0 and 1 of bank group 0; MVGB round robin over the 8 pairs. Moves are spaced
nBL per pseudo-channel, nCCD_S per SID and nCCD_L per bank group (the designs' rows).

Heads. Heads of a channel run in pairs, as in AttAcc's traces: (1) head i's query into the
GEMV buffers (WRGB), then i's score blocks, each with a share of head i+1's WRGB; (2) i+1's score
blocks, the softmax of i (SFM) in the first and the move of its output back to the GEMV buffers
(MVGB) spread over the second half; (3) i's context blocks, SFM of i+1 in the first and its
MVGB over the second half; (4) i+1's context blocks. A lone last head runs WRGB, score, SFM,
MVGB, context. Per head (pim_designs.md, the generators):

    mode       WRGB          MVSB (score + context)         MVGB
    bank       4 ceil(d/64)  8 ceil(L/256) + 8 ceil(d/64)   8 ceil(L/256)
    bankgroup  ceil(d/16)    8 ceil(L/256) + 2 ceil(d/16)   8 ceil(L/256)
    buffer     ceil(d/16)    ceil(L/32) + ceil(d/16)        ceil(L/32)

Moves wait for the units whose results they move (MVSB for the GEMV units, MVGB for the
softmax unit), so a softmax longer than the other head's score shows.

Compute time. A MAC command multiplies access_bytes / 2 FP16 weights in each bank by `reuse`
query rows (g = heads / kv_heads under GQA, times the speculation length); a unit of
fpus x lanes MACs per cycle shared by banks_per_unit banks is busy ceil(work / rate) cycles,
which spaces the MACs once it exceeds the command spacing (nCCD_AB).
"""
import math
from dataclasses import dataclass, field
from typing import Dict

import numpy as np

from ..errors import ConfigError
from .program import ProgramBuilder, assemble, column, mac_occupancy

# mode -> (activate, mac, precharge) command names
MODES = {
    "bank": ("ACTAB", "MACAB", "PREAB"),
    "bankgroup": ("ACTSB", "MACSB", "PRESB"),
    "buffer": ("ACTPB", "MACPB", "PREPB"),
}
BLOCK_GROUPS = 16        # score MAC groups per block (a BARRIER after each)

# AttAcc's shapes per mode: tokens per MAC group, dimensions per MAC command
_GROUP_TOKENS = {"bank": 16, "bankgroup": 16, "buffer": 2}
_MAC_DIMS = {"bank": 64, "bankgroup": 16, "buffer": 16}
# MVSB per score block and per context output group
_SCORE_MVSB = {"bank": 8, "bankgroup": 8, "buffer": 1}
_CONTEXT_MVSB = {"bank": 8, "bankgroup": 2, "buffer": 1}


def attacc_mode(spec):
    """Which AttAcc variant (bank, bankgroup or buffer) a PIM design's lowering declares
    (pim.lowering: {mapping: attacc, mode: ...}; the config checks it has the commands)."""
    lowering = spec.pim.lowering if spec.pim is not None else {}
    if lowering.get("mapping") != "attacc":
        raise ConfigError(f"{spec.name}: not an AttAcc-style design (its pim.lowering is not mapping: attacc)")
    return lowering["mode"]


def fc_row_granule(mode):
    """Output rows of an FC GEMV that one MAC group covers in a channel (rows round up to it)."""
    return _GROUP_TOKENS[mode]


def macs_per_gemv(mode, rows, cols):
    """MAC commands of one GEMV over a rows x cols FP16 matrix in one channel."""
    return math.ceil(rows / _GROUP_TOKENS[mode]) * math.ceil(cols / _MAC_DIMS[mode])


def _wrgb(mode, d):
    return 4 * math.ceil(d / 64) if mode == "bank" else math.ceil(d / 16)


def _mvgb(mode, L):
    return math.ceil(L / 32) if mode == "buffer" else 8 * math.ceil(L / 256)


def _score_blocks(mode, L):
    return math.ceil(math.ceil(L / _GROUP_TOKENS[mode]) / BLOCK_GROUPS)


def softmax_cycles(spec, L, reuse):
    """Cycles the softmax unit takes for L scores of `reuse` query rows (1 without a unit)."""
    unit = spec.pim.units.get("softmax")
    if unit is None:
        return 1
    return max(1, math.ceil(L * reuse / unit.elements_per_cycle) + unit.latency)


def attention_key(spec, L, d, reuse):
    """What the programs of an attention instance (attention_layer, attention_piece) depend on
    besides the design: contexts L with equal keys give identical programs (tested), so a
    kernel replay simulates one of them for all (a generation's steps share one per 16 tokens
    at bank level)."""
    mode = attacc_mode(spec)
    return (math.ceil(L / _GROUP_TOKENS[mode]), _mvgb(mode, L), softmax_cycles(spec, L, reuse), d, reuse)


def attacc_head_counts(mode, L, d):
    """Commands per attention instance (one head of one request) per channel, as AttAcc's trace
    generators issue them (pim_designs.md; the module docstring)."""
    mac = MODES[mode][1]
    return {
        "WRGB": _wrgb(mode, d),
        mac: 2 * macs_per_gemv(mode, L, d),
        "MVSB": _SCORE_MVSB[mode] * _score_blocks(mode, L) + _CONTEXT_MVSB[mode] * math.ceil(d / _MAC_DIMS[mode]),
        "SFM": 1,
        "MVGB": _mvgb(mode, L),
    }


@dataclass
class AttentionProgram:
    """Per-channel command programs as the engine's feed_program columns, plus bookkeeping."""
    spec: object
    mode: str
    columns: Dict[str, np.ndarray]          # channel, command, node, select, row, occupancy
    instances_per_channel: np.ndarray
    counts: Dict[str, int] = field(default_factory=dict)   # command name -> total issued


class _Builder(ProgramBuilder):
    """AttAcc programs: GEMVs as blocks of MACs with their moves, rows opened and closed ahead."""

    def __init__(self, spec, engine_node_id, mode, reuse):
        super().__init__(spec, engine_node_id)
        self.mode = mode
        self.act, self.mac, self.pre = (spec.command_index(n) for n in MODES[mode])
        mac = spec.commands[self.mac]
        self.top = self.node_id(())
        # the banks a GEMV cycles through (T): 1 (all at once), those of a group or of a PC
        self.cycle = max(1, spec.selection_period(mac))
        # a unit shared by several banks (PAPI Attn-PIM) gets all of them from an all-bank MAC,
        # one bank from a same-bank or broadcast MAC
        self.mac_occupancy = mac_occupancy(spec, mac, reuse, spec.banks_per_channel if mode == "bank" else 1)
        self.reuse = reuse
        self.softmax = spec.pim.units.get("softmax")
        # the program's lookahead for row commands, in MACs (module docstring)
        t = spec.timing
        s = max([1, self.mac_occupancy] + [r.latency for r in spec.constraints
                                           if r.from_cmd == self.mac and r.to_cmd == self.mac and r.level == 0])
        self.close_after = math.ceil((t["nRTP_L"] - 1) / s)
        self.open_after = math.ceil(t["nRP"] / s)
        self.open_ahead = math.ceil(t["nRCD"] / s)
        self.ras_after = math.ceil((t["nRAS"] - 1) / s)
        self.fence_macs = spec.refresh.interval // s if spec.refresh is not None else None
        # what a GEMV leaves to the next: its last MVSB, and the banks of its last rows to close
        self.carry, self.carry_close = [], []
        self.close_among_moves = math.ceil((t["nRTP_L"] - 1) / t["nBL"])
        self.open_among_moves = math.ceil((t["nRP"] - 1) / t["nBL"])
        self.since_close = 0     # MACs since every row was last closed (see _fences)
        self._segment_memo = {}

    def state(self):
        """What the program built so far passes to what follows (lower.uniform resumes from
        it): how many blocks, the command counts, what the last GEMV carries, the MACs since
        every row was closed."""
        return len(self.blocks), self.counts.copy(), list(self.carry), list(self.carry_close), self.since_close

    def resume(self, state, blocks):
        """Continue from `state` (of state()) of a builder of the same design whose blocks are
        `blocks`."""
        n, counts, carry, carry_close, since_close = state
        self.blocks = blocks[:n]
        self.counts = counts.copy()
        self.carry, self.carry_close, self.since_close = list(carry), list(carry_close), since_close

    # --- moves ---------------------------------------------------------------------------
    def moves(self, name, n, occupancy=0, units=None):
        """n move commands `name` as (command, node, occupancy). A move addresses a bank group as
        in AttAcc's traces: all of them pseudo-channel 0, the sequence cycling through `units`,
        (SID, bank group) pairs (default: (0, 0) only). The command's scope cuts the path (SFM:
        the channel)."""
        c = self.names.index(name)
        scope = self.spec.commands[c].scope
        units = units or [(0, 0)]
        return [(c, self.node_id((0, *units[i % len(units)])[:scope]), occupancy) for i in range(n)]

    def score_mvsb(self):
        """The MVSB of a score block: bank and bank-group level, one per (SID, bank group)
        accumulator, bank groups outermost; buffer die, one."""
        if self.mode == "buffer":
            return self.moves("MVSB", 1)
        return self.moves("MVSB", 8, units=[(sid, bg) for bg in range(4) for sid in range(2)])

    def context_mvsb(self):
        """The MVSB of a context output group: 8 (bank level: per bank and SID, bank group 0),
        2 (bank-group level: per SID) or 1 (buffer die)."""
        return self.moves("MVSB", _CONTEXT_MVSB[self.mode], units=[(0, 0), (1, 0)])

    def mvgb(self, L):
        """The softmax output back to the GEMV buffers: ceil(L/256) to each (SID, bank group)
        (bank and bank-group level; AttAcc's traces write them SID by SID, bank group by bank
        group, and its scheduler, free to reorder them within a block, issues them round robin
        over the bank groups, nBL apart: so here), or all to one bank group (buffer die)."""
        n = _mvgb(self.mode, L)
        if self.mode == "buffer":
            return self.moves("MVGB", n)
        return self.moves("MVGB", n, units=[(sid, bg) for sid in range(2) for bg in range(4)])

    def emit_moves(self, ch, moves):
        if moves:
            cmd, node, occ = (np.array(x) for x in zip(*moves))
            self.block(ch, cmd, node, 0, 0, occ)

    def flush(self, ch):
        """Issue what the last GEMV left for the next (its last MVSB, the precharges of its last
        rows): at the end of a piece or program, or before commands that are not a GEMV's."""
        entries = self._carried()
        if entries:
            self.block(ch, *(np.array(x) for x in zip(*entries)))

    def _carried(self, lead=(), opens=(), fence=False):
        """What goes before a GEMV's first MAC, in issue order: the carried moves with the
        carried precharges among them (after the moves that take about nRTP_L; moves issue
        about nBL apart), the lead moves, and among those the activates of the banks just
        precharged (about nRP after the precharges); the activates of banks that are closed
        go between all these where their turn on the row bus comes (_by_time). That is the
        order in which AttAcc's scheduler issues them, row commands overlapping the moves.
        `opens` lists (select, row) of the GEMV's activates before its first MAC; with `fence`
        every activate waits for the precharges (all rows closed in between, for a due
        refresh). Returns [(command, node, select, row, occupancy)]."""
        closes = set(self.carry_close) if not fence else {sel for sel, _ in opens}
        moves = [(c, n, 0, 0, o) for c, n, o in self.carry]
        k = min(len(moves), self.close_among_moves)
        tail = moves[k:] + [(c, n, 0, 0, o) for c, n, o in lead]
        j = min(len(tail), self.open_among_moves)
        act = lambda opened: [(self.act, self.top, sel, row, 0) for sel, row in opens  # noqa: E731
                              if (sel in closes) == opened]
        rest = (moves[:k] + [(self.pre, self.top, int(sel), 0, 0) for sel in self.carry_close]
                + tail[:j] + act(True) + tail[j:])
        self.carry, self.carry_close = [], []
        return self._by_time(act(False), rest)

    def _by_time(self, acts, rest):
        """Activates merged into a sequence of other commands by when each would issue on its
        own: activates one per row-bus slot of theirs; the others a move nBL after the last
        (nCCD_L after a move to the same bank group), a row command a cycle after it.
        Activates go first on a tie."""
        t = self.spec.timing
        slot = self.spec.commands[self.act].bus_cycles
        when, last, prev = [], -1, None
        for c, node, *_ in rest:
            if self.spec.commands[c].kind in ("activate", "precharge"):
                last += 1
            else:
                last += 1 if prev is None else (t["nCCD_L"] if node == prev else t["nBL"])
                prev = node
            when.append(last)
        out, i = [], 0
        for n, a in enumerate(acts):
            while i < len(rest) and when[i] < n * slot:
                out.append(rest[i])
                i += 1
            out.append(a)
        return out + rest[i:]

    def softmax_cycles(self, L):
        return softmax_cycles(self.spec, L, self.reuse)

    # --- GEMVs ---------------------------------------------------------------------------
    def rows_per_gemv(self, rows, cols):
        return math.ceil(macs_per_gemv(self.mode, rows, cols) / (self.cycle * self.spec.columns))

    def gemv(self, ch, rows, cols, first_row, extra=None, lead=()):
        """The score-like GEMV over a rows x cols matrix stored from row first_row (q . K^T, or an
        FC layer's output rows by its inputs): blocks of 16 MAC groups, each carrying the previous
        block's MVSB; `extra(j, n_blocks)` gives more moves for block j, `lead` moves go before
        the first MAC (after the first activates: AttAcc's WRGB before its first BARRIER).
        Returns the next free row."""
        m = self.mode
        per_group = math.ceil(cols / _MAC_DIMS[m])
        groups = math.ceil(rows / _GROUP_TOKENS[m])
        sizes = [min(BLOCK_GROUPS, groups - g) * per_group for g in range(0, groups, BLOCK_GROUPS)]
        return self._gemv(ch, sizes, first_row, self.score_mvsb, extra, lead)

    def context_gemv(self, ch, L, d, first_row, extra=None, lead=()):
        """The context GEMV s . V (V: L x d from row first_row): one block per output group of
        _MAC_DIMS dimensions, each carrying the previous group's MVSB."""
        m = self.mode
        per_group = math.ceil(L / _GROUP_TOKENS[m])
        sizes = [per_group] * math.ceil(d / _MAC_DIMS[m])
        return self._gemv(ch, sizes, first_row, self.context_mvsb, extra, lead)

    def _gemv(self, ch, sizes, first_row, block_mvsb, extra, lead):
        spec = self.spec
        n = int(sum(sizes))
        T, C = self.cycle, spec.columns
        idx, pos, phase, mac_sel, segs, first, last, s_pos, s_phase, nxt, prv, next_first = self._segments(n)
        n_rows = int(phase[-1]) + 1
        if first_row + n_rows > spec.rows:
            raise ValueError(f"a GEMV of {n} MACs from row {first_row} needs {first_row + n_rows} rows per bank "
                             f"in a channel; the memory has {spec.rows}")

        # entries: (position: before MAC p, order within that gap, command, node, select, row, occupancy);
        # the order within a gap: what the previous GEMV carried, activates of closed banks, lead
        # moves, (from position 1) the blocks' moves, precharges, activates, the MAC
        parts = []

        def add(where, order, cmd, node, sel, row, occ):
            k = len(where)
            parts.append(tuple(column(v, k, np.int64) for v in (where, order, cmd, node, sel, row, occ)))

        add(idx, 3, self.mac, self.top, mac_sel, first_row + phase, self.mac_occupancy)
        # a precharge goes before the bank's next activate, and before the next fence: at row
        # boundaries, every nREFI worth of MACs, all rows close before any opens
        fences = self._fences(n, T * C)
        limit = next_first
        if len(fences):
            after = np.searchsorted(fences, last, side="right")             # first fence after the segment
            limit = np.where(after < len(fences), np.minimum(limit, fences[np.minimum(after, len(fences) - 1)]), limit)
        close = np.minimum(last + 1 + self.close_after, limit)
        before = np.searchsorted(fences, first, side="right") - 1 if len(fences) else None

        def opening(close):
            prev_close = np.where(prv >= 0, close[np.maximum(prv, 0)], 0)
            open_ = np.where(prv >= 0, np.minimum(np.maximum(first - self.open_ahead, prev_close + self.open_after),
                                                  first),
                             np.maximum(first - self.open_ahead, 0))
            if before is not None:                                          # last fence at or before it
                open_ = np.where(before >= 0, np.maximum(open_, fences[np.maximum(before, 0)]), open_)
            return open_

        # a short segment's precharge also waits nRAS after its activate: place it there (then
        # the next activates follow it), and precharges that fall in one gap one per MAC from there
        open_ = opening(close)
        close = np.minimum(np.maximum(close, open_ + self.ras_after), limit)
        order = np.argsort(close, kind="stable")
        ranked = close[order] - np.arange(len(close))
        spread = np.empty_like(close)
        spread[order] = np.maximum.accumulate(ranked) + np.arange(len(close))
        close = np.minimum(spread, limit)
        open_ = opening(close)
        sel = self._select(s_pos)
        # the last rows close after the GEMV's last MVSB, in the next GEMV or the flush
        ends = close >= n
        add(close[~ends], 1, self.pre, self.top, sel[~ends], 0, 0)
        # before the first MAC: the carried commands, activates and lead moves (_carried)
        at_start = open_ == 0
        add(open_[~at_start], 2, self.act, self.top, sel[~at_start], (first_row + s_phase)[~at_start], 0)
        head = self._carried(lead, list(zip(sel[at_start].tolist(), (first_row + s_phase)[at_start].tolist())),
                             fence=len(fences) > 0 and fences[0] == 0)
        if head:
            cmd, node, hsel, row, occ = (np.array(x) for x in zip(*head))
            add(np.zeros(len(head)), -1, cmd, node, hsel, row, occ)
        # moves: the previous block's MVSB, then the block's extra, spread evenly between the
        # block's MACs (AttAcc's scheduler issues them in the MACs' gaps)
        start = np.concatenate([[0], np.cumsum(sizes)])
        pending = []
        for j in range(len(sizes)):
            moves = pending + (extra(j, len(sizes)) if extra else [])
            pending = block_mvsb()
            if moves:
                where = start[j] + 1 + (np.arange(len(moves)) * sizes[j]) // len(moves)
                cmd, node, occ = (np.array(x) for x in zip(*moves))
                add(where, 0, cmd, node, 0, 0, occ)
        self.carry, self.carry_close = pending, sel[ends].tolist()
        cols = [np.concatenate([p[i] for p in parts]) for i in range(7)]
        order = np.lexsort((cols[1], cols[0]))
        self.block(ch, *(c[order] for c in cols[2:]))
        return first_row + n_rows

    def _segments(self, n):
        """What a GEMV of n MACs lays out whatever its rows and neighbours (kept per n: a
        channel's instances of one context repeat it): each MAC's index, bank position, row
        (from the GEMV's first) and bank choice; its row segments (one per bank position and
        row, which the GEMV opens and closes around), their first and last MAC, bank position
        and row, the same bank's next and previous segment, and the first MAC of the next."""
        hit = self._segment_memo.get(n)
        if hit is not None:
            return hit
        T = self.cycle
        idx = np.arange(n, dtype=np.int64)
        pos, phase = self._layout(idx)
        seg = phase * T + pos
        segs, first = np.unique(seg, return_index=True)
        last = n - 1 - np.unique(seg[::-1], return_index=True)[1]
        s_pos, s_phase = segs % T, segs // T
        # the same bank's next and previous segment (segments are sorted by phase, then position)
        order = np.lexsort((s_phase, s_pos))
        nxt = np.full(len(segs), -1)
        same = s_pos[order][1:] == s_pos[order][:-1]
        nxt[order[:-1][same]] = order[1:][same]
        prv = np.full(len(segs), -1)
        prv[order[1:][same]] = order[:-1][same]
        next_first = np.where(nxt >= 0, first[np.maximum(nxt, 0)], n)
        out = (idx, pos, phase, self._select(pos), segs, first, last, s_pos, s_phase, nxt, prv, next_first)
        for a in out:
            a.flags.writeable = False
        self._segment_memo[n] = out
        return out

    def _layout(self, idx):
        """Bank position (among the T banks cycled through) and row (from the GEMV's first) of
        each MAC: AttAcc's address order (module docstring)."""
        T, C = self.cycle, self.spec.columns
        pos = idx % T if self.mode == "buffer" else (idx // C) % T
        return pos, idx // (T * C)

    def _select(self, pos):
        """The bank choice of a bank position: at buffer level position p cycles over the SID x
        bank-group units first (p mod units), then over their banks."""
        if self.mode != "buffer":
            return pos
        banks = self.spec.counts[-1]
        units = self.cycle // banks
        return (pos % units) * banks + pos // units

    def _fences(self, n, per_phase):
        """MAC indices (row boundaries, the GEMV's start included) where every row closes
        before the next opens: the first boundary after nREFI worth of MACs since the last
        such point (counted across GEMVs)."""
        if self.fence_macs is None or self.cycle == 1:
            return np.zeros(0, np.int64)
        out, last = [], -self.since_close
        for b in range(0, n, per_phase):
            if b - last >= self.fence_macs:
                out.append(b)
                last = b
        self.since_close = n - last
        return np.array(out, dtype=np.int64)


def _share(items, first_block):
    """`extra` for a GEMV of n blocks: `items` spread evenly over blocks first_block(n) .. n - 1."""
    def extra(j, n):
        j0 = first_block(n)
        if j < j0:
            return []
        span = n - j0
        return items[(j - j0) * len(items) // span:(j - j0 + 1) * len(items) // span]
    return extra


def attention_program(spec, engine, instances, L, d, reuse=1, channels=None):
    """The programs of one attention layer: `instances` (requests x KV heads) of L cached tokens
    and head dimension d, each instance's K and V in one channel (round robin over `channels`,
    default every channel of the memory), `reuse` query rows per instance (g x speculation)."""
    mode = attacc_mode(spec)
    channels = list(range(spec.n_channels)) if channels is None else list(channels)
    if instances < 1 or L < 1 or d < 1 or reuse < 1:
        raise ValueError("instances, L, d and reuse must be positive")
    per_channel = np.zeros(spec.n_channels, dtype=np.int64)
    # instance i goes to channels[i % len(channels)]: whole rounds, then the first `rest` channels
    rounds, rest = divmod(int(instances), len(channels))
    np.add.at(per_channel, channels, rounds)
    np.add.at(per_channel, channels[:rest], 1)
    # channels holding the same number of instances run the same program: build it once
    built = {}
    for n_inst in sorted(set(per_channel[channels].tolist())):
        b = _Builder(spec, engine.node_id, mode, reuse)
        attention_layer(b, n_inst, L, d)
        built[n_inst] = b
    return _assemble(spec, mode, [(ch, built[int(per_channel[ch])]) for ch in channels], per_channel)


def _assemble(spec, mode, programs, per_channel):
    """One AttentionProgram from (channel, builder of that channel's program) pairs."""
    columns, counts = assemble(spec, programs)
    return AttentionProgram(spec, mode, columns, per_channel, counts)


def attention_layer(b, n_inst, L, d):
    """The attention of one channel holding n_inst instances, on channel 0 of builder b: score,
    softmax and context of every instance, heads in pairs as AttAcc's traces run them (module
    docstring), so that one head's softmax and buffer traffic overlap the other's MACs. A
    kernel replay that runs a layer's attention as one PIM kernel gets AttAcc's overlap from it;
    attention_piece runs the three parts apart instead."""
    rows = 2 * n_inst * b.rows_per_gemv(L, d) if n_inst else 0
    if rows > b.spec.rows:        # before the list of instances is made (a hand-edited count may be huge)
        raise ValueError(f"{n_inst} instances of {L} tokens x {d} need {rows} rows per bank in a channel; the "
                         f"memory has {b.spec.rows}")
    attention_instances(b, [L] * n_inst, d)


def attention_instances(b, lengths, d):
    """attention_layer over instances of their own contexts `lengths` (a ragged batch: the
    requests of one channel at different lengths), in the order given, paired the same way: the
    softmax and buffer moves of instance i overlap the MACs of instance i + 1 and the other way
    round. Instance i's K and V take rows one after the other from row 0."""
    n_inst = len(lengths)
    if n_inst == 0:
        return
    ch = 0
    rows = [b.rows_per_gemv(L, d) for L in lengths]
    first = [0]
    for r in rows:
        first.append(first[-1] + 2 * r)
    k_row = lambda i: first[i]                 # noqa: E731 -- K of instance i, then its V
    v_row = lambda i: first[i] + rows[i]       # noqa: E731
    if first[-1] > b.spec.rows:
        what = f"{n_inst} instances of {lengths[0]} tokens" if len(set(lengths)) == 1 else \
            f"{n_inst} instances of {min(lengths)}-{max(lengths)} tokens"
        raise ValueError(f"{what} x {d} need {first[-1]} rows per bank in a channel; the memory has {b.spec.rows}")
    i = 0
    while i + 1 < n_inst:
        attention_pair(b, lengths[i], lengths[i + 1], d, k_row(i), k_row(i + 1), v_row(i), v_row(i + 1))
        i += 2
    if i < n_inst:
        attention_single(b, lengths[i], d, k_row(i), v_row(i))
    b.flush(ch)


def attention_pair(b, L0, L1, d, k0, k1, v0, v1):
    """Two instances of contexts L0 and L1 (K from rows k0, k1, V from v0, v1) on channel 0 of
    builder b, as attention_instances pairs them: the softmax and buffer moves of each overlap
    the other's MACs."""
    m = b.mode
    half = lambda n: n // 2                 # noqa: E731 -- MVGB goes over the second half of the blocks
    wrgb = lambda: b.moves("WRGB", _wrgb(m, d))                   # noqa: E731
    b.gemv(0, L0, d, k0, _share(wrgb(), lambda n: 0), lead=wrgb())
    b.gemv(0, L1, d, k1, _with_first(b.moves("SFM", 1, b.softmax_cycles(L0)), _share(b.mvgb(L0), half)))
    b.context_gemv(0, L0, d, v0, _with_first(b.moves("SFM", 1, b.softmax_cycles(L1)), _share(b.mvgb(L1), half)))
    b.context_gemv(0, L1, d, v1)


def attention_single(b, L, d, k, v):
    """An instance left without a pair (the last of an odd number): its score, then its softmax
    and moves before its context."""
    b.gemv(0, L, d, k, lead=b.moves("WRGB", _wrgb(b.mode, d)))
    b.context_gemv(0, L, d, v, lead=b.moves("SFM", 1, b.softmax_cycles(L)) + b.mvgb(L))


def _with_first(moves, extra):
    """`extra` with `moves` first in block 0."""
    def combined(j, n):
        return (moves if j == 0 else []) + extra(j, n)
    return combined


def fc_program(spec, engine, n_out, n_in, reuse=1, channels=None):
    """An FC layer y = x W (W: n_in x n_out FP16) as GEMVs in AttAcc's mapping: the output rows of
    W split evenly over `channels`, each channel a GEMV of its rows by n_in (the input into the
    GEMV buffers first, the results out after); `reuse` input rows (batch x speculation)."""
    mode = attacc_mode(spec)
    channels = list(range(spec.n_channels)) if channels is None else list(channels)
    if n_out < 1 or n_in < 1 or reuse < 1:
        raise ValueError("n_out, n_in and reuse must be positive")
    programs = []
    per_channel = np.zeros(spec.n_channels, dtype=np.int64)
    for i, ch in enumerate(channels):
        rows = n_out // len(channels) + (1 if i < n_out % len(channels) else 0)
        if rows == 0:
            continue
        per_channel[ch] = rows
        b = _Builder(spec, engine.node_id, mode, reuse)
        fc_piece(b, rows, n_in)
        programs.append((ch, b))
    return _assemble(spec, mode, programs, per_channel)


def attention_piece(b, kind, L, d):
    """One instance's part `kind` ('score', 'softmax' or 'context') of an attention layer in
    AttAcc's mapping (pim_designs.md counts), on channel 0 of builder b: kernel by kernel, as a
    kernel replay runs them (attention_program pipelines two instances instead)."""
    if kind == "score":
        b.gemv(0, L, d, 0, lead=b.moves("WRGB", _wrgb(b.mode, d)))
    elif kind == "softmax":
        b.emit_moves(0, b.moves("SFM", 1, b.softmax_cycles(L)) + b.mvgb(L))
    else:
        b.context_gemv(0, L, d, 0)
    b.flush(0)


def fc_piece(b, rows, n_in):
    """One channel's share of an FC layer: the input into the GEMV buffers, a GEMV of `rows`
    output rows by n_in (blocks as a score GEMV), the results out."""
    b.gemv(0, rows, n_in, 0, lead=b.moves("WRGB", _wrgb(b.mode, n_in)))
    b.flush(0)


def run_attention(design, instances, L, d, reuse=1, overrides=None, command_log=False):
    """Simulate one attention layer on a PIM design's memory (every channel). Returns a dict with
    `cycles`, `seconds`, `commands` (name -> count), `program` and, with command_log, `log`."""
    return _run(design, overrides, command_log, attention_program, instances, L, d, reuse)


def run_fc(design, n_out, n_in, reuse=1, overrides=None, command_log=False):
    """Simulate one FC layer (fc_program) on a PIM design's memory; returns as run_attention."""
    return _run(design, overrides, command_log, fc_program, n_out, n_in, reuse)


def _run(design, overrides, command_log, build, *args):
    from .._engine import Engine
    from ..config.memory import MemorySpec, load_memory
    from ..replay import engine_params
    spec = design if isinstance(design, MemorySpec) else load_memory(design, overrides)
    engine = Engine(engine_params(spec, command_log))
    program = build(spec, engine, *args)
    cols = program.columns
    engine.feed_program(cols["channel"], cols["command"], cols["node"], cols["select"], cols["row"],
                        cols["occupancy"])
    engine.run(True)
    cycles = max(engine.completion_cycle, engine.current_cycle)
    counts = engine.counters()["commands"].sum(axis=0)
    out = {
        "cycles": int(cycles),
        "seconds": cycles * spec.tck_ns * 1e-9,
        "commands": {n: int(counts[i]) for i, n in enumerate(spec.command_names) if counts[i]},
        "program": program,
        "spec": spec,
        "engine": engine,
    }
    if command_log:
        out["log"] = engine.take_log()
    return out
