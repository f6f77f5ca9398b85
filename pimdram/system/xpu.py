"""Kernels on an xPU (GPU, NPU), and PIM kernels that have no command-level lowering: a roofline
with utilisation limits, occupancy and a fixed cost, and energy from bytes, MACs and an on-chip
traffic model. docs/systems.md spells out every formula.

    time   = max(max(FLOPs / (peak x compute utilisation), bytes / (bandwidth x bandwidth
             utilisation)) / occupancy, fixed cost)
    energy = bytes x memory_pj_per_byte + FLOPs / 2 x mac_pj
             + L2, L1 and register traffic x their pJ/B

Peak and bandwidth are the device group's (a tensor-parallel group of N devices does 1/N of the
work on each). Occupancy: attention kernels (score, softmax, context) run one thread block per
request, query head and tile of 128 new tokens (one tile in decode), so a device of `cores` SMs
with u blocks of them is busy u / (ceil(u / cores) x cores) of its SMs; other kernels fill the
device. A device with `split_kv_tokens` (Flash-Decoding) also splits a decode step's cached
tokens into chunks of that many, a block each.
"""
import math

from .timing import KernelTiming, energy, joules

PRODUCT_OPS = ("gemm", "gemv", "attention_score", "attention_context")
ATTENTION_OPS = ("attention_score", "softmax", "attention_context")
#: query rows per thread block of a tiled attention (FlashAttention-2, Dao 2023: blocks of 128 rows)
QUERY_TILE_ROWS = 128


def xpu_timing(kernel, device, group_size=1):
    """KernelTiming of `kernel` (a kernel-trace record) on `device` (config.system.Device).
    `group_size`: query heads per KV head of the model (thread blocks per attention instance)."""
    moved = kernel["bytes_read"] + kernel["bytes_written"]
    t_compute = 0.0
    if device.peak_flops:
        t_compute = kernel["flops"] / (device.peak_flops * device.compute_utilization) * 1e9
    t_memory = 0.0
    if device.bandwidth:
        t_memory = moved / (device.bandwidth * device.bandwidth_utilization) * 1e9
    roofline = max(t_compute, t_memory) / occupancy(kernel, device, group_size)
    duration = max(roofline, device.overhead_ns(kernel["name"], kernel["op"]))
    return KernelTiming(duration, "model", energy=xpu_energy(kernel, device))


def occupancy(kernel, device, group_size=1):
    """Fraction of the device's SMs an attention kernel keeps busy (1 for other kernels or a
    device without `cores`)."""
    if not device.cores or kernel["op"] not in ATTENTION_OPS:
        return 1.0
    lo, hi = kernel.get("kv_heads", [0, 1])
    # new tokens per request: a prefill's attention also runs a block per tile of query rows
    new_tokens = max(1, (kernel.get("reuse") or group_size) // group_size)
    per_request = max(1, hi - lo) * group_size * math.ceil(new_tokens / QUERY_TILE_ROWS)
    tlo, thi = kernel.get("tokens", [0, 1])
    # (cached tokens, requests) of the kernel: one pair, or a ragged kernel's `contexts`
    lengths = kernel.get("contexts") or [(max(1, thi - tlo), len(kernel.get("requests", ())) or 1)]
    blocks = 0
    for tokens, requests in lengths:
        chunks = 1
        if device.split_kv_tokens and new_tokens < QUERY_TILE_ROWS:
            # Flash-Decoding: each instance's cached tokens in chunks, a block each
            chunks = math.ceil(max(1, tokens) / device.split_kv_tokens)
        blocks += requests * per_request * chunks
    per_device = math.ceil(blocks / device.count)
    waves = math.ceil(per_device / device.cores)
    return per_device / (waves * device.cores)


def xpu_energy(kernel, device):
    """Energy by kind of a kernel on an xPU (NaN for a kind whose figure the device lacks)."""
    e = device.energy
    moved = kernel["bytes_read"] + kernel["bytes_written"]
    l2, l1, registers = onchip_bytes(kernel, device.tiles)
    onchip = joules(l2, e.l2_pj_per_byte) + joules(l1, e.l1_pj_per_byte) + joules(registers, e.register_pj_per_byte)
    return energy(memory=joules(moved, e.memory_pj_per_byte), compute=joules(kernel["flops"] / 2, e.mac_pj),
                  onchip=onchip)


def onchip_bytes(kernel, tiles):
    """(L2, L1, register) bytes a kernel moves on chip.

    A matrix product y[M x N] = x[M x K] . W[K x N] (per instance) blocked in tiles of tm x tn
    outputs reads x once per column of tiles and W once per row of tiles: x ceil(N/tn) + W
    ceil(M/tm) + y. L2 serves the thread-block tiles, L1 the register tiles; registers see three
    operands per multiply-accumulate. Every other kernel moves its bytes once at each level.
    On-chip operands (a tiled attention's scores) pass through L1 and registers, not L2."""
    moved = kernel["bytes_read"] + kernel["bytes_written"]
    kept = sum(o["bytes"] for o in kernel["operands"] if o.get("on_chip"))
    shape = kernel.get("shape", {})
    if kernel["op"] not in PRODUCT_OPS or "M" not in shape:
        return moved, moved + kept, moved + kept
    reads = [o for o in kernel["operands"] if o["access"] == "read"]
    if len(reads) < 2:
        return moved, moved + kept, moved + kept
    x, w = reads[0]["bytes"], sum(o["bytes"] for o in reads[1:])
    y = sum(o["bytes"] for o in kernel["operands"] if o["access"] == "write")
    x_l2 = 0 if reads[0].get("on_chip") else x
    y_l2 = kernel["bytes_written"]
    M, N, K = shape["M"], shape["N"], shape["K"]

    # a ragged attention kernel: per request N (score) or K (context) is its own token count
    lengths = kernel.get("contexts")
    requests = sum(n for _, n in lengths) if lengths else 1

    def traffic(tile, x, y, everything):
        if tile is None:
            return everything
        tm, tn = tile
        if lengths and kernel["op"] == "attention_score":
            # x (the queries) is read once per column tile of each request's own N
            return sum(x * n / requests * math.ceil(t / tn) for t, n in lengths) + w * math.ceil(M / tm) + y
        return x * math.ceil(N / tn) + w * math.ceil(M / tm) + y

    instances = shape.get("instances", 1)
    macs = M * N * K * instances
    element = x / (M * K * instances) if M * K * instances else 0
    if lengths:
        # ragged: the MACs are the FLOPs' half (each request at its own length), x's elements its shape's
        macs = kernel["flops"] // 2
        elements = math.prod(reads[0].get("shape") or [0])
        element = x / elements if elements else 0
    return (traffic(tiles.get("thread_block"), x_l2, y_l2, moved),
            traffic(tiles.get("register"), x, y, moved + kept), 3 * macs * element)
