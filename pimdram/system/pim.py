"""PIM kernels at command level: a kernel on a PIM device whose design has a lowering becomes
command programs that the engine simulates.

- AttAcc's mapping (attacc-bank, attacc-bankgroup, attacc-buffer, papi-fc, papi-attn): a
  layer's attention (score, softmax and context) per instance (request x KV head) in one
  channel, round robin over the memory's channels, heads in pairs as AttAcc overlaps them; FC
  products as GEMVs over the channels (pimdram.lower.attacc).
- The design's GEMV commands (neupims, aim, hbm-pim; a request's whole KV cache in one channel
  where the design says so; pimdram.lower.generic).

Symmetry: a PIM kernel's instances spread round robin, so its channels hold one of at most two
instance counts; one representative channel per count is simulated and the kernel's time is the
slowest. Kernels with the same lowering inputs (e.g. the same kernel in every layer) are
simulated once and reused. Both are recorded per kernel (`source`, `channels_simulated`,
`channels_total`); `symmetry=False` simulates every channel of every PIM kernel.
"""
import collections
import dataclasses

import numpy as np

from .._engine import Engine
from ..energy import column_or_row_energy, command_energies
from ..errors import ConfigError
from ..lower.attacc import _Builder, attention_instances, attention_key, attention_piece, fc_piece
from ..lower.generic import GemvBuilder, gemv_key
from ..lower.program import FP16_BYTES, assemble
from ..lower.uniform import UniformAttention
from ..replay import CommandLogExpander, engine_params
from ..trace.contexts import as_tuple
from .timing import ENERGY_KINDS, KernelTiming, energy, joules

#: kernel names lowered to PIM command programs on AttAcc-style designs
ATTENTION_PARTS = ("attention_score", "softmax", "attention_context")
FC_OPS = ("gemm", "gemv")


#: composed ragged kernels kept (a step's head groups compose alike; steps rarely recur)
RECENT_LIMIT = 64
#: contexts whose attention programs are kept for other instance counts (lower.uniform; about
#: half a MB each for a GPT-3 175B channel of a dozen instances): a stream's batches move the
#: count at the contexts its requests are at, which move on
UNIFORM_LIMIT = 256


