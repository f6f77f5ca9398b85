"""The system model on cases worked out by hand: a kernel's duration and energy on an xPU
(roofline with utilisation limits, fixed cost, occupancy, on-chip traffic), transfers and ring
collectives on links, PIM command energy, and list scheduling."""
import math

import numpy as np
import pytest

from pimdram.config.memory import load_memory
from pimdram.config.system import Device, DeviceEnergy, Link, load_system
from pimdram.system.links import collective_ns, link_timing, transfer_ns
from pimdram.system.pim import pim_energy
from pimdram.system.schedule import list_schedule
from pimdram.system.xpu import occupancy, onchip_bytes, xpu_timing

ENERGY = DeviceEnergy(memory_pj_per_byte=20.0, mac_pj=0.5, l2_pj_per_byte=2.0, l1_pj_per_byte=1.0,
                      register_pj_per_byte=0.1)


def device(**kw):
    base = dict(name="x", kind="gpu", count=1, memory="m", peak_tflops=100.0, bandwidth_gbs=1000.0,
                compute_utilization=0.5, bandwidth_utilization=0.8,
                kernel_overhead_us={"default": 2.0, "norm": 5.0, "activation": 7.0},
                energy=ENERGY)
    base.update(kw)
    return Device(**base)


def fc(M, N, K, name="ffn_up"):
    x, w, y = M * K * 2, K * N * 2, M * N * 2
    return {"name": name, "op": "gemm" if M > 1 else "gemv", "shape": {"M": M, "N": N, "K": K},
            "flops": 2 * M * N * K, "bytes_read": x + w, "bytes_written": y,
            "operands": [{"name": "x", "access": "read", "bytes": x}, {"name": "w", "access": "read", "bytes": w},
                         {"name": "y", "access": "write", "bytes": y}]}


def test_memory_bound_kernel_counts_bytes_read_and_written_at_the_bandwidth_limit():
    k = fc(1, 4096, 4096)
    moved = 4096 * 2 + 4096 * 4096 * 2 + 4096 * 2           # x + W + y = 33,570,816 B
    t = xpu_timing(k, device())
    assert t.duration_ns == pytest.approx(moved / (1000e9 * 0.8) * 1e9)      # 41,963.52 ns
    assert t.duration_ns == pytest.approx(41963.52)


def test_compute_bound_kernel_at_the_compute_limit():
    k = fc(4096, 4096, 4096)
    t = xpu_timing(k, device())
    assert t.duration_ns == pytest.approx(2 * 4096 ** 3 / (100e12 * 0.5) * 1e9)   # 2,748,779.07 ns
    # a group of 4 devices does a quarter of the work on each
    assert xpu_timing(k, device(count=4)).duration_ns == pytest.approx(2 * 4096 ** 3 / (4 * 100e12 * 0.5) * 1e9)


def test_small_kernels_take_the_fixed_cost_by_name_then_op_then_default():
    tiny = {"name": "attention_norm", "op": "norm", "shape": {"elements": 64}, "flops": 448,
            "bytes_read": 256, "bytes_written": 128, "operands": []}
    assert xpu_timing(tiny, device()).duration_ns == 5000.0                      # op norm
    assert xpu_timing(dict(tiny, name="activation", op="elementwise"), device()).duration_ns == 7000.0
    assert xpu_timing(dict(tiny, name="attention_residual", op="elementwise"), device()).duration_ns == 2000.0
    # a large kernel is not raised to its fixed cost
    big = fc(1, 4096, 4096, name="qkv_projection")
    assert xpu_timing(big, device(kernel_overhead_us={"default": 40.0})).duration_ns == pytest.approx(41963.52)


def attention(requests, kv_heads, L=100, d=64, g=1):
    inst = requests * kv_heads
    k = {"name": "attention_score", "op": "attention_score", "requests": list(range(requests)),
         "kv_heads": [0, kv_heads], "shape": {"M": g, "N": L, "K": d, "instances": inst},
         "flops": 2 * g * L * d * inst, "bytes_read": inst * (g * d + L * d) * 2,
         "bytes_written": inst * g * L * 2}
    k["operands"] = [{"name": "q", "access": "read", "bytes": inst * g * d * 2},
                     {"name": "k_cache", "access": "read", "bytes": inst * L * d * 2},
                     {"name": "scores", "access": "write", "bytes": inst * g * L * 2}]
    return k


