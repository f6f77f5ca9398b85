"""Interference between an xPU's memory traffic and PIM programs in a shared memory, simulated
at command level (docs/replay.md, "Interference").

Two passes per step. The step is scheduled with every kernel's own time (the roofline for xPU
kernels, a PIM program alone for PIM kernels). Wherever an xPU kernel working in a memory runs at
the same time as a PIM kernel of that memory, one representative channel simulates the overlap:
the PIM kernel's program for the time it overlaps, and the xPU kernel's request stream to that
channel for the same time (each operand in the memory read or written from its placement region,
evenly over the kernel's duration, addresses through the memory's address mapping). Each kernel
loses what it loses against its run alone in the same window (xPU: its last access completes
later; PIM: its program ends later). The step is then scheduled again with those losses added.

Every overlap is simulated whole by default (`full=True`). With `full=False` an overlap longer
than `windows` x `window_ns` is simulated in `windows` windows of `window_ns` spread evenly over
it, and the losses scale by the overlap's length over the windows'; its error is large on long
overlaps (windows hold no refresh and start from an idle channel: docs/replay.md, "Why sampling
is not the default"). Equal overlaps (the same pair of kernels at the same phases, e.g. in every
layer) are simulated once.
"""
import dataclasses
import math

import numpy as np

from .._engine import Engine
from ..replay import engine_params
from .pim import Ragged, pim_work


@dataclasses.dataclass(frozen=True)
class InterferenceOptions:
    """How interference is simulated (pimdram replay --interference, --interference-full/
    --interference-sampled, --interference-window, --interference-windows)."""
    enabled: bool = True
    window_ns: float = 2000.0       # sampled: length of one window
    windows: int = 3                # sampled: windows per overlap (phases spread evenly over it)
    full: bool = True               # simulate every overlap whole (False: sampled windows)


@dataclasses.dataclass(frozen=True)
class WindowResult:
    """What one simulated window of co-running traffic cost, on one channel (cycles of the PIM
    memory's clock): the xPU stream's and the program's delay against their runs alone,
    row-buffer conflicts and precharges the other device caused, and the cycles the program held
    the channel against normal traffic (blocked mode)."""
    xpu_cycles: int
    pim_cycles: int
    conflicts: int
    blocked_cycles: int


def simulate_window(spec, program, accesses):
    """Run `program` (one-channel program columns) and `accesses` (decode() arrays of channel 0,
    arrivals relative to the window's start) on a one-channel engine together and each alone;
    returns WindowResult."""
    ours = np.unique(program["command"])
    # precharges of normal rows: the controller's own, and those a PIM activate issues to close
    # rows the other device left open
    pre = [i for i, c in enumerate(spec.commands) if c.kind == "precharge" and i not in ours]
    joint = _run(spec, program, accesses, ours, pre)
    x_alone = _run(spec, None, accesses, ours, pre)
    p_alone = _run(spec, program, None, ours, pre)
    blocked = 0
    if spec.pim.mode == "blocked" and joint["p_end"] >= 0 and joint["x_n"]:
        # the program holds every bank of the channel from its first command to its last
        # while an access of the window waited: from the first arrival to the last completion
        blocked = max(0, min(joint["p_end"], joint["x_end"]) - max(joint["p_start"], int(accesses[5][0])))
    extra_pre = joint["pre"] - x_alone["pre"] - p_alone["pre"]
    return WindowResult(
        xpu_cycles=max(0, joint["x_end"] - x_alone["x_end"]) if joint["x_n"] else 0,
        pim_cycles=max(0, joint["p_end"] - p_alone["p_end"]) if joint["p_end"] >= 0 else 0,
        conflicts=max(0, joint["conflicts"] - x_alone["conflicts"]) + max(0, extra_pre),
        blocked_cycles=int(blocked))


def _run(spec, program, accesses, ours, pre):
    """One engine run; the cycles the last access completed and the last program command issued."""
    engine = Engine(engine_params(spec, command_log=True))
    if program is not None:
        engine.feed_program(program["channel"], program["command"], program["node"], program["select"],
                            program["row"], program["occupancy"])
    n = 0 if accesses is None else len(accesses[0])
    if n:
        engine.feed_decoded((accesses, n))
        engine.run(False)
    engine.run(True)
    log = engine.take_log()
    counters = engine.counters()
    kinds = [c.kind for c in spec.commands]
    normal = np.isin(log["command"], [i for i, k in enumerate(kinds) if k in ("read", "write", "read_precharge",
                                                                              "write_precharge")])
    writes = np.isin(log["command"], [i for i, k in enumerate(kinds) if k in ("write", "write_precharge")])
    done = log["cycle"] + np.where(writes, spec.write_latency, spec.read_latency)
    ours = np.isin(log["command"], ours)
    return {
        "x_n": int(normal.sum()),
        "x_end": int(done[normal].max()) if normal.any() else 0,
        "p_end": int(log["cycle"][ours].max()) if ours.any() else -1,
        "p_start": int(log["cycle"][ours].min()) if ours.any() else 0,
        "conflicts": int(counters["row_conflicts"].sum()),
        "pre": int(counters["commands"][:, pre].sum()),
    }


