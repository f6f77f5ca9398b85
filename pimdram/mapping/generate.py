"""From model, workload and system to a kernel trace: build kernels, map, place, link and select them."""
from .. import __version__
from ..errors import WorkloadError
from ..llm.kernels import KINDS, OPS, AttentionPart, Kernel, Operand, StepBuilder
from ..llm.models import load_model
from ..llm.workload import Workload
from ..trace.kernels import FORMAT_NAME, FORMAT_VERSION, KernelTrace
from .policies import device_for
from ..config.system import load_system

ALL_TOKENS = (0, 1 << 62)


def generate_kernel_trace(model, system, workload, layers=None, only=None, allow_overcommit=False,
                          warn=None, progress=None):
    """The kernel trace of `workload` on `system` (names, paths or specs) as a KernelTrace.

    `layers` keeps the kernels of the first N decoder layers (plus embedding and LM head);
    `only` keeps the kernels of the given kinds (attention, fc, ffn, norm, communication), ops or
    names. Placement and the memory-capacity check always cover the whole model. A workload that
    does not fit is an error, or with `allow_overcommit` a warning (recorded in the header's
    `warnings` and passed to `warn`, a callable taking the text). `progress(done, total)` is
    called as the work advances: one unit per forward pass of the workload, and one for each of
    the passes over all kernels after them (dependencies and transfers, placement, selection).
    """
    model = load_model(model)
    system = load_system(system)
    if not isinstance(workload, Workload):
        raise TypeError("workload must be a pimdram.llm.Workload")
    if layers is not None and (isinstance(layers, bool) or not isinstance(layers, int) or layers <= 0):
        raise WorkloadError(f"layers must be a positive integer, got {layers!r}")
    if layers is not None and layers > model.layers:
        raise WorkloadError(f"--layers {layers} exceeds the {model.layers} layers of {model.name}")
    only = _check_only(only)

    steps = workload.steps()
    total = len(steps) + 3
    report = progress if progress is not None else (lambda done, total: None)
    parts = _attention_parts(model, system)
    kernels = _build(model, system, workload, parts, steps, lambda i: report(i, total))
    kernels = _link(system, kernels)
    report(len(steps) + 1, total)
    regions, overflows = _place(model, system, workload, kernels, parts)
    report(len(steps) + 2, total)
    if overflows and not allow_overcommit:
        raise WorkloadError(overflows[0] + "; reduce batch, prompt or output, use a larger system, or pass "
                                           "--allow-overcommit to study it anyway")
    for text in overflows:
        if warn is not None:
            warn(text)
    kernels = _select(kernels, layers, only)
    report(total, total)
    used = sorted({o.region for k in kernels for o in k.operands if o.region})
    header = {
        "format": FORMAT_NAME,
        "version": list(FORMAT_VERSION),
        "generated_by": f"pimdram {__version__}",
        "model": model.summary(kv_bytes=workload.bytes("kv_cache", 1)),
        "workload": workload.describe(),
        "system": system.to_dict(),
        "placement": {"regions": {name: regions[name] for name in used}},
        "selection": {"layers": layers, "only": list(only) if only else None},
        "kernels": len(kernels),
    }
    if overflows:
        header["warnings"] = list(overflows)
    return KernelTrace(header, [k.record() for k in kernels])


def _check_only(only):
    if not only:
        return None
    if isinstance(only, str):
        only = [s for s in only.split(",") if s]
    names = {n for group in KINDS.values() for n in group}
    known = set(KINDS) | set(OPS) | names | {"embedding", "rotary_embedding", "activation", "attention_residual",
                                             "ffn_residual", "moe_combine", "final_norm", "lm_head"}
    bad = [o for o in only if o not in known]
    if bad:
        raise WorkloadError(f"unknown kernel kind {bad[0]!r}; use one of {', '.join(sorted(KINDS))}, an op "
                            f"({', '.join(OPS)}) or a kernel name")
    return tuple(only)


# --- attention split by KV-cache placement rules -----------------------------------------------

