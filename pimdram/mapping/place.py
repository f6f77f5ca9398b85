"""Placement: address ranges (regions) for weights, KV caches and activations in the system's
memories, and the capacity check.

A KV cache in the `head` layout lives in the channels of the placement cell it belongs to: a
cell of KV heads [lo, hi) of H (placement rules split a layer's attention by KV heads) in a memory
of C channels takes channels [lo C / H, hi C / H), so that the cells' attention runs on disjoint
channels at once. Head groups (AttAcc's pipelining) share their cell's channels as _kv_channels
says: a group as wide as the cell spreads over all of it (its attention takes its share of the
time, overlapping the next group's projection); narrower groups take slices of the cell and run
side by side. Rows are allocated per channel: a region takes the rows from the highest row used
so far in its channels.
"""
import re

import numpy as np

_KV_PART = re.compile(r"\.kv\.p(\d+)")
_GROUP = re.compile(r"\.g(\d+)$")


def place(model, system, workload, kernels, parts):
    """Regions (memory, channel/bank/row ranges) for every tensor the linked `kernels` name, and
    the text of each memory's overflow (empty when the workload fits). `kernels` should hold every
    layer of the steps where activations are largest (a generation's first and last steps of each
    template); weights count once, and a KV cache at its largest over the workload."""
    wb = workload.bytes
    weights, kv, acts = {}, {}, {}
    kv_requests = {}
    for k in kernels:
        if k.op == "communication":
            continue
        act_bytes = 0
        for o in k.operands:
            if o.role == "weight":
                if o.tensor == "embedding":
                    size = wb("weight", model.vocab * model.hidden)
                elif o.tensor == "position_embedding":
                    size = wb("weight", model.max_positions * model.hidden)
                else:
                    size = o.bytes
                weights[o.region] = (o.tensor, size)
            elif o.role == "kv_cache":
                kv.setdefault(o.region, (o.tensor, k.layer, k.kv_heads))
                kv_requests.setdefault(o.tensor, set()).update(k.requests)
            elif not o.on_chip:
                act_bytes += o.bytes
        mem = system.devices[k.device].memory
        acts[f"{mem}:activations"] = max(acts.get(f"{mem}:activations", 0), act_bytes)

    by_id = {r.id: r for r in workload.requests}
    regions = {}
    demand = {m: {"weights": 0, "kv_cache": 0, "activations": 0} for m in system.memories}
    for name, (tensor, size) in sorted(weights.items()):
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "weights", "bytes": size, "layout": "interleaved"}
    cached = {}     # the regions of every layer and head group hold the same requests' tokens
    for name, (tensor, layer, kv_heads) in sorted(kv.items()):
        part = parts(layer)[int(_KV_PART.search(tensor).group(1))]
        kvh = kv_heads[1] - kv_heads[0]
        per_token = 2 * kvh * model.head_dim
        reqs = tuple(sorted(kv_requests[tensor]))
        key = (reqs, part.tokens, per_token)
        if key not in cached:
            tokens = [max(0, min(part.tokens[1], workload.max_cached_tokens(by_id[r])) - part.tokens[0]) for r in reqs]
            cached[key] = max(tokens), sum(wb("kv_cache", t * per_token) for t in tokens)
        most, total = cached[key]
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "kv_cache", "layer": layer,
                         "kv_heads": list(kv_heads),
                         "tokens": [part.tokens[0], min(part.tokens[1], most + part.tokens[0])],
                         "requests": len(reqs), "bytes": total,
                         "layout": system.placement.kv_layout,
                         "_instance_bytes": wb("kv_cache", most * 2 * model.head_dim),
                         "_instances": len(reqs) * kvh, "_cell_heads": part.kv_heads}
    for name, size in sorted(acts.items()):
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "activations", "bytes": size,
                         "layout": "interleaved"}

    channels, aliases = _kv_channels(model, system, regions)
    next_row = {m: np.zeros(mem.channels, dtype=np.int64) for m, mem in system.memories.items()}
    order = {"weights": 0, "kv_cache": 1, "activations": 2}
    for name in sorted(regions, key=lambda n: (order[regions[n]["kind"]], n in aliases, n)):
        r = regions[name]
        mem = system.memories[r["memory"]]
        lo, hi = channels.get(name, (0, mem.channels))
        instances, instance_bytes = r.pop("_instances", None), r.pop("_instance_bytes", None)
        r.pop("_cell_heads", None)
        if name in aliases:
            # the whole cache a prefill writes, which the decode's head groups read in parts: the
            # union of the groups' regions, no memory of its own
            members = [regions[a] for a in aliases[name]]
            r["channels"] = [min(m["channels"][0] for m in members), max(m["channels"][1] for m in members)]
            r["banks"] = [0, mem.banks_per_channel]
            r["rows"] = [min(m["rows"][0] for m in members), max(m["rows"][1] for m in members)]
            continue
        if name in channels:
            per_channel = -(-instances // (hi - lo)) * instance_bytes
            rows = -(-per_channel // (mem.banks_per_channel * mem.row_bytes))
        else:
            rows = -(-r["bytes"] // (mem.channels * mem.banks_per_channel * mem.row_bytes))
        first = int(next_row[r["memory"]][lo:hi].max())
        r["channels"] = [lo, hi]
        r["banks"] = [0, mem.banks_per_channel]
        r["rows"] = [first, first + rows]
        next_row[r["memory"]][lo:hi] = first + rows
        demand[r["memory"]][r["kind"]] += r["bytes"]

    overflows = []
    for mname, mem in system.memories.items():
        used_rows = int(next_row[mname].max())
        if used_rows > mem.rows_per_bank:
            d = demand[mname]
            gb = 1e9
            overflows.append(
                f"the workload does not fit memory {mname!r} of system {system.name}: capacity "
                f"{mem.capacity / gb:.1f} GB ({mem.stacks} stacks), needed weights {d['weights'] / gb:.1f} GB + "
                f"KV cache {d['kv_cache'] / gb:.1f} GB + activations {d['activations'] / gb:.2f} GB = "
                f"{sum(d.values()) / gb:.1f} GB ({used_rows} of {mem.rows_per_bank} rows per bank)")
    return regions, overflows


def _kv_channels(model, system, regions):
    """[lo, hi) channels of each KV cache region in the head layout.

    A placement cell of KV heads [lo, hi) of H takes channels [lo C / H, hi C / H) of its memory.
    The head groups of a cell (regions `...g0`, `...g1`, ...: AttAcc's pipelining) share its
    channels: with n (request, KV head) instances per group and C' channels in the cell, the cell
    is cut into s = min(groups, C' // n) equal slices (at least 1) and group g takes slice g mod s.
    Each group then has at most one instance per channel when it fits (its attention takes the
    least time it can), and groups in different slices run at once. In a generation the prefill
    writes the cell's cache whole (its region has no group suffix) and the decode's groups read
    it in parts: the whole region is an alias of the groups' (returned in `aliases`: whole ->
    group regions), so the slices count the groups only and the cache is held once."""
    cells = {}
    for name, r in regions.items():
        if r["kind"] == "kv_cache" and r["layout"] == "head":
            m = _GROUP.search(name)
            cells.setdefault(_GROUP.sub("", name), []).append((int(m.group(1)) if m else None, name))
    out, aliases = {}, {}
    for members in cells.values():
        grouped = [(g, name) for g, name in members if g is not None]
        if grouped and len(grouped) < len(members):
            # a generation: the prefill's whole-cache region beside the decode's head groups
            whole = next(name for g, name in members if g is None)
            aliases[whole] = [name for _, name in grouped]
            members = grouped
        members = sorted((g or 0, name) for g, name in members)
        r0 = regions[members[0][1]]
        C = system.memories[r0["memory"]].channels
        cell = r0["_cell_heads"]
        lo, hi = cell[0] * C // model.kv_heads, max(cell[1] * C // model.kv_heads, 1)
        lo = min(lo, hi - 1)
        n = max(regions[name]["_instances"] for _, name in members)
        slices = max(1, min(len(members), (hi - lo) // max(n, 1)))
        width = (hi - lo) // slices
        for g, name in members:
            j = g % slices
            out[name] = (lo + j * width, hi if j == slices - 1 else lo + (j + 1) * width)
    return out, aliases
