"""List scheduling of a kernel trace's kernels over the system's resources."""
import heapq

import numpy as np

from .._schedule import schedule_instance


def resources(system):
    """Device or link name -> the resource its kernels occupy: itself, except that devices sharing
    a memory whose PIM design runs in blocked mode (IANUS: a PIM macro blocks the NPU's DMA)
    share that memory and take turns."""
    resource = {name: name for name in list(system.devices) + list(system.links)}
    for mem_name, pool in system.memories.items():
        if pool.pim and pool.spec.pim.mode == "blocked":
            for name, dev in system.devices.items():
                if dev.memory == mem_name:
                    resource[name] = f"memory:{mem_name}"
    return resource


def list_schedule(kernels, durations, resources):
    """Start and end (ns) of each kernel (the plain Python statement of the rule, the reference
    the compiled scheduler is tested against). A resource (a device, a link, or a memory that devices
    share in blocked mode) runs one kernel at a time; whenever one could start, the kernel that
    can start earliest goes (ties: trace order), once every kernel it depends on has ended.
    Kernels of different resources overlap; a resource does not wait for its kernels' trace order
    when a later one is ready first (NeuPIMs' sub-batches interleave)."""
    n = len(kernels)
    index = {k["id"]: i for i, k in enumerate(kernels)}
    waiting = [len(k.get("deps", [])) for k in kernels]
    users = [[] for _ in range(n)]
    for i, k in enumerate(kernels):
        for d in k.get("deps", []):
            users[index[d]].append(i)
    ready = [0.0] * n
    starts, ends = [0.0] * n, [0.0] * n
    free = {}
    heap = [(0.0, i) for i in range(n) if waiting[i] == 0]
    heapq.heapify(heap)
    while heap:
        t, i = heapq.heappop(heap)
        res = resources[i]
        start = max(free.get(res, 0.0), ready[i])
        if start > t:
            heapq.heappush(heap, (start, i))      # the resource got busy meanwhile
            continue
        starts[i] = start
        ends[i] = start + durations[i]
        free[res] = ends[i]
        for u in users[i]:
            ready[u] = max(ready[u], ends[i])
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(heap, (max(ready[u], free.get(resources[u], 0.0)), u))
    return starts, ends


class StepScheduler:
    """List scheduling step by step (the compiled schedule_instance, which implements
    list_schedule's rule): resources stay busy from one step to the next, and a kernel also waits
    for the kernels of the previous step named by its `prev_deps`."""

    def __init__(self, resource_names):
        self.index = {name: i for i, name in enumerate(sorted(set(resource_names)))}
        self.free = np.zeros(len(self.index))
        self.previous_ends = None

    def plan(self, kernels, resources):
        """What stays the same for every step of one template: resource ids, the dependency
        lists as arrays, the previous-step dependencies."""
        n = len(kernels)
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
        return {"resource": np.asarray([self.index[r] for r in resources], dtype=np.int32), "users_ptr": ptr,
                "users_idx": idx, "n_deps": n_deps, "prev": [(i, prev[i]) for i in waiting], "n": n}

    def run(self, plan, durations):
        """Schedule one step of `plan`'s template; returns (starts, ends) in ns."""
        n = plan["n"]
        ready = np.zeros(n)
        if self.previous_ends is not None:
            for i, p in plan["prev"]:
                ready[i] = self.previous_ends[p].max()
        starts, ends = np.zeros(n), np.zeros(n)
        schedule_instance(np.ascontiguousarray(durations, dtype=np.float64), plan["resource"], plan["users_ptr"],
                          plan["users_idx"], plan["n_deps"], ready, self.free, starts, ends)
        self.previous_ends = ends
        return starts, ends
