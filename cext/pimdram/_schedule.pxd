# List scheduling of a kernel DAG over resources (pimdram.system.schedule), in C.
from libc.stdint cimport int32_t

cdef struct HeapItem:
    double t          # earliest start known when pushed
    int32_t i         # kernel index (ties go to the lower index)