def test_attention_occupancy_one_block_per_request_and_query_head():
    sm = device(cores=108, count=8)
    # 1 request x 96 heads over 8 GPUs: 12 blocks on 108 SMs
    assert occupancy(attention(1, 96), sm) == pytest.approx(12 / 108)
    # 54 requests: 648 blocks per GPU = 6 full waves; 78 requests: 936 = 8.67 waves -> 9
    assert occupancy(attention(54, 96), sm) == 1.0
    assert occupancy(attention(78, 96), sm) == pytest.approx(936 / 972)
    # GQA: 8 KV heads x g = 12 query heads per KV head -> the same 96 blocks per request
    assert occupancy(attention(1, 8, g=12), sm, group_size=12) == pytest.approx(12 / 108)
    k = attention(1, 96, L=1000)
    roofline = k["bytes_read"] + k["bytes_written"]
    t = xpu_timing(k, sm)
    assert t.duration_ns == pytest.approx(roofline / (8 * 1000e9 * 0.8) * 1e9 * 108 / 12)
    # a prefill of 1,000 tokens runs a block per 128 query rows as well: 96 heads x 8 tiles =
    # 768 blocks, 96 per GPU on 108 SMs
    prefill = dict(attention(1, 96, L=1000, g=1000), reuse=1000)
    assert occupancy(prefill, sm) == pytest.approx(96 / 108)
    assert occupancy(dict(attention(1, 8, g=12 * 1000), reuse=12 * 1000), sm, group_size=12) == \
        pytest.approx(96 / 108)
    # Flash-Decoding (split_kv_tokens 256): 3,000 cached tokens in 12 chunks, 96 x 12 = 1,152
    # blocks, 144 per GPU: two waves of 108, 144 / 216 busy
    split = device(cores=108, count=8, split_kv_tokens=256)
    assert occupancy(dict(attention(1, 96, L=3000), tokens=[0, 3000]), split) == pytest.approx(144 / 216)
    assert occupancy(dict(attention(1, 96, L=3000), tokens=[0, 3000]), sm) == pytest.approx(12 / 108)
    # no cores given: no occupancy limit; FC kernels are never limited
    assert occupancy(k, device()) == 1.0 and occupancy(fc(1, 64, 64), sm) == 1.0


def test_onchip_traffic_of_a_blocked_matrix_product():
    k = fc(2, 256, 64)                       # x 256 B, W 32,768 B, y 1,024 B
    tiles = {"thread_block": (128, 128), "register": (16, 16)}
    l2, l1, reg = onchip_bytes(k, tiles)
    assert l2 == 256 * 2 + 32768 * 1 + 1024          # x re-read per column of 128-wide tiles
    assert l1 == 256 * 16 + 32768 * 1 + 1024         # ... per column of 16-wide tiles
    assert reg == 3 * 2 * 256 * 64 * 2               # three operands per MAC, 2 B each
    # without tiles each level sees the kernel's bytes once, as do non-product kernels
    assert onchip_bytes(k, {})[:2] == (256 + 32768 + 1024,) * 2
    norm = {"op": "norm", "shape": {"elements": 8}, "bytes_read": 48, "bytes_written": 16, "operands": []}
    assert onchip_bytes(norm, tiles) == (64, 64, 64)


