"""GEMV programs for designs that name their GEMV commands in `pim.lowering.gemv` (NeuPIMs, AiM,
HBM-PIM; docs/pim-configs.md).

A GEMV of a rows x cols FP16 matrix in one channel: the input vector goes into the design's
buffer (ceil(cols x 2 / input.bytes) input commands), the matrix fills rows of the banks under
the MAC command's nodes (every node of the MAC's scope level in the channel: one for a channel-
wide MAC, one per pseudo-channel for HBM-PIM), one MAC command per column of a row in each of
those banks (ceil(rows x cols / (banks x access_bytes / 2)) MACs, spread evenly over the nodes);
each row is opened by the design's activate (at every node of the activate's level under the
MAC's node: NeuPIMs' grouped activate per bank group) and closed by its precharge; the results
come out with ceil(rows x 2 / output.bytes) output commands. A MAC keeps its units busy as in
AttAcc's lowering (program.mac_occupancy): reuse > 1 costs compute time.
"""
import math

import numpy as np

from .program import FP16_BYTES, ProgramBuilder, mac_occupancy


class GemvBuilder(ProgramBuilder):
    def __init__(self, spec, engine_node_id, reuse):
        super().__init__(spec, engine_node_id)
        roles = spec.pim.lowering["gemv"]
        self.roles = roles
        self.mac = spec.commands[spec.command_index(roles["mac"])]
        self.act = spec.commands[spec.command_index(roles["activate"])]
        self.mac_nodes = self.level_nodes(self.mac.scope)
        banks_below = spec.banks_covered(self.mac)
        self.per_mac = banks_below * spec.access_bytes // FP16_BYTES      # weights one MAC command reads
        self.occupancy = mac_occupancy(spec, self.mac, reuse, banks_below)
        # the activates under each MAC node (their level may be deeper: one per sub-node)
        act_nodes = self.level_nodes(self.act.scope)
        per = len(act_nodes) // len(self.mac_nodes)
        self.act_nodes = act_nodes.reshape(len(self.mac_nodes), per)

    def gemv(self, ch, rows, cols, first_row=0):
        spec, roles = self.spec, self.roles
        self.spread_over(ch, roles["input"]["command"], math.ceil(cols * FP16_BYTES / roles["input"]["bytes"]),
                         self.level_nodes(spec.commands[spec.command_index(roles["input"]["command"])].scope))
        n = math.ceil(rows * cols / self.per_mac)
        k = len(self.mac_nodes)
        share = np.array([n // k + (1 if j < n % k else 0) for j in range(k)])
        per_row = spec.columns
        act, mac, pre = (spec.command_index(roles[r]) for r in ("activate", "mac", "precharge"))
        n_rows = math.ceil(share.max() / per_row) if n else 0
        for r in range(n_rows):
            row = first_row + r
            left = np.clip(share - r * per_row, 0, per_row)
            live = np.flatnonzero(left > 0)
            acts = self.act_nodes[live].ravel()
            self.block(ch, np.full(len(acts), act), acts, 0, row)
            j = np.repeat(np.arange(left.max()), len(live))
            u = np.tile(live, int(left.max()))
            u = u[j < left[u]]
            self.block(ch, np.full(len(u), mac), self.mac_nodes[u], 0, row, self.occupancy)
            self.block(ch, np.full(len(live), pre), self.mac_nodes[live])
        out = roles["output"]
        self.spread_over(ch, out["command"], math.ceil(rows * FP16_BYTES / out["bytes"]),
                         self.level_nodes(spec.commands[spec.command_index(out["command"])].scope))
        if first_row + n_rows > spec.rows:
            raise ValueError(f"a {rows} x {cols} GEMV needs {first_row + n_rows} rows per bank; the memory has {spec.rows}")
        return first_row + n_rows


def gemv_key(spec, rows, cols):
    """What GemvBuilder.gemv's program for a rows x cols GEMV depends on: shapes with equal keys
    give identical programs (tested)."""
    roles = spec.pim.lowering["gemv"]
    mac = spec.commands[spec.command_index(roles["mac"])]
    per_mac = spec.banks_covered(mac) * spec.access_bytes // FP16_BYTES
    return (math.ceil(cols * FP16_BYTES / roles["input"]["bytes"]), math.ceil(rows * cols / per_mac),
            math.ceil(rows * FP16_BYTES / roles["output"]["bytes"]))


def has_gemv_lowering(spec):
    return spec.pim is not None and spec.pim.lowering.get("mapping") == "gemv"


def run_gemvs(design, gemvs, reuse=1, overrides=None, command_log=False):
    """Simulate, in every channel of a design with a GEMV lowering, the GEMVs `gemvs` ((rows,
    cols) each, one after the other). Returns a dict like lower.run_attention."""
    from .._engine import Engine
    from ..config.memory import MemorySpec, load_memory
    from ..replay import engine_params
    from .program import assemble
    spec = design if isinstance(design, MemorySpec) else load_memory(design, overrides)
    engine = Engine(engine_params(spec, command_log))
    b = GemvBuilder(spec, engine.node_id, reuse)
    row = 0
    for rows, cols in gemvs:
        row = b.gemv(0, rows, cols, row)
    cols, counts = assemble(spec, [(ch, b) for ch in range(spec.n_channels)])
    engine.feed_program(cols["channel"], cols["command"], cols["node"], cols["select"], cols["row"],
                        cols["occupancy"])
    engine.run(True)
    out = {"cycles": int(max(engine.completion_cycle, engine.current_cycle)), "commands": counts,
           "spec": spec, "engine": engine}
    if command_log:
        out["log"] = engine.take_log()
    return out