class XpuStream:
    """The accesses an xPU kernel makes to one channel of a memory (docs/replay.md)."""

    def __init__(self, pm, regions):
        self.pm, self.regions = pm, regions
        spec = pm.spec
        self.decoder = Engine(engine_params(spec))
        self.row_shift = spec.offset_bits + sum(b for f, b in spec.address_mapping if f != "row")
        # the share of a kernel's bytes in one stack (module) of the memory: its channels' share
        self.share = spec.counts[0] / pm.channels
        self.tck = spec.tck_ns

    def operands(self, kernel):
        """(base address, accesses in one stack, is_write) of each off-chip operand in the memory."""
        out = []
        for o in kernel["operands"]:
            r = self.regions.get(o.get("region"))
            if o.get("on_chip") or r is None or r["memory"] != self.pm.name or not o["bytes"]:
                continue
            rows = r.get("rows", [0, 1])
            base = (rows[0] % self.pm.spec.rows) << self.row_shift
            n = max(1, math.ceil(o["bytes"] * self.share / self.pm.spec.access_bytes))
            out.append((base, n, o["access"] == "write"))
        return out

    def window(self, kernel, duration_ns, t0_ns, t1_ns):
        """decode() arrays of channel 0's accesses that the kernel (running `duration_ns`, each
        operand evenly over it) makes from t0_ns to t1_ns of its run, arrivals in cycles from t0."""
        addresses, writes, times = [], [], []
        acc = self.pm.spec.access_bytes
        for base, n, is_write in self.operands(kernel):
            lo = max(0, math.ceil(t0_ns * n / duration_ns - 0.5))
            hi = min(n, math.ceil(t1_ns * n / duration_ns - 0.5))
            if hi <= lo:
                continue
            idx = np.arange(lo, hi, dtype=np.uint64)
            addresses.append(np.uint64(base) + idx * np.uint64(acc))
            writes.append(np.full(hi - lo, is_write, dtype=np.uint8))
            times.append((idx.astype(np.float64) + 0.5) * duration_ns / n - t0_ns)
        if not addresses:
            return None
        address, write, t = np.concatenate(addresses), np.concatenate(writes), np.concatenate(times)
        arrival = np.floor(t / self.tck).astype(np.int64)
        arrays, _ = self.decoder.decode(address, write, arrival)
        keep = np.flatnonzero(arrays[0] == 0)
        keep = keep[np.argsort(arrays[5][keep], kind="stable")]
        # the last array (each request's first access) is None when every access is a request
        return tuple(None if a is None else np.ascontiguousarray(a[keep]) for a in arrays)


