"""Per-device busy time (the union of its kernels' intervals) and the overlap of devices in a
kernel replay's statistics, on intervals worked out by hand."""
import numpy as np
import pytest

from pimdram.system.tables import Accumulator, _union
from pimdram.system.timing import ENERGY_KINDS


class _Trace:
    def __init__(self, devices):
        self.header = {"system": {"devices": {"gpu": {}, "pim": {}}, "links": {"link": {}}},
                       "workload": {"phase": "decode", "batch": 1}}
        self.kernels = [{"id": i, "name": "k", "op": "gemm", "step": 0, "phase": "decode", "device": d,
                         "requests": [0], "layer": 0, "flops": 0, "bytes_read": 0, "bytes_written": 0}
                        for i, d in enumerate(devices)]


def test_union_of_intervals():
    lo, hi = _union(np.array([20.0, 0.0, 5.0]), np.array([30.0, 10.0, 12.0]))
    assert list(lo) == [0.0, 20.0] and list(hi) == [12.0, 30.0]
    lo, hi = _union(np.array([0.0, 10.0]), np.array([10.0, 15.0]))      # touching: one interval
    assert list(lo) == [0.0] and list(hi) == [15.0]


def test_busy_and_overlap_over_two_steps():
    devices = ["gpu", "gpu", "gpu", "pim", "link"]
    kt = _Trace(devices)
    acc = Accumulator(kt, {}, 1.0)
    plan = acc.plan(kt.kernels)
    zero = np.zeros((len(devices), len(ENERGY_KINDS)))
    # step 1: GPU [0,10) [5,12) [20,30): 22 ns; PIM [8,25): 17; the link [0,40) does not count in
    # the overlap; GPU and PIM at once: [8,12) and [20,25): 9 ns
    acc.add_step(plan, 0, zero, np.array([0.0, 5.0, 20.0, 8.0, 0.0]), np.array([10.0, 12.0, 30.0, 25.0, 40.0]))
    assert acc.busy_union == {"gpu": 22.0, "pim": 17.0, "link": 40.0}
    assert acc.overlap == 9.0
    # step 2 starts before step 1's GPU work ends: GPU [28,35) adds [30,35) only; PIM [30,32)
    # adds 2; both at once [30,32): 2 more. The third GPU kernel [36,37) and the link [40,41)
    acc.add_step(plan, 1, zero, np.array([28.0, 36.0, 36.0, 30.0, 40.0]), np.array([35.0, 37.0, 37.0, 32.0, 41.0]))
    assert acc.busy_union == {"gpu": 28.0, "pim": 19.0, "link": 41.0}
    assert acc.overlap == 11.0
    tables, summary = acc.tables(0.1, True, [], False)
    dev = tables["device_energy"]
    busy = dict(zip(dev.columns["device"], dev.columns["busy_ns"]))
    assert busy == {"gpu": pytest.approx(28.0), "pim": pytest.approx(19.0), "link": pytest.approx(41.0)}
    assert summary["overlap_ns"] == 11.0