class PimMemory:
    """A PIM memory of the system (config.system.MemoryPool): its lowering and a cache of runs."""

    def __init__(self, pool, command_log=False, devices=1):
        self.name = pool.name
        # PIM devices sharing the memory (one per stack or module): tensor parallelism gives each
        # its share of every request's KV heads, so a request's KV cache is in one channel of each
        self.devices = max(1, devices)
        self.spec = pool.spec
        self.channels = pool.channels
        self.command_log = command_log
        self.cache = {}
        lowering = self.spec.pim.lowering
        # AttAcc's variant, the generic GEMV lowering, or none (then the kernels are modelled)
        self.mode = lowering["mode"] if lowering.get("mapping") == "attacc" else lowering.get("mapping")
        self.kv_placement = lowering.get("kv_cache", "head")
        # how run_lengths times a ragged kernel: "exact" or "instances" (SimulationState)
        self.composition = "exact"
        # one instance's share of a uniform channel (time, energy by kind, commands), a row per
        # (kind, n, program key) of the arrays _arrays (_add_share_row); share_index finds the
        # row from the kernel's numbers directly
        self.shares, self.share_index, self._arrays = {}, {}, None
        self._uniform = collections.OrderedDict()   # attention programs by instance count (_uniform_attention)
        self._recent = {}       # composed ragged kernels by their loads' key (run_lengths)

    def loads(self, units, group=1, channels=None):
        """(load, channels) pairs: `units` groups of `group` instances round robin over `channels`
        channels (default: all of the memory's)."""
        channels = channels or self.channels
        base, extra = divmod(units, channels)
        pairs = [((base + 1) * group, extra), (base * group, channels - extra)]
        return [(n, m) for n, m in pairs if m > 0 and n > 0]

    def run(self, kind, loads, shape, symmetry, channels=None):
        """Simulate kernel part `kind` ('score', 'softmax', 'context', 'layer': the three together,
        or 'fc') whose channels carry `loads` ((instances or output rows per channel, channels)
        pairs); returns KernelTiming. `channels`: how many channels the kernel's work spreads
        over (default: all of the memory's)."""
        C = channels or self.channels
        reuse = shape[2]
        if not loads:
            return KernelTiming(0.0, "model", channels_total=C)
        if symmetry:
            reps = [(n, 1, m) for n, m in loads]               # (load, simulated channels, multiplicity)
        else:
            reps = [(n, m, 1) for n, m in loads]
        key = (kind, tuple((n, s) for n, s, _ in reps), self._program_key(kind, shape))
        return self._simulate(key, kind, reps, C, reuse,
                              lambda spec, engine: self._programs(spec, engine, kind, [(n, s) for n, s, _ in reps],
                                                                  shape))

    def run_lengths(self, kind, ragged, shape, symmetry, channels=None):
        """Like run, for a ragged kernel: `ragged` (Ragged) says which contexts each channel's
        instances have; `shape` is (d, reuse). Exact: channels with equal lists are simulated
        once (`symmetry`); with composition "instances", each channel is composed (_composed)."""
        C = channels or self.channels
        d, reuse = shape
        if not ragged:
            return KernelTiming(0.0, "model", channels_total=C)
        if self.composition == "instances":
            key = (kind, ragged.key, d, reuse, C)
            timing = self._recent.get(key)
            if timing is None:
                if len(self._recent) >= RECENT_LIMIT:
                    self._recent.clear()
                timing = self._recent[key] = self._composed(kind, ragged, d, reuse, C)
            return timing
        counts = {}
        for lst in ragged.lists():
            t = tuple(lst)
            counts[t] = counts.get(t, 0) + 1
        if symmetry:
            reps = [(t, 1, m) for t, m in counts.items()]
        else:
            reps = [(tuple(lst), 1, 1) for lst in ragged.lists()]
        key = (kind, "ragged" if symmetry else "ragged-all", tuple(t for t, _, _ in reps), d, reuse)
        return self._simulate(key, kind, reps, C, reuse,
                              lambda spec, engine: self._length_programs(spec, engine, kind, [t for t, _, _ in reps],
                                                                         d, reuse))

    def _composed(self, kind, ragged, d, reuse, C):
        """A ragged kernel composed from uniform runs (the serving step timer's rule, stated in
        docs/serving.md): a channel holding n instances of contexts L1..Ln takes
        sum_i t(n, Li) / n, where t(n, L) is a simulated channel of n instances all of context L
        (run, reused across kernels); the kernel takes its slowest channel, its energy and
        commands are the channels' sums of the same shares."""
        L, ch = ragged.units()
        g = ragged.group
        n = np.bincount(ch, minlength=ragged.channels)[ch] * g          # instances on each unit's channel
        span = int(L.max()) + 1
        keys, inverse = np.unique(n * span + L, return_inverse=True)      # one key per (n, L)
        inverse = inverse.ravel()
        rows = self._share_rows(kind, keys.tolist(), span, d, reuse)
        times, energies, commands = self._arrays        # rows past the table's are zeros
        slowest = float(np.bincount(ch, weights=times[rows][inverse] * g).max())
        instances = (np.bincount(inverse, minlength=len(rows)) * g).astype(float)   # instances of each (n, L)
        energy_sum = dict(zip(ENERGY_KINDS, (instances @ energies[rows]).tolist()))
        per_command = instances @ commands[rows]
        return KernelTiming(slowest, "composed", energy_sum, int(round(per_command.sum())), 0, C, per_command,
                            self.name)

    def _share_rows(self, kind, keys, span, d, reuse):
        """Rows of the share table (_arrays) of the (n, L) `keys` (n * span + L): one
        instance's share of a simulated channel of n instances all of context L; a share not
        yet known is simulated (run, reused across kernels: equal program keys, equal programs)."""
        rows = []
        for key in keys:
            row = self.share_index.get((kind, key, span, d, reuse))
            if row is None:
                nj, Lj = divmod(key, span)
                pkey = (kind, nj, self._program_key(kind, (Lj, d, reuse)))
                row = self.shares.get(pkey)
                if row is None:
                    u = self.run(kind, [(nj, 1)], (Lj, d, reuse), True, 1)
                    row = self.shares[pkey] = len(self.shares)
                    self._add_share_row(row, u.duration_ns / nj, [u.energy[k] / nj for k in ENERGY_KINDS],
                                        np.asarray(u.per_command, dtype=float) / nj)
                self.share_index[(kind, key, span, d, reuse)] = row
            rows.append(row)
        return np.asarray(rows, dtype=np.int64)

    def _add_share_row(self, row, t, e, c):
        """Row `row` of the share table's arrays: time (ns), energy (J by kind) and commands (their
        capacity doubled when full: a stream adds thousands of rows one at a time)."""
        if self._arrays is None or row >= len(self._arrays[0]):
            size = max(64, 2 * row)
            grown = (np.zeros(size), np.zeros((size, len(ENERGY_KINDS))), np.zeros((size, len(c))))
            if self._arrays is not None:
                for new, old in zip(grown, self._arrays):
                    new[:row] = old[:row]
            self._arrays = grown
        times, energies, commands = self._arrays
        times[row], energies[row], commands[row] = t, e, c

    def _simulate(self, key, kind, reps, C, reuse, programs_of):
        """Simulate the representative channels `reps` ((load, simulated channels, multiplicity)
        triples) whose programs `programs_of(spec, engine)` builds; remembered under `key`."""
        if key in self.cache:
            return dataclasses.replace(self.cache[key], source="reused")
        n_sim = sum(s for _, s, _ in reps)
        spec = dataclasses.replace(self.spec, counts=[n_sim] + list(self.spec.counts[1:]))
        engine = Engine(engine_params(spec, self.command_log))
        programs = programs_of(spec, engine)
        cols, _ = assemble(spec, programs)
        engine.feed_program(cols["channel"], cols["command"], cols["node"], cols["select"], cols["row"],
                            cols["occupancy"])
        engine.run(True)
        # the kernel ends when its data is done and no timing row of its commands can bind the
        # next kernel's (which starts on a fresh engine): the boundary stays legal
        cycles = max(engine.completion_cycle, engine.current_cycle, engine.settle_cycle())
        counts = engine.counters()["commands"]           # per simulated channel
        # scale to every channel: a representative stands for `multiplicity` channels
        scale = np.zeros(n_sim)
        ch = 0
        for _, n_ch, mult in reps:
            scale[ch:ch + n_ch] = mult
            ch += n_ch
        totals = (counts * scale[:, None]).sum(axis=0)
        log = CommandLogExpander(engine, spec)(engine.take_log()) if self.command_log else None
        timing = KernelTiming(cycles * spec.tck_ns, "simulated", pim_energy(self.spec, totals, reuse),
                              int(totals.sum()), n_sim, C, totals, self.name, log)
        self.cache[key] = timing
        return timing

    def _length_programs(self, spec, engine, kind, lists, d, reuse):
        """(channel, builder) pairs: channel i runs the instances of contexts `lists[i]`."""
        programs = []
        for ch, lengths in enumerate(lists):
            if self.mode == "gemv":
                b = GemvBuilder(spec, engine.node_id, reuse)
                row = 0
                for L in lengths:       # score: K is L x d; context: V^T is d x L
                    row = b.gemv(0, L, d, row) if kind == "score" else b.gemv(0, d, L, row)
            else:
                b = _Builder(spec, engine.node_id, self.mode, reuse)
                attention_instances(b, list(lengths), d)
            programs.append((ch, b))
        return programs

    def _program_key(self, kind, shape):
        """What the kernel's programs depend on besides the loads: equal keys, equal programs (the
        lowerings' attention_key and gemv_key; a generation's steps then share simulations)."""
        if kind == "fc":
            return shape
        L, d, reuse = shape
        if self.mode == "gemv":
            return (kind, reuse) + (gemv_key(self.spec, L, d) if kind == "score" else gemv_key(self.spec, d, L))
        return attention_key(self.spec, L, d, reuse)


    def _programs(self, spec, engine, kind, loads, shape):
        """(channel, builder) pairs: `loads` ((load, channels) pairs) lowered channel after channel."""
        if kind == "fc":
            _, n_in, reuse = shape
        else:
            L, d, reuse = shape
        programs, ch = [], 0
        for load, n_ch in loads:
            if self.mode == "gemv":
                b = GemvBuilder(spec, engine.node_id, reuse)
                if kind == "fc":
                    b.gemv(0, load, n_in)
                else:
                    row = 0
                    for _ in range(load):       # score: K is L x d; context: V^T is d x L
                        row = b.gemv(0, L, d, row) if kind == "score" else b.gemv(0, d, L, row)
            else:
                b = _Builder(spec, engine.node_id, self.mode, reuse)
                if kind == "fc":
                    fc_piece(b, load, n_in)
                elif kind == "layer":
                    b = self._uniform_attention(spec, engine, shape).program(load)
                else:
                    for _ in range(load):
                        attention_piece(b, kind, L, d)
            for _ in range(n_ch):
                programs.append((ch, b))
                ch += 1
        return programs

    def _uniform_attention(self, spec, engine, shape):
        """The UniformAttention of `shape` (L, d, reuse) on this memory's design (its programs of
        any instance count, built pair by pair once: lower.uniform)."""
        L, d, reuse = shape
        key = (tuple(spec.counts), self._program_key("layer", shape))
        u = self._uniform.get(key)
        if u is None:
            if len(self._uniform) >= UNIFORM_LIMIT:      # the least recently used goes
                self._uniform.popitem(last=False)
            node_id = engine.node_id
            u = self._uniform[key] = UniformAttention(lambda: _Builder(spec, node_id, self.mode, reuse), L, d)
        else:
            self._uniform.move_to_end(key)
        return u

    def channel_program(self, kind, load, shape):
        """(one-channel spec, program columns) of one channel carrying `load` of kernel part
        `kind` (system.interference simulates it beside xPU traffic); for a ragged kernel `load`
        is the channel's tuple of instance contexts and `shape` (d, reuse)."""
        spec = dataclasses.replace(self.spec, counts=[1] + list(self.spec.counts[1:]))
        engine = Engine(engine_params(spec))
        if isinstance(load, tuple):
            programs = self._length_programs(spec, engine, kind, [load], *shape)
        else:
            programs = self._programs(spec, engine, kind, [(load, 1)], shape)
        cols, _ = assemble(spec, programs)
        return spec, cols