def _attention_parts(model, system):
    """Per layer, the (KV-head range, token range, memory) cells the placement rules carve out."""
    rules = system.placement.kv_split
    default = system.placement.kv_cache
    cache = {}

    def parts(layer):
        active = [r for r in rules if r.covers_layer(layer)]
        key = tuple(active)
        if key in cache:
            return cache[key]
        heads = sorted({0, model.kv_heads} | {min(b, model.kv_heads) for r in active if r.kv_heads for b in r.kv_heads})
        toks = sorted({ALL_TOKENS[0], ALL_TOKENS[1]} | {b for r in active if r.tokens for b in r.tokens})
        cells = []
        for hlo, hhi in zip(heads, heads[1:]):
            for tlo, thi in zip(toks, toks[1:]):
                memory = default
                for r in active:
                    if (r.kv_heads is None or (r.kv_heads[0] <= hlo and hhi <= r.kv_heads[1])) and \
                            (r.tokens is None or (r.tokens[0] <= tlo and thi <= r.tokens[1])):
                        memory = r.memory
                        break
                if hhi > hlo:
                    cells.append(AttentionPart((hlo, hhi), (tlo, thi), memory))
        if len({c.tag for c in cells}) == 1:
            cells = [AttentionPart((0, model.kv_heads), ALL_TOKENS, cells[0].tag)]
        cache[key] = cells
        return cells

    return parts


def _sub_batches(system, workload):
    """NeuPIMs: requests in sub-batches by greedy least-loaded packing, longest first."""
    n = system.options.get("sub_batches", 1) if system.policy == "neupims" else 1
    n = min(n, workload.batch)
    if n <= 1:
        return [None], {r.id: None for r in workload.requests}
    loads = [0] * n
    owner = {}
    for r in sorted(workload.requests, key=lambda r: (-(r.prompt + r.output), r.id)):
        b = min(range(n), key=lambda i: (loads[i], i))
        loads[b] += r.prompt + r.output
        owner[r.id] = b
    return list(range(n)), owner


def _build(model, system, workload, parts, steps, step_done):
    builder = StepBuilder(model, workload, attention_parts=parts)
    batches, owner = _sub_batches(system, workload)
    kernels = []
    for i, step in enumerate(steps):
        per_batch = []
        for b in batches:
            groups = [g.__class__(tuple(r for r in g.requests if owner[r] == b), g.new_tokens, g.context)
                      for g in step.groups]
            groups = [g for g in groups if g.requests]
            if groups:
                per_batch.append(builder.build(step, groups, sub_batch=b))
        # interleave sub-batches layer by layer so that the file reads in execution order
        order = []
        for ks in per_batch:
            for k in ks:
                order.append(((-1 if k.name == "embedding" else (1 << 30) if k.layer is None else k.layer),
                              len(order), k))
        step_kernels = [k for _, _, k in sorted(order, key=lambda t: (t[0], t[2].sub_batch or 0, t[1]))]
        for k in step_kernels:
            k.device = device_for(system, k, step.live_batch, workload.speculation)
            if k.kv_heads is not None:
                k.device = _device_on_memory(system, k, parts(k.layer))
        kernels.extend(step_kernels)
        step_done(i + 1)
    return kernels


def _device_on_memory(system, kernel, parts):
    """Move an attention part to a device local to the memory its KV cache is placed in."""
    tag = next((p.tag for p in parts if p.kv_heads[0] <= kernel.kv_heads[0] < p.kv_heads[1]
                and p.tokens[0] <= kernel.tokens[0] < p.tokens[1]), "follow")
    if tag == "follow" or system.devices[kernel.device].memory == tag:
        return kernel.device
    local = [d for d in system.devices.values() if d.memory == tag]
    local.sort(key=lambda d: (d.kind != "pim", list(system.devices).index(d.name)))
    if not local:
        raise WorkloadError(f"system {system.name}: KV cache placed in memory {tag!r}, but no device computes there")
    return local[0].name


# --- dependencies, transfers, all-reduce ---------------------------------------------------------

class _Piece:
    __slots__ = ("ready", "bytes", "origin")

    def __init__(self, memory, kernel_id, nbytes, device):
        self.ready = {memory: [kernel_id]}   # memory -> kernel ids after which it is there
        self.bytes = nbytes
        self.origin = device


