# List scheduling of one instance of a kernel DAG over resources, without the GIL.
#
# The same algorithm as pimdram.system.schedule.list_schedule (its Python reference, which tests
# cross-check against this): a resource runs one kernel at a time and a kernel may hold several
# (a PIM kernel over some of a memory's channel partitions); whenever one could start, the kernel
# that can start earliest goes (ties: lower index), once every kernel it depends on has ended.
# Kernels wait for kernels of their own instance (deps) and for the earliest starts given from the
# previous instance (ready), and resources start busy until `free`, which is updated in place so
# that the next instance continues from it.
import numpy as np
cimport numpy as cnp
from libc.stdlib cimport free as c_free, malloc
from libc.stdint cimport int32_t

cnp.import_array()


cdef inline bint _less(HeapItem a, HeapItem b) noexcept nogil:
    return a.t < b.t or (a.t == b.t and a.i < b.i)


cdef inline void _push(HeapItem* heap, Py_ssize_t* n, HeapItem x) noexcept nogil:
    cdef Py_ssize_t k = n[0]
    cdef Py_ssize_t parent
    n[0] += 1
    while k > 0:
        parent = (k - 1) >> 1
        if not _less(x, heap[parent]):
            break
        heap[k] = heap[parent]
        k = parent
    heap[k] = x


cdef inline HeapItem _pop(HeapItem* heap, Py_ssize_t* n) noexcept nogil:
    cdef HeapItem top = heap[0]
    cdef HeapItem last
    cdef Py_ssize_t k = 0
    cdef Py_ssize_t child
    n[0] -= 1
    if n[0] > 0:
        last = heap[n[0]]
        while True:
            child = 2 * k + 1
            if child >= n[0]:
                break
            if child + 1 < n[0] and _less(heap[child + 1], heap[child]):
                child += 1
            if not _less(heap[child], last):
                break
            heap[k] = heap[child]
            k = child
        heap[k] = last
    return top


cdef inline double _free_at(const int32_t[::1] res_ptr, const int32_t[::1] res_idx, double[::1] free,
                           Py_ssize_t i) noexcept nogil:
    cdef double t = 0.0
    cdef Py_ssize_t j
    for j in range(res_ptr[i], res_ptr[i + 1]):
        if free[res_idx[j]] > t:
            t = free[res_idx[j]]
    return t


def schedule_instance(const double[::1] durations, const double[::1] lags,
                      const int32_t[::1] res_ptr, const int32_t[::1] res_idx,
                      const int32_t[::1] users_ptr, const int32_t[::1] users_idx,
                      const int32_t[::1] n_deps, double[::1] ready, double[::1] free,
                      double[::1] starts, double[::1] ends):
    """Schedule n kernels. Kernel i holds its resources for durations[i] and ends lags[i] later
    (a transfer's latency: the link is free for the next transfer while the data travels).
    res_ptr/res_idx: the resources kernel i holds (CSR); users_ptr/
    users_idx: the kernels that depend on kernel i (CSR); n_deps[i]: how many kernels of this
    instance kernel i depends on; ready[i]: the earliest start its dependencies on earlier
    instances allow (overwritten); free[r]: when resource r is next free (updated). Writes
    starts and ends (ns)."""
    cdef Py_ssize_t n = durations.shape[0]
    if not (n_deps.shape[0] == ready.shape[0] == starts.shape[0] == ends.shape[0] == lags.shape[0] == n
            and users_ptr.shape[0] == n + 1 and res_ptr.shape[0] == n + 1):
        raise ValueError("schedule_instance: arrays of different lengths")
    cdef Py_ssize_t m = users_idx.shape[0]
    if n == 0:
        return
    cdef int32_t* waiting = <int32_t*> malloc(n * sizeof(int32_t))
    cdef HeapItem* heap = <HeapItem*> malloc((n + m + 1) * sizeof(HeapItem))
    if waiting == NULL or heap == NULL:
        c_free(waiting)
        c_free(heap)
        raise MemoryError()
    cdef Py_ssize_t size = 0, i, j, scheduled = 0
    cdef int32_t u
    cdef HeapItem item
    cdef double start, end, t, f
    with nogil:
        for i in range(n):
            waiting[i] = n_deps[i]
            if waiting[i] == 0:
                item.t = 0.0
                item.i = <int32_t> i
                _push(heap, &size, item)
        while size > 0:
            item = _pop(heap, &size)
            i = item.i
            f = _free_at(res_ptr, res_idx, free, i)
            start = f if f > ready[i] else ready[i]
            if start > item.t:
                item.t = start          # a resource got busy meanwhile
                _push(heap, &size, item)
                continue
            end = start + durations[i]
            for j in range(res_ptr[i], res_ptr[i + 1]):
                free[res_idx[j]] = end
            end += lags[i]
            starts[i] = start
            ends[i] = end
            scheduled += 1
            for j in range(users_ptr[i], users_ptr[i + 1]):
                u = users_idx[j]
                if end > ready[u]:
                    ready[u] = end
                waiting[u] -= 1
                if waiting[u] == 0:
                    f = _free_at(res_ptr, res_idx, free, u)
                    t = ready[u] if ready[u] > f else f
                    item.t = t
                    item.i = u
                    _push(heap, &size, item)
    c_free(waiting)
    c_free(heap)
    if scheduled != n:
        raise ValueError(f"schedule_instance: {n - scheduled} kernels wait on a cycle of dependencies")
