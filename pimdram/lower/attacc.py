"""AttAcc's head-wise mapping (Park et al., ASPLOS 2024; shared/reference/pim_designs.md) as
command programs for the engine, for the three AttAcc variants and the designs that reuse its
commands (PAPI's FC-PIM and Attn-PIM).

Mapping. Each attention instance (one request and one KV head: its K and V, L tokens of d
dimensions) lives in one channel; instances go to channels round robin, so the 16 channels of
a stack work on 16 heads at a time. Within a channel, tokens are split over the 16 (pseudo-
channel x SID x bank-group) units and the head dimension over the 4 banks of a group. A GEMV
over a matrix of L rows (tokens) by d columns (dimensions) then takes

    bank level        ceil(L/16) * ceil(d/64)  all-bank MACs (MACAB: one 32 B column of every bank)
    bank-group level  ceil(L/16) * ceil(d/16)  same-bank MACs (MACSB: bank k of every bank group)
    buffer die        ceil(L/2)  * ceil(d/16)  broadcast MACs (MACPB: bank k of both pseudo-channels)

and one attention instance is: the query into the GEMV buffers (WRGB, 4 ceil(d/64)), the score
GEMV (K: L x d), the scores to the softmax unit (MVSB, 8 ceil(L/256)), the softmax (SFM, once),
its output back (MVGB, 8 ceil(L/256)), the context GEMV (V: L x d) and the context out (MVSB,
8 ceil(d/64)). A 1 KB row holds 32 columns: a bank-level GEMV opens ceil(MACs / 32) rows.

Program order pipelines two instances per channel as AttAcc does: instance i's query and score
run while instance i-1's softmax does, then i-1's context, then i's softmax (the moves wait for
their units: MVSB for the GEMV units, MVGB for the softmax unit).

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
from .program import FP16_BYTES, ProgramBuilder, assemble, mac_occupancy

# mode -> (activate, mac, precharge) command names
MODES = {
    "bank": ("ACTAB", "MACAB", "PREAB"),
    "bankgroup": ("ACTSB", "MACSB", "PRESB"),
    "buffer": ("ACTPB", "MACPB", "PREPB"),
}


def attacc_mode(spec):
    """Which AttAcc variant a PIM design's commands are (bank, bankgroup or buffer)."""
    names = set(spec.command_names)
    for mode, commands in MODES.items():
        if set(commands) | {"WRGB", "MVSB", "MVGB", "SFM"} <= names:
            return mode
    raise ConfigError(f"{spec.name}: not an AttAcc-style design (needs ACTAB/MACAB/PREAB, ACTSB/MACSB/PRESB "
                      "or ACTPB/MACPB/PREPB, with WRGB, MVSB, MVGB and SFM)")


def macs_per_gemv(mode, rows, cols):
    """MAC commands of one GEMV over a rows x cols FP16 matrix in one channel."""
    c = math.ceil
    if mode == "bank":
        return c(rows / 16) * c(cols / 64)
    if mode == "bankgroup":
        return c(rows / 16) * c(cols / 16)
    return c(rows / 2) * c(cols / 16)