class Interference:
    """Finds a step's overlaps of xPU and PIM kernels in shared memories and prices them."""

    def __init__(self, system, pim_mems, held, regions, options):
        self.system, self.held, self.options = system, held, options
        self.memories = {}            # memory name -> (PimMemory, XpuStream)
        for name, dev in system.devices.items():
            pm = pim_mems.get(dev.memory)
            if dev.kind != "pim" and pm is not None and pm.mode is not None:
                if dev.memory not in self.memories:
                    self.memories[dev.memory] = (pm, XpuStream(pm, regions))
        self.programs = {}
        self.cache = {}

    def kinds(self, kernels):
        """Per kernel: the shared memory an xPU kernel works in ('x', memory), a simulated PIM
        kernel's ('p', memory), or None."""
        out = []
        for k in kernels:
            dev = self.system.devices.get(k["device"])
            if dev is None or dev.memory not in self.memories:
                out.append(None)
            elif dev.kind != "pim":
                out.append(("x", dev.memory) if k["bytes_read"] + k["bytes_written"] else None)
            else:
                pm = self.memories[dev.memory][0]
                lo, hi = self.held.channels(k)
                work = pim_work(pm, k, hi - lo)
                out.append(("p", dev.memory) if work not in (None, "fused") and work[1] else None)
        return out

    def losses(self, kernels, kinds, signatures, starts, ends):
        """(ns lost per kernel, conflicts per kernel, blocked cycles per kernel) of one step
        scheduled at `starts`/`ends` (ns)."""
        n = len(kernels)
        lost, conflicts, blocked = np.zeros(n), np.zeros(n), np.zeros(n)
        for memory in self.memories:
            xs = [i for i in range(n) if kinds[i] == ("x", memory)]
            ps = [i for i in range(n) if kinds[i] == ("p", memory)]
            if not xs or not ps:
                continue
            xs, ps = np.asarray(xs), np.asarray(ps)
            a = np.maximum(starts[xs][:, None], starts[ps][None, :])
            b = np.minimum(ends[xs][:, None], ends[ps][None, :])
            for xi, pi in zip(*np.nonzero(b - a > 0)):
                x, p = int(xs[xi]), int(ps[pi])
                w = self.overlap(memory, kernels[x], kernels[p], signatures[x], signatures[p],
                                 float(starts[x]), float(ends[x]), float(starts[p]), float(ends[p]))
                tck = self.memories[memory][0].spec.tck_ns
                lost[x] += w.xpu_cycles * tck
                lost[p] += w.pim_cycles * tck
                conflicts[x] += w.conflicts
                conflicts[p] += w.conflicts
                blocked[x] += w.blocked_cycles
        return lost, conflicts, blocked

    def overlap(self, memory, xk, pk, xsig, psig, xs, xe, ps, pe):
        """WindowResult of xPU kernel xk ([xs, xe) ns) overlapping PIM kernel pk ([ps, pe)),
        scaled from the sampled windows to the whole overlap."""
        a, b = max(xs, ps), min(xe, pe)
        key = (memory, xsig, psig, round(a - xs, 1), round(a - ps, 1), round(b - a, 1), round(xe - xs, 1),
               round(pe - ps, 1))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        pm, stream = self.memories[memory]
        spec, program, issue = self._program(pm, pk)
        opts = self.options
        span = b - a
        if opts.full or span <= opts.windows * opts.window_ns:
            windows, w = [a], span
        else:
            w = opts.window_ns
            windows = [a + (j + 0.5) * span / opts.windows - w / 2 for j in range(opts.windows)]
        total = [0, 0, 0, 0]
        for t0 in windows:
            piece = _slice(program, issue, (t0 - ps) / (pe - ps), (t0 + w - ps) / (pe - ps), spec)
            accesses = stream.window(xk, xe - xs, t0 - xs, t0 - xs + w)
            if accesses is None or piece is None:
                continue
            r = simulate_window(spec, piece, accesses)
            total = [s + v for s, v in zip(total, dataclasses.astuple(r))]
        scale = span / (w * len(windows)) if w > 0 else 0.0
        result = WindowResult(*(int(round(v * scale)) for v in total[:2]),
                              int(round(total[2] * scale * pm.channels)), int(round(total[3] * scale)))
        self.cache[key] = result
        return result

    def _program(self, pm, pk):
        """(one-channel spec, program of the kernel's most loaded channel, each command's issue
        fraction of the program's run alone)."""
        lo, hi = self.held.channels(pk)
        kind, loads, shape = pim_work(pm, pk, hi - lo)
        if isinstance(loads, Ragged):     # the channel with the most tokens to go through
            load = tuple(max(loads.lists(), key=sum))
        else:
            load = max(n for n, _ in loads)
        key = (pm.name, kind, load, shape)
        if key not in self.programs:
            spec, program = pm.channel_program(kind, load, shape)
            engine = Engine(engine_params(spec, command_log=True))
            engine.feed_program(program["channel"], program["command"], program["node"], program["select"],
                                program["row"], program["occupancy"])
            engine.run(True)
            log = engine.take_log()
            ours = log["cycle"][np.isin(log["command"], np.unique(program["command"]))]
            n = len(program["command"])
            if len(ours) == n and n:
                issue = (ours - ours[0]) / max(1, ours[-1] - ours[0])
            else:
                issue = np.linspace(0.0, 1.0, n)
            self.programs[key] = (spec, program, issue)
        return self.programs[key]


def _slice(program, issue, f0, f1, spec):
    """The program's commands issued between fractions f0 and f1 of its run alone, cut where no
    row is open (after a precharge), or None when that is empty."""
    pre = np.flatnonzero(np.isin(program["command"], [i for i, c in enumerate(spec.commands)
                                                       if c.kind == "precharge"])) + 1
    cuts = np.concatenate([[0], pre, [len(program["command"])]])
    i0 = cuts[np.searchsorted(cuts, np.searchsorted(issue, max(0.0, f0)), side="left").clip(0, len(cuts) - 1)]
    i1 = cuts[np.searchsorted(cuts, np.searchsorted(issue, min(1.0, f1)), side="left").clip(0, len(cuts) - 1)]
    if f1 >= 1.0:
        i1 = len(program["command"])
    if f0 <= 0.0:
        i0 = 0
    if i1 <= i0:
        return None
    return {c: np.ascontiguousarray(v[i0:i1]) for c, v in program.items()}