def test_xpu_energy_by_kind():
    k = fc(2, 256, 64)
    t = xpu_timing(k, device(tiles={"thread_block": (128, 128), "register": (16, 16)}))
    moved = 256 + 32768 + 1024
    assert t.energy["memory"] == pytest.approx(moved * 20.0e-12)
    assert t.energy["compute"] == pytest.approx(2 * 256 * 64 * 0.5e-12)        # 32,768 MACs
    assert t.energy["onchip"] == pytest.approx((34304 * 2.0 + 37888 * 1.0 + 196608 * 0.1) * 1e-12)
    assert t.energy["communication"] == 0.0
    assert t.energy_j == pytest.approx(sum(t.energy.values()))
    # a figure the device lacks makes the kinds that need it NaN, not zero
    bare = xpu_timing(k, device(energy=DeviceEnergy(memory_pj_per_byte=20.0)))
    assert bare.energy["memory"] == pytest.approx(moved * 20.0e-12)
    assert math.isnan(bare.energy["compute"]) and math.isnan(bare.energy_j)


NVLINK = Link("nv", ("gpu", "gpu"), bandwidth_gbs=300.0, latency_us=3.03, energy_pj_per_byte=10.4)


def test_ring_all_reduce_and_all_gather():
    # 8 GPUs, a 24,576 B tensor (batch 1 x 12,288 FP16): 14 steps of 3.03 us + 3,072 B / 300 GB/s
    assert collective_ns("all_reduce", 24576, 8, NVLINK) == pytest.approx(14 * (3030 + 3072 / 300))
    assert collective_ns("all_reduce", 24576, 8, NVLINK) == pytest.approx(42563.36)
    assert collective_ns("all_gather", 24576, 8, NVLINK) == pytest.approx(7 * (3030 + 3072 / 300))
    assert collective_ns("all_reduce", 24576, 1, NVLINK) == 0.0
    system = load_system("dgx-a100")
    k = {"name": "all_reduce", "op": "communication", "collective": "all_reduce",
         "shape": {"bytes": 24576, "devices": 8}, "bytes_read": 24576, "bytes_written": 24576}
    t = link_timing(k, NVLINK, system)
    # the link is busy for the 14 chunks (143.36 ns); the 14 latencies come after, link free
    assert (t.duration_ns, t.latency_ns) == (pytest.approx(14 * 3072 / 300), pytest.approx(14 * 3030))
    assert t.duration_ns + t.latency_ns == pytest.approx(42563.36)
    # every device sends 2 (N - 1) / N of the tensor: 14 x 24,576 B cross the links
    assert t.energy["communication"] == pytest.approx(14 * 24576 * 10.4e-12)


def test_point_to_point_transfers_on_shared_and_paired_links():
    shared = Link("l", ("gpu", "attacc"), 300.0, latency_us=1.0, energy_pj_per_byte=10.4, topology="shared")
    pairs = Link("l", ("gpu", "attacc"), 300.0, latency_us=1.0, energy_pj_per_byte=10.4, topology="pairs")
    assert transfer_ns(3_000_000, shared) == pytest.approx(1000 + 10_000)
    assert transfer_ns(3_000_000, pairs, lanes=8) == pytest.approx(1000 + 1250)
    system = load_system("dgx-attacc")             # 8 GPUs, each with its own AttAcc device
    k = {"name": "transfer", "op": "communication", "shape": {"bytes": 3_000_000}, "bytes_read": 3_000_000,
         "bytes_written": 3_000_000}
    # the link is busy for the bytes; the data arrives a latency later
    t = link_timing(k, pairs, system)
    assert (t.duration_ns, t.latency_ns) == (pytest.approx(1250), 1000)
    assert link_timing(k, shared, system).duration_ns + link_timing(k, shared, system).latency_ns == \
        pytest.approx(11000)
    assert link_timing(k, pairs, system).energy["communication"] == pytest.approx(3e6 * 10.4e-12)


def test_attacc_pim_energy_counts_array_access_once_and_macs_with_their_reuse():
    spec = load_memory("attacc-bank")
    totals = np.zeros(len(spec.command_names))
    totals[spec.command_index("ACTAB")] = 3
    totals[spec.command_index("MACAB")] = 10
    e = pim_energy(spec, totals, reuse=4)
    # 10 all-bank MACs x 64 banks x 32 B = 20,480 B at 4.4 pJ/B (activation included: the
    # activates add nothing); 20,480 B / 2 FP16 weights x 4 query rows = 40,960 MACs at 0.32 pJ
    assert e["memory"] == pytest.approx(20480 * 4.4e-12)
    assert e["compute"] == pytest.approx(40960 * 0.32e-12)


