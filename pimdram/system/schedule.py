"""List scheduling of a kernel trace's kernels over the system's resources."""
import heapq

import numpy as np

from .._schedule import schedule_instance


class Resources:
    """What each kernel of a trace holds while it runs.

    A link kernel holds its link; a kernel on a GPU or NPU its device. A kernel on a PIM device
    holds the partitions of its memory's channels it works in: the channels of the KV cache it
    reads (its region's), else all of them; the partitions are the pieces the trace's channel
    ranges cut the memory into, so attention split by KV heads (AttAcc's head groups) runs on
    disjoint partitions at once. A GPU or NPU working in a memory whose PIM design runs in
    blocked mode (IANUS: a PIM macro blocks the NPU's DMA) also holds every partition of that
    memory: the two take turns (`turns=False`: they do not; system.interference simulates them
    together at command level, where the engine's blocked mode makes normal traffic wait)."""

    def __init__(self, system, kernels, regions, turns=True):
        self.system, self.regions = system, regions
        self._channels = {}       # (kernel id, device, layer) -> its channels (a step's kernels recur)
        self._by_layer = None
        cuts = {name: {0, m.channels} for name, m in system.memories.items() if m.pim}
        for k in kernels:
            dev = system.devices.get(k["device"])
            if dev is not None and dev.kind == "pim" and dev.memory in cuts:
                cuts[dev.memory].update(self.channels(k))
        self.parts = {m: list(zip(sorted(c), sorted(c)[1:])) for m, c in cuts.items()}
        self.blocked = {name for name, m in system.memories.items()
                        if turns and m.pim and m.spec.pim.mode == "blocked"}

    def channels(self, k):
        """[lo, hi) of the channels a kernel on a PIM device works in: its KV cache's; for an
        attention kernel that reads no KV cache (softmax), the channels of its layer's KV cache
        regions of the same memory and KV heads (the softmax of a head group is computed where
        its scores are)."""
        if k.get("id") is None:
            return self._find_channels(k)
        key = (k["id"], k["device"], k.get("layer"))
        hit = self._channels.get(key)
        if hit is None:
            hit = self._channels[key] = self._find_channels(k)
        return hit

    def _find_channels(self, k):
        dev = self.system.devices[k["device"]]
        ranges = [self.regions[o["region"]]["channels"] for o in k["operands"]
                  if o.get("role") == "kv_cache" and o.get("region") in self.regions]
        if not ranges and k.get("kv_heads") is not None:
            lo, hi = k["kv_heads"]
            ranges = [r["channels"] for r in self._kv_regions().get((dev.memory, k.get("layer")), ())
                      if r["kv_heads"][0] < hi and r["kv_heads"][1] > lo]
        if not ranges:
            return 0, self.system.memories[dev.memory].channels
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def _kv_regions(self):
        """The KV-cache regions with channels by (memory, layer), made once."""
        if self._by_layer is None:
            self._by_layer = {}
            for r in self.regions.values():
                if r.get("kind") == "kv_cache" and "channels" in r:
                    self._by_layer.setdefault((r["memory"], r.get("layer")), []).append(r)
        return self._by_layer

    def of(self, k):
        """The names of the resources kernel `k` holds."""
        name = k["device"]
        if name in self.system.links:
            return (name,)
        dev = self.system.devices[name]
        if dev.kind == "pim" and dev.memory in self.parts:
            lo, hi = self.channels(k)
            return tuple(_part(dev.memory, a, b) for a, b in self.parts[dev.memory] if a < hi and b > lo)
        if dev.memory in self.blocked:
            return (name,) + tuple(_part(dev.memory, a, b) for a, b in self.parts[dev.memory])
        return (name,)


def _part(memory, lo, hi):
    return f"{memory}[{lo}:{hi})"


