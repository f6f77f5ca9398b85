"""Building command programs: the columns Engine.feed_program takes, accumulated in numpy blocks."""
import math

import numpy as np

FP16_BYTES = 2
COLUMNS = ("channel", "command", "node", "select", "row", "occupancy")


def column(v, n, dtype):
    """`v` (a number, or n of them) as an array of n `dtype` values (np.broadcast_to's result,
    without its cost: program builders make millions of these)."""
    if isinstance(v, (int, np.integer)):
        return np.full(n, v, dtype=dtype)
    a = np.asarray(v, dtype=dtype)
    if a.ndim == 0:
        return np.full(n, a, dtype=dtype)
    return a if a.shape == (n,) else np.broadcast_to(a, (n,))


class ProgramBuilder:
    """One channel's program (channel 0; `assemble` places copies on real channels)."""

    def __init__(self, spec, engine_node_id):
        self.spec = spec
        self.node_id = engine_node_id
        self.names = spec.command_names
        self.blocks = []
        self.counts = np.zeros(len(self.names), dtype=np.int64)

    def block(self, ch, command, node, select=0, row=0, occupancy=0):
        command = np.atleast_1d(np.asarray(command, dtype=np.int32))
        n = len(command)
        self.blocks.append((column(ch, n, np.int32), command, column(node, n, np.int32),
                            column(select, n, np.int32), column(row, n, np.int32), column(occupancy, n, np.int64)))
        np.add.at(self.counts, command, 1)

    def emit(self, ch, name, path, occupancy=0):
        self.block(ch, self.names.index(name), self.node_id(path), occupancy=occupancy)

    def level_nodes(self, level):
        """Node ids of every node of `level` in a channel, in index order."""
        paths = np.ndindex(*self.spec.counts[1:level + 1]) if level > 0 else [()]
        return np.array([self.node_id(tuple(int(x) for x in p)) for p in paths], dtype=np.int32)

    def spread_over(self, ch, name, n, nodes, occupancy=0):
        """n commands `name`, round robin over `nodes`."""
        if n:
            nodes = np.asarray(nodes, dtype=np.int32)
            self.block(ch, np.full(n, self.names.index(name)), nodes[np.arange(n) % len(nodes)],
                       occupancy=occupancy)

    def columns(self):
        return {k: np.concatenate([b[i] for b in self.blocks]) if self.blocks else np.zeros(0, np.int64)
                for i, k in enumerate(COLUMNS)}


def assemble(spec, programs):
    """Columns for (channel, builder) pairs, and the command totals by name."""
    parts, counts = [], np.zeros(len(spec.command_names), dtype=np.int64)
    for ch, b in programs:
        cols = b.columns()
        cols["channel"] = np.full(len(cols["command"]), ch, dtype=np.int32)
        parts.append(cols)
        counts += b.counts
    columns = {k: np.concatenate([p[k] for p in parts]) for k in COLUMNS}
    return columns, {n: int(k) for n, k in zip(spec.command_names, counts) if k}


def mac_occupancy(spec, mac, reuse, banks_per_command):
    """Cycles a MAC command keeps its unit instances busy: access_bytes / 2 FP16 weights per bank,
    each times `reuse` inputs, over the banks a unit instance serves in this command, at the
    unit's rate (fpus x lanes, slowed by its clock)."""
    unit = spec.pim.units[mac.unit]
    # an instance serves banks_per_channel / instances banks; a command feeds it at most those
    per_inst = min(spec.banks_per_channel // _instances(spec, unit), banks_per_command)
    work = spec.access_bytes // FP16_BYTES * reuse * per_inst
    return max(1, math.ceil(work / unit.macs_per_cycle(spec.tck_ns) - 1e-9))


def _instances(spec, unit):
    """Unit instances per channel."""
    if unit.level == spec.bank_level:
        return spec.banks_per_channel // unit.banks_per_unit
    return int(np.prod(spec.counts[1:unit.level + 1]))