def _link(system, kernels):
    """Assign ids, derive dependencies from tensors, insert transfers between memories and all-reduces."""
    out = []
    tensors = {}

    def add(k):
        k.id = len(out)
        out.append(k)
        return k.id

    def mem_of(device):
        return system.devices[device].memory

    def make_present(k, o, memory, device):
        """Ids k must wait for so that the tensor of operand `o` is in `memory` (inserting transfers)."""
        deps = []
        for piece in tensors.get(o.tensor, []):
            if memory not in piece.ready:
                src_mem = next(iter(piece.ready))
                link = system.link_between(piece.origin, device)
                where = ("kv_cache." + o.tensor) if o.role == "kv_cache" else "activations"
                short = o.tensor.rsplit(".", 1)[-1]
                t = Kernel("transfer", "communication", k.layer, k.step, k.phase, shape={"bytes": piece.bytes},
                           flops=0, operands=[
                               Operand(short, o.role, "read", o.dtype, (piece.bytes,), piece.bytes, o.tensor,
                                       region=f"{src_mem}:{where}"),
                               Operand(short, o.role, "write", o.dtype, (piece.bytes,), piece.bytes, o.tensor,
                                       region=f"{memory}:{where}")],
                           sub_batch=k.sub_batch, requests=k.requests, device=link.name, link=link.name)
                t.deps = sorted(piece.ready[src_mem])
                piece.ready[memory] = [add(t)]
            deps.extend(piece.ready[memory])
        return deps

    for k in kernels:
        memory = mem_of(k.device)
        deps = set()
        for o in k.operands:
            if o.access == "read" and o.role != "weight" and o.tensor in tensors:
                deps.update(make_present(k, o, memory, k.device))
            if o.access == "write" and o.mode in ("append", "update") and o.tensor in tensors:
                deps.update(make_present(k, o, memory, k.device))
        for o in k.operands:
            _assign_region(o, memory)
        k.deps = sorted(deps)
        kid = add(k)
        for o in k.operands:
            if o.access != "write":
                continue
            if o.mode == "write" or o.tensor not in tensors:
                tensors[o.tensor] = [_Piece(memory, kid, o.bytes, k.device)]
            elif o.mode == "partial":
                tensors[o.tensor].append(_Piece(memory, kid, o.bytes, k.device))
            else:  # update in place or append to a KV cache: the earlier contents are here (made present above)
                total = sum(p.bytes for p in tensors[o.tensor]) + (o.bytes if o.mode == "append" else 0)
                tensors[o.tensor] = [_Piece(memory, kid, total, k.device)]
        dev = system.devices[k.device]
        if dev.tensor_parallel and dev.count > 1 and k.name in ("output_projection", "ffn_down", "moe_combine") \
                and not (k.name == "ffn_down" and k.expert is not None):
            y = next(o for o in k.operands if o.access == "write")
            link = system.link_between(k.device, k.device)
            # the devices' partial sums of y are added by a ring all-reduce over the group
            ar = Kernel("all_reduce", "communication", k.layer, k.step, k.phase,
                        shape={"bytes": y.bytes, "devices": dev.count}, flops=0,
                        operands=[Operand(y.name, "activation", "read", y.dtype, y.shape, y.bytes, y.tensor,
                                          region=f"{memory}:activations"),
                                  Operand(y.name, "activation", "write", y.dtype, y.shape, y.bytes, y.tensor,
                                          region=f"{memory}:activations")],
                        sub_batch=k.sub_batch, requests=k.requests, device=link.name, link=link.name, deps=[kid],
                        collective="all_reduce")
            tensors[y.tensor] = [_Piece(memory, add(ar), y.bytes, k.device)]
    return out


def _assign_region(o, memory):
    if o.role == "weight":
        o.region = f"{memory}:weights.{o.tensor}"
    elif o.role == "kv_cache":
        o.region = f"{memory}:kv_cache.{o.tensor}"
    else:
        o.region = f"{memory}:activations"


# --- placement: address ranges and the capacity check -------------------------------------------