def pim_energy(spec, totals, reuse=1):
    """Energy by kind of PIM commands issued `totals[i]` times (docs/pim-configs.md, "Energy").

    A command with a figure of its own (pim.energy.commands) takes it. A MAC reads a column in
    every bank it covers: at pim_access_pj_per_byte where the design gives it, else the DRAM
    read energy of a column in each bank; mac_pj per multiply-accumulate (the bytes read / 2
    FP16 weights, each times `reuse` inputs). An activate adds the DRAM activate energy of every
    bank it opens unless the design's access figure includes it (pim.energy.pim_access_includes:
    AttAcc's 4.4 / 12.48 / 26.32 pJ/B already hold the cell activation). NaN where a figure is
    needed and missing (no access figure and no IDD currents)."""
    pim = spec.pim
    e = pim.energy
    try:
        dram = command_energies(spec)
    except ConfigError:
        dram = None
    memory = compute = onchip = 0.0
    for i, c in enumerate(spec.commands):
        n = float(totals[i])
        if not n:
            continue
        own = pim.command_energy.get(c.name)
        if own is not None:
            if "pj" in own:
                spent = joules(n, own["pj"])
            elif dram is None:
                spent = float("nan")
            else:
                like = spec.commands[spec.command_index(own["like"])]
                spent = n * own["factor"] * column_or_row_energy(spec, like, dram)
            if c.kind in ("mac", "activate", "precharge"):
                memory += spent
            else:
                onchip += spent
        elif c.kind == "mac":
            read = n * spec.banks_covered(c) * spec.access_bytes
            if "pim_access_pj_per_byte" in e:
                memory += joules(read, e["pim_access_pj_per_byte"])
            else:
                memory += n * spec.banks_covered(c) * dram["read"] if dram else float("nan")
            compute += joules(read / FP16_BYTES * reuse, e.get("mac_pj", float("nan")))
        elif c.kind == "activate" and c.kind not in pim.access_includes:
            memory += n * column_or_row_energy(spec, c, dram) if dram else float("nan")
    return energy(memory=memory, compute=compute, onchip=onchip)


