"""Placement: address ranges (regions) for weights, KV caches and activations in the system's
memories, and the capacity check.

A KV cache in the `head` layout lives in the channels of its KV heads: KV heads [lo, hi) of H in
a memory of C channels take channels [lo C / H, hi C / H), so that attention split by KV heads
(placement rules, AttAcc's head groups) runs on disjoint channels. Rows are allocated per channel:
a region takes the rows from the highest row used so far in its channels.
"""
import re

import numpy as np

_KV_PART = re.compile(r"\.kv\.p(\d+)")


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
            else:
                act_bytes += o.bytes
        mem = system.devices[k.device].memory
        acts[f"{mem}:activations"] = max(acts.get(f"{mem}:activations", 0), act_bytes)

    by_id = {r.id: r for r in workload.requests}
    regions = {}
    demand = {m: {"weights": 0, "kv_cache": 0, "activations": 0} for m in system.memories}
    for name, (tensor, size) in sorted(weights.items()):
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "weights", "bytes": size, "layout": "interleaved"}
    for name, (tensor, layer, kv_heads) in sorted(kv.items()):
        part = parts(layer)[int(_KV_PART.search(tensor).group(1))]
        kvh = kv_heads[1] - kv_heads[0]
        per_token = 2 * kvh * model.head_dim
        reqs = sorted(kv_requests[tensor])
        tokens = [max(0, min(part.tokens[1], workload.max_cached_tokens(by_id[r])) - part.tokens[0]) for r in reqs]
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "kv_cache", "layer": layer,
                         "kv_heads": list(kv_heads),
                         "tokens": [part.tokens[0], min(part.tokens[1], max(tokens) + part.tokens[0])],
                         "requests": len(reqs), "bytes": sum(wb("kv_cache", t * per_token) for t in tokens),
                         "layout": system.placement.kv_layout,
                         "_instance_bytes": wb("kv_cache", max(tokens) * 2 * model.head_dim),
                         "_instances": len(reqs) * kvh}
    for name, size in sorted(acts.items()):
        regions[name] = {"memory": name.split(":", 1)[0], "kind": "activations", "bytes": size,
                         "layout": "interleaved"}

    next_row = {m: np.zeros(mem.channels, dtype=np.int64) for m, mem in system.memories.items()}
    for name in sorted(regions, key=lambda n: ({"weights": 0, "kv_cache": 1, "activations": 2}[regions[n]["kind"]], n)):
        r = regions[name]
        mem = system.memories[r["memory"]]
        lo, hi = 0, mem.channels
        if r["kind"] == "kv_cache" and r["layout"] == "head":
            heads = model.kv_heads
            lo, hi = r["kv_heads"][0] * mem.channels // heads, max(r["kv_heads"][1] * mem.channels // heads, 1)
            lo = min(lo, hi - 1)
            per_channel = -(-r.pop("_instances") // (hi - lo)) * r.pop("_instance_bytes")
            rows = -(-per_channel // (mem.banks_per_channel * mem.row_bytes))
        else:
            r.pop("_instances", None)
            r.pop("_instance_bytes", None)
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
