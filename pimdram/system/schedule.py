"""List scheduling of a kernel trace's kernels over the system's resources."""
import heapq


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
    """Start and end (ns) of each kernel. A resource (a device, a link, or a memory that devices
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