def attacc_head_counts(mode, L, d):
    """Commands per attention instance (one head of one request) per channel, pim_designs.md."""
    c = math.ceil
    mac = MODES[mode][1]
    return {
        "WRGB": 4 * c(d / 64),
        mac: 2 * macs_per_gemv(mode, L, d),
        "MVSB": 8 * c(L / 256) + 8 * c(d / 64),
        "SFM": 1,
        "MVGB": 8 * c(L / 256),
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
    """AttAcc programs: accumulates columns a GEMV row at a time."""

    def __init__(self, spec, engine_node_id, mode, reuse):
        super().__init__(spec, engine_node_id)
        self.mode = mode
        self.act, self.mac, self.pre = (spec.command_index(n) for n in MODES[mode])
        self.n_sel = spec.selection_period(spec.commands[self.mac])     # bank choices of a MAC (0: all banks)
        self.banks = spec.banks_per_channel
        # bank level: one MACAB reaches every bank; else one bank per unit instance
        banks_per_mac = self.banks if mode == "bank" else 1
        self.mac_occupancy = mac_occupancy(spec, spec.commands[self.mac], reuse, banks_per_mac)
        self.reuse = reuse
        self.softmax = spec.pim.units.get("softmax")
        levels = spec.levels
        self.pc_nodes = (self.level_nodes(levels.index("pseudo_channel")) if "pseudo_channel" in levels
                         else np.array([engine_node_id(())], dtype=np.int32))

    def spread(self, ch, name, n, occupancy=0):
        """n pseudo-channel commands, alternating over the pseudo-channels."""
        self.spread_over(ch, name, n, self.pc_nodes, occupancy)

    def gemv(self, ch, rows, cols, first_row):
        """One GEMV over a rows x cols matrix stored from row first_row of the channel's banks.
        Returns the next free row."""
        n = macs_per_gemv(self.mode, rows, cols)
        per_row = self.spec.columns
        occ = self.mac_occupancy
        top = self.node_id(())
        if self.mode == "bank":
            units = [0]
        else:
            units = list(range(self.n_sel))        # the bank choice k (of every bank group / pseudo-channel)
        share = np.array([n // len(units) + (1 if u < n % len(units) else 0) for u in units])
        n_rows = math.ceil(share.max() / per_row)
        for r in range(n_rows):
            row = first_row + r
            left = np.clip(share - r * per_row, 0, per_row)
            live = np.flatnonzero(left > 0)
            j = np.repeat(np.arange(left.max()), len(live))
            u = np.tile(live, int(left.max()))
            u = u[j < left[u]]
            if self.mode == "bank":
                nodes_live, nodes_mac, sel_live, sel_mac = top, top, 0, 0
            else:
                nodes_live, nodes_mac, sel_live, sel_mac = top, top, live, u
            self.block(ch, np.full(len(live), self.act), nodes_live, sel_live, row)
            self.block(ch, np.full(len(u), self.mac), nodes_mac, sel_mac, row, occ)
            self.block(ch, np.full(len(live), self.pre), nodes_live, sel_live)
        return first_row + n_rows

    def softmax_cycles(self, L):
        if self.softmax is None:
            return 1
        return max(1, math.ceil(L * self.reuse / self.softmax.elements_per_cycle) + self.softmax.latency)


def attention_program(spec, engine, instances, L, d, reuse=1, channels=None):
    """The programs of one attention layer: `instances` (requests x KV heads) of L cached tokens
    and head dimension d, each instance's K and V in one channel (round robin over `channels`,
    default every channel of the memory), `reuse` query rows per instance (g x speculation)."""
    mode = attacc_mode(spec)
    channels = list(range(spec.n_channels)) if channels is None else list(channels)
    if instances < 1 or L < 1 or d < 1 or reuse < 1:
        raise ValueError("instances, L, d and reuse must be positive")
    per_channel = np.zeros(spec.n_channels, dtype=np.int64)
    for i in range(instances):
        per_channel[channels[i % len(channels)]] += 1
    # channels holding the same number of instances run the same program: build it once
    built = {}
    for n_inst in sorted(set(per_channel[channels].tolist())):
        b = _Builder(spec, engine.node_id, mode, reuse)
        _channel_program(b, spec, n_inst, L, d)
        built[n_inst] = b
    return _assemble(spec, mode, [(ch, built[int(per_channel[ch])]) for ch in channels], per_channel)


def _assemble(spec, mode, programs, per_channel):
    """One AttentionProgram from (channel, builder of that channel's program) pairs."""
    columns, counts = assemble(spec, programs)
    return AttentionProgram(spec, mode, columns, per_channel, counts)


def _channel_program(b, spec, n_inst, L, d):
    """The program of one channel holding n_inst instances (on channel 0 of the builder)."""
    c = math.ceil
    ch = 0
    row = 0
    pending_tail = None          # the previous instance's second half (pipelining)
    for _ in range(n_inst):
        b.spread(ch, "WRGB", 4 * c(d / 64))
        k_row = row
        row = b.gemv(ch, L, d, k_row)                                # score: K
        b.spread(ch, "MVSB", 8 * c(L / 256))
        if pending_tail is not None:
            pending_tail()       # the previous instance's context, after its softmax
        b.emit(ch, "SFM", (), occupancy=b.softmax_cycles(L))
        v_row = row
        row += row - k_row       # V (L x d, as K) takes as many rows; its GEMV comes later

        def tail(v_row=v_row):
            b.spread(ch, "MVGB", 8 * c(L / 256))
            b.gemv(ch, L, d, v_row)                                  # context: V
            b.spread(ch, "MVSB", 8 * c(d / 64))
        pending_tail = tail
    if pending_tail is not None:
        pending_tail()
    if row > spec.rows:
        raise ValueError(f"{n_inst} instances of {L} tokens x {d} need {row} rows per bank in a "
                         f"channel; the memory has {spec.rows}")


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
    c = math.ceil
    if kind == "score":
        b.spread(0, "WRGB", 4 * c(d / 64))
        b.gemv(0, L, d, 0)
        b.spread(0, "MVSB", 8 * c(L / 256))
    elif kind == "softmax":
        b.emit(0, "SFM", (), occupancy=b.softmax_cycles(L))
        b.spread(0, "MVGB", 8 * c(L / 256))
    else:
        b.gemv(0, L, d, 0)
        b.spread(0, "MVSB", 8 * c(d / 64))


def fc_piece(b, rows, n_in):
    """One channel's share of an FC layer: the input into the GEMV buffers, a GEMV of `rows`
    output rows by n_in, the results out."""
    c = math.ceil
    b.spread(0, "WRGB", 4 * c(n_in / 64))
    last = b.gemv(0, rows, n_in, 0)
    if last > b.spec.rows:
        raise ValueError(f"{rows} x {n_in} weights need {last} rows per bank in a channel; the memory has {b.spec.rows}")
    b.spread(0, "MVSB", 8 * c(rows / 256))


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