def list_schedule(kernels, durations, resources, lags=None):
    """Start and end (ns) of each kernel (the plain Python statement of the rule, the reference
    the compiled scheduler is tested against). A resource (a device, a link, a memory's channel
    partition) runs one kernel at a time; a kernel holds one resource or a tuple of them, for its
    duration, and ends `lags` later (a transfer's latency: its link is free while the data
    travels). Whenever one could start, the kernel that can start earliest goes (ties: trace
    order), once every kernel it depends on has ended. Kernels of different resources overlap; a
    resource does not wait for its kernels' trace order when a later one is ready first (NeuPIMs'
    sub-batches interleave)."""
    n = len(kernels)
    lags = lags if lags is not None else [0.0] * n
    held = [r if isinstance(r, tuple) else (r,) for r in resources]
    index = {k["id"]: i for i, k in enumerate(kernels)}
    waiting = [len(k.get("deps", [])) for k in kernels]
    users = [[] for _ in range(n)]
    for i, k in enumerate(kernels):
        for d in k.get("deps", []):
            users[index[d]].append(i)
    ready = [0.0] * n
    starts, ends = [0.0] * n, [0.0] * n
    free = {}

    def free_at(i):
        return max([free.get(r, 0.0) for r in held[i]] or [0.0])

    heap = [(0.0, i) for i in range(n) if waiting[i] == 0]
    heapq.heapify(heap)
    while heap:
        t, i = heapq.heappop(heap)
        start = max(free_at(i), ready[i])
        if start > t:
            heapq.heappush(heap, (start, i))      # a resource got busy meanwhile
            continue
        starts[i] = start
        for r in held[i]:
            free[r] = start + durations[i]
        ends[i] = start + durations[i] + lags[i]
        for u in users[i]:
            ready[u] = max(ready[u], ends[i])
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(heap, (max(ready[u], free_at(u)), u))
    return starts, ends


class StepScheduler:
    """List scheduling step by step (the compiled schedule_instance, which implements
    list_schedule's rule): resources stay busy from one step to the next, and a kernel also waits
    for the kernels of the previous step named by its `prev_deps`."""

    def __init__(self, resource_names):
        names = {r for held in resource_names for r in (held if isinstance(held, tuple) else (held,))}
        self.index = {name: i for i, name in enumerate(sorted(names))}
        self.free = np.zeros(len(self.index))
        self.previous_ends = None

    def plan(self, kernels, resources):
        """What stays the same for every step of one template: the resources each kernel holds
        (a name or a tuple of names), the dependency lists as arrays, the previous-step
        dependencies."""
        n = len(kernels)
        held = [r if isinstance(r, tuple) else (r,) for r in resources]
        res_ptr = np.zeros(n + 1, dtype=np.int32)
        res_ptr[1:] = np.cumsum([len(h) for h in held])
        res_idx = np.asarray([self.index[r] for h in held for r in h], dtype=np.int32)
        pos = {k["id"]: i for i, k in enumerate(kernels)}
        users = [[] for _ in range(n)]
        n_deps = np.zeros(n, dtype=np.int32)
        for i, k in enumerate(kernels):
            n_deps[i] = len(k.get("deps", ()))
            for d in k.get("deps", ()):
                users[pos[d]].append(i)
        ptr = np.zeros(n + 1, dtype=np.int32)
        ptr[1:] = np.cumsum([len(u) for u in users])
        idx = np.asarray([u for us in users for u in us], dtype=np.int32)
        prev = [np.asarray(k.get("prev_deps", ()), dtype=np.int64) for k in kernels]
        waiting = [i for i, p in enumerate(prev) if len(p)]
        return {"res_ptr": res_ptr, "res_idx": res_idx, "users_ptr": ptr,
                "users_idx": idx, "n_deps": n_deps, "prev": [(i, prev[i]) for i in waiting], "n": n}

    def state(self):
        """What carries over from one step to the next (restore() puts it back)."""
        return self.free.copy(), self.previous_ends

    def restore(self, state):
        free, self.previous_ends = state
        self.free[:] = free

    def run(self, plan, durations, lags=None):
        """Schedule one step of `plan`'s template (each kernel holding its resources for its
        duration and ending `lags` later); returns (starts, ends) in ns."""
        n = plan["n"]
        ready = np.zeros(n)
        if self.previous_ends is not None:
            for i, p in plan["prev"]:
                ready[i] = self.previous_ends[p].max()
        starts, ends = np.zeros(n), np.zeros(n)
        lags = np.zeros(n) if lags is None else np.ascontiguousarray(lags, dtype=np.float64)
        schedule_instance(np.ascontiguousarray(durations, dtype=np.float64), lags, plan["res_ptr"], plan["res_idx"],
                          plan["users_ptr"],
                          plan["users_idx"], plan["n_deps"], ready, self.free, starts, ends)
        self.previous_ends = ends
        return starts, ends