def test_list_schedule_respects_dependencies_and_resources():
    kernels = [{"id": 0, "deps": []}, {"id": 1, "deps": [0]}, {"id": 2, "deps": []}, {"id": 3, "deps": [1, 2]}]
    starts, ends = list_schedule(kernels, [10.0, 5.0, 7.0, 1.0], ["a", "a", "b", "a"])
    assert starts == [0.0, 10.0, 0.0, 15.0] and ends == [10.0, 15.0, 7.0, 16.0]
    # one resource: kernels 1 and 2 could both start at 10; the tie goes in trace order
    starts, ends = list_schedule(kernels, [10.0, 5.0, 7.0, 1.0], ["a"] * 4)
    assert starts == [0.0, 10.0, 15.0, 22.0] and ends[3] == 23.0


def test_a_transfer_frees_its_link_before_its_data_arrives():
    # transfers 0 and 1 on link l (2 ns of bytes each, 3 ns of latency); kernel 2 on device a
    # needs transfer 0's data: it starts when the data arrives (0 + 2 + 3 = 5), while transfer 1
    # used the link from 2 (its data arrives at 2 + 2 + 3 = 7)
    kernels = [{"id": 0, "deps": []}, {"id": 1, "deps": []}, {"id": 2, "deps": [0]}]
    starts, ends = list_schedule(kernels, [2.0, 2.0, 1.0], ["l", "l", "a"], [3.0, 3.0, 0.0])
    assert starts == [0.0, 2.0, 5.0] and ends == [5.0, 7.0, 6.0]


def test_the_compiled_step_scheduler_agrees_with_the_reference():
    from pimdram.system.schedule import StepScheduler
    rng = np.random.default_rng(7)
    for trial in range(30):
        n = int(rng.integers(1, 60))
        kernels = [{"id": i, "deps": sorted({int(d) for d in rng.integers(0, i, int(rng.integers(0, 4)))} if i else [])}
                   for i in range(n)]
        durations = rng.integers(0, 5, n).astype(float) * float(rng.choice([1.0, 0.5, 3.25]))
        lags = rng.integers(0, 3, n).astype(float) * float(rng.choice([0.0, 1.0, 0.75]))
        # one resource, or (a quarter of the kernels) two: a PIM kernel over two channel partitions
        resources = [str(r) if rng.random() < 0.75 else (str(r), str((r + 1) % 3)) for r in rng.integers(0, 3, n)]
        want = list_schedule(kernels, list(durations), resources, list(lags))
        s = StepScheduler(resources)
        starts, ends = s.run(s.plan(kernels, resources), durations, lags)
        assert list(starts) == want[0] and list(ends) == want[1], trial


def test_the_step_scheduler_carries_busy_resources_and_previous_step_dependencies():
    from pimdram.system.schedule import StepScheduler
    kernels = [{"id": 0, "deps": []}, {"id": 1, "deps": [0], "prev_deps": [1]}, {"id": 2, "deps": []}]
    s = StepScheduler(["a", "b"])
    plan = s.plan(kernels, ["a", "b", "b"])
    # kernels 0 (a) and 2 (b) start at 0; kernel 1 (b) after kernel 0
    assert [list(x) for x in s.run(plan, np.array([2.0, 3.0, 1.0]))] == [[0, 2, 0], [2, 5, 1]]
    # step two: a is free at 2, b at 5. Kernel 0 runs 2-4; kernel 1 waits for it and for the
    # previous step's kernel 1 (ended at 5): 5-8, before kernel 2, which could start at 5 too but
    # comes later in the trace (ties go in order): 8-9
    assert [list(x) for x in s.run(plan, np.array([2.0, 3.0, 1.0]))] == [[2, 5, 8], [4, 8, 9]]