class Ragged:
    """The loads of a ragged attention kernel: its requests' contexts (`contexts` as the kernel
    has them, `lengths` one per request, in order), each as `split` units of `group` instances, the units round robin over `channels` channels (as a
    uniform kernel's, PimMemory.loads). `lists()`: per channel, the contexts of its instances."""

    def __init__(self, contexts, split, group, channels):
        self.contexts = contexts                       # ((tokens, requests), ...) as the kernel's
        self.count = sum(n for _, n in contexts)
        self.split, self.group = int(split), int(group)
        self.channels = min(int(channels), self.count * self.split)
        self._lengths = self._lists = None
        # what the loads follow from (equal keys, equal loads): PimMemory composes a kernel once
        # for its head groups, which differ only in their heads
        self.key = (as_tuple(contexts), self.split, self.group, self.channels)

    @property
    def lengths(self):
        """Each request's context, in order (made when needed: a kernel composed before by
        `key` needs none)."""
        if self._lengths is None:
            self._lengths = np.asarray([t for t, n in self.contexts for _ in range(n)], dtype=np.int64)
        return self._lengths

    def __bool__(self):
        return self.count > 0

    def units(self):
        """(context of each unit, its channel)."""
        L = np.repeat(self.lengths, self.split)
        return L, np.arange(len(L)) % self.channels

    def lists(self):
        if self._lists is None:
            lists = [[] for _ in range(self.channels)]
            for L, c in zip(*self.units()):
                lists[c].extend([int(L)] * self.group)
            self._lists = lists
        return self._lists