def _place(model, system, workload, kernels, parts):
    """Regions (memory, channel/bank/row ranges) for every tensor, and the text of each memory's
    overflow (empty when the workload fits)."""
    wb = workload.bytes
    forced = system.placement.weights
    weights, kv, acts = {}, {}, {}
    kv_requests = {}
    for k in kernels:
        if k.op == "communication":
            continue
        act_bytes = 0
        for o in k.operands:
            if o.role == "weight":
                if forced != "follow":
                    o.region = f"{forced}:weights.{o.tensor}"
                if o.tensor == "embedding":
                    size = wb("weight", model.vocab * model.hidden)
                elif o.tensor == "position_embedding":
                    size = wb("weight", model.max_positions * model.hidden)
                else:
                    size = o.bytes
                weights[o.region] = (o.tensor, size)
            elif o.role == "kv_cache":
                kv.setdefault(o.region, (o.tensor, k.layer))
                kv_requests.setdefault(o.tensor, set()).update(k.requests)
            else:
                act_bytes += o.bytes
        mem = system.devices[k.device].memory
        acts[f"{mem}:activations"] = max(acts.get(f"{mem}:activations", 0), act_bytes)

    by_id = {r.id: r for r in workload.requests}
    regions = {}
    demand = {m: {"weights": 0, "kv_cache": 0, "activations": 0} for m in system.memories}
    for name, (tensor, size) in sorted(weights.items()):
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "weights", "bytes": size, "layout": "interleaved"}
    for name, (tensor, layer) in sorted(kv.items()):
        i = int(tensor.rsplit(".p", 1)[1])
        part = parts(layer)[i]
        kvh = part.kv_heads[1] - part.kv_heads[0]
        per_token = 2 * kvh * model.head_dim
        reqs = sorted(kv_requests[tensor])
        tokens = [max(0, min(part.tokens[1], workload.max_cached_tokens(by_id[r])) - part.tokens[0]) for r in reqs]
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "kv_cache", "layer": layer,
                         "kv_heads": list(part.kv_heads),
                         "tokens": [part.tokens[0], min(part.tokens[1], max(tokens) + part.tokens[0])],
                         "requests": len(reqs), "bytes": sum(wb("kv_cache", t * per_token) for t in tokens),
                         "layout": system.placement.kv_layout,
                         "_instance_bytes": wb("kv_cache", max(tokens) * 2 * model.head_dim),
                         "_instances": len(reqs) * kvh}
    for name, size in sorted(acts.items()):
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "activations", "bytes": size,
                         "layout": "interleaved"}

    next_row = {m: 0 for m in system.memories}
    for name in sorted(regions, key=lambda n: ({"weights": 0, "kv_cache": 1, "activations": 2}[regions[n]["kind"]], n)):
        r = regions[name]
        mem = system.memories[r["memory"]]
        stripe = mem.channels * mem.banks_per_channel * mem.row_bytes
        if r["kind"] == "kv_cache" and r["layout"] == "head":
            per_channel = -(-r.pop("_instances") // mem.channels) * r.pop("_instance_bytes")
            rows = -(-per_channel // (mem.banks_per_channel * mem.row_bytes))
        else:
            r.pop("_instances", None)
            r.pop("_instance_bytes", None)
            rows = -(-r["bytes"] // stripe)
        r["channels"] = [0, mem.channels]
        r["banks"] = [0, mem.banks_per_channel]
        r["rows"] = [next_row[r["memory"]], next_row[r["memory"]] + rows]
        next_row[r["memory"]] += rows
        demand[r["memory"]][r["kind"]] += r["bytes"]

    overflows = []
    for mname, mem in system.memories.items():
        used_rows = next_row[mname]
        if used_rows > mem.rows_per_bank:
            d = demand[mname]
            gb = 1e9
            overflows.append(
                f"the workload does not fit memory {mname!r} of system {system.name}: capacity "
                f"{mem.capacity / gb:.1f} GB ({mem.stacks} stacks), needed weights {d['weights'] / gb:.1f} GB + "
                f"KV cache {d['kv_cache'] / gb:.1f} GB + activations {d['activations'] / gb:.2f} GB = "
                f"{sum(d.values()) / gb:.1f} GB ({used_rows} of {mem.rows_per_bank} rows per bank)")
    return regions, overflows


# --- selection (--layers, --only) ------------------------------------------------------------------

def _select(kernels, layers, only):
    if layers is None and not only:
        return kernels
    names_of_kind = set()
    for o in only or ():
        names_of_kind.update(KINDS.get(o, ()))

    def keep(k):
        if layers is not None and k.layer is not None and k.layer >= layers:
            return False
        if only:
            return k.name in names_of_kind or k.op in only or k.name in only
        return True

    kept_ids = {}
    resolved = {}     # id of a dropped kernel -> kept ids it stands for
    out = []
    for k in kernels:
        deps = set()
        for d in k.deps:
            deps.update(resolved[d] if d in resolved else {d} if d in kept_ids else ())
        if keep(k):
            kept_ids[k.id] = len(out)
            k.deps = sorted(deps)
            out.append(k)
        else:
            resolved[k.id] = deps
    for k in out:
        k.deps = sorted(kept_ids[d] for d in k.deps)
        k.id = kept_ids[k.id]
    return out
