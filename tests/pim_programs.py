"""Helpers for the PIM engine tests: run command programs (and optionally normal accesses) on a
PIM design and read back the log."""
import numpy as np

from pimdram._engine import Engine
from pimdram.check import check_command_log
from pimdram.config.memory import load_memory
from pimdram.replay import CommandLogExpander, engine_params
from timing_cases import encode_address

NO_REFRESH = {"controller.refresh": "none"}


class PimRun:
    """One engine run of a PIM program (list of (channel, command name, node path, select, row,
    occupancy)) and, optionally, normal accesses (dicts as in test_controller)."""

    def __init__(self, design, program, accesses=(), overrides=None, refresh=False):
        over = dict(overrides or {})
        if not refresh:
            over.update(NO_REFRESH)
        self.spec = spec = load_memory(design, over)
        self.engine = engine = Engine(engine_params(spec, command_log=True))
        names = spec.command_names
        cols = [[], [], [], [], [], []]
        for ch, name, path, sel, row, occ in program:
            for col, v in zip(cols, (ch, names.index(name), engine.node_id(path), sel, row, occ)):
                col.append(v)
        engine.feed_program(*[np.array(c) for c in cols])
        if accesses:
            address = np.array([encode_address(spec, a.get("channel", 0), a["bank"], a.get("row", 0),
                                               a.get("column", 0)) for a in accesses], dtype=np.uint64)
            engine.feed(address, np.array([a.get("write", 0) for a in accesses], np.uint8),
                        np.array([a.get("arrival", -1) for a in accesses], np.int64))
            engine.run(False)
        engine.run(True)
        self.raw = engine.take_log()
        self.log = [(int(c), names[k]) for c, k in zip(self.raw["cycle"], self.raw["command"])]
        self.counters = engine.counters()

    def cycles(self, name):
        return [c for c, n in self.log if n == name]

    def check(self):
        result = check_command_log(self.spec, CommandLogExpander(self.engine, self.spec)(self.raw))
        assert result.ok, str(result)
        return result


def gemv_program(spec, mac, n_macs=8, row=7, occupancy=1, channel=0, select=0):
    """The smallest GEMV of a mac command: its activate, n MACs, its precharge (the commands of
    the same scope, bank selection and row buffer; the standard's ACT/PRE for a bank-scope MAC).
    Buffer writes of the design go first."""
    m = spec.commands[spec.command_index(mac)]

    def match(kind):
        for c in spec.commands:
            if (c.kind == kind and c.scope == m.scope and c.banks == m.banks and c.row_buffer == m.row_buffer):
                return c.name
        raise LookupError(f"no {kind} for {mac}")

    scope_path = (0,) * m.scope        # node path under the channel: first node of the scope level
    sel = select if m.banks == "same" else 0
    prog = []
    for c in spec.commands:
        if c.kind == "buffer_write":
            prog.append((channel, c.name, (0,) * c.scope, 0, 0, 0))
    prog.append((channel, match("activate"), scope_path, sel, row, 0))
    prog += [(channel, mac, scope_path, sel, row, occupancy)] * n_macs
    prog.append((channel, match("precharge"), scope_path, sel, 0, 0))
    return prog