def channel_lengths(pm, k, heads, channels=None):
    """Ragged loads of attention kernel `k` with `contexts`: its requests in the order of its
    `contexts` (ascending length), each as its KV heads (instances), or under the `request` KV
    placement as `split` units of its heads (one per device); units round robin over the
    channels."""
    C = channels or pm.channels
    contexts = k["contexts"]
    if pm.kv_placement == "request":
        split = min(pm.devices, heads)
        group = -(-heads // split)
    else:
        split, group = heads, 1
    return Ragged(contexts, split, group, C)


def pim_work(pm, k, channels=None):
    """What a PIM kernel with a lowering simulates: (kind, loads, shape) for PimMemory.run (or
    for a ragged attention kernel (kind, Ragged, (d, reuse)) for PimMemory.run_lengths),
    "fused" (simulated inside its layer's attention_score), or None (no lowering: modelled)."""
    shape = k.get("shape", {})
    reuse = max(1, int(k.get("reuse") or shape.get("M", 1)))
    if k["name"] in ATTENTION_PARTS:
        lo, hi = k.get("kv_heads", [0, 1])
        heads = max(1, hi - lo)
        if k.get("contexts"):
            if k["name"] == "softmax":
                return "fused" if pm.mode != "gemv" else None
            if pm.mode != "gemv" and k["name"] != "attention_score":
                return "fused"
            lists = channel_lengths(pm, k, heads, channels)
            d = shape["K"] if k["name"] == "attention_score" else shape["N"]
            if pm.mode != "gemv":
                return "layer", lists, (d, reuse)
            return ("score" if k["name"] == "attention_score" else "context"), lists, (d, reuse)
        requests = len(k.get("requests", [])) or max(1, shape.get("instances", heads) // heads)
        if pm.kv_placement == "request":      # a request's KV heads (on each device) all in one channel
            split = min(pm.devices, heads)
            loads = pm.loads(requests * split, -(-heads // split), channels)
        else:
            loads = pm.loads(shape.get("instances", requests * heads), channels=channels)
        if pm.mode != "gemv":
            if k["name"] != "attention_score":
                return "fused"
            return "layer", loads, (shape["N"], shape["K"], reuse)
        if k["name"] == "attention_score":
            return "score", loads, (shape["N"], shape["K"], reuse)
        if k["name"] == "attention_context":
            return "context", loads, (shape["K"], shape["N"], reuse)
        return None                           # softmax on a GEMV design: modelled
    if k["op"] in FC_OPS and "N" in shape:
        return "fc", pm.loads(shape["N"]), (shape["N"], shape["K"], max(1, shape.get("M", 1)))
    return None


def pim_timing(pm, k, symmetry, channels=None):
    """KernelTiming of a PIM kernel with a lowering, or None (then it is modelled). `channels`:
    how many of the memory's channels its KV cache (or its work) spreads over (default: all).

    On AttAcc-style designs a layer's attention runs as AttAcc runs it: score, softmax and
    context of a channel's heads in one program, heads in pairs so that one head's softmax and
    buffer moves overlap the other's MACs (lower.attacc.attention_layer). The attention_score
    kernel carries that program's time and energy; its softmax and attention_context take no
    time of their own (source "fused")."""
    work = pim_work(pm, k, channels)
    if work is None:
        return None
    if work == "fused":
        return KernelTiming(0.0, "fused", channels_total=channels or pm.channels, memory=pm.name)
    kind, loads, shape = work
    if isinstance(loads, Ragged):
        return pm.run_lengths(kind, loads, shape, symmetry, channels)
    return pm.run(kind, loads, shape, symmetry, None if kind == "fc" else channels)
