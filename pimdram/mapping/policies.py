"""Mapping policies: which device runs each kernel (gpu-only, attacc, neupims, ianus, papi, hybe,
pim-only)."""
import math

from ..llm.kernels import ATTENTION_NAMES, FC_NAMES

PIM_ATTENTION = ("kv_cache_append", "attention_score", "attention_context")


def host_device(system, phase):
    """The device that runs everything a policy does not send elsewhere (norms, residuals, embedding)."""
    p = system.policy
    if p in ("gpu-only", "attacc", "papi"):
        return system.roles["xpu"]
    if p in ("neupims", "ianus"):
        return system.roles["npu"]
    if p == "pim-only":
        return system.roles["pim"]
    return system.roles["prefill" if phase == "prefill" else "decode"]


def fc_estimate_seconds(kernel, device):
    """Roofline latency of a kernel on a device: max(FLOPs / peak, bytes / bandwidth)."""
    return max(kernel.flops / device.peak_flops, (kernel.bytes_read + kernel.bytes_written) / device.bandwidth)


def ffn_pim_columns(system, M, K, N, weight_bytes):
    """AttAcc's FF co-processing: output columns of an FFN product (M x K by K x N) to run on the
    PIM device beside the xPU so that both parts end together.

    A column costs each device its roofline time (2 M K FLOPs and K weights, at the xPU's
    utilisation limits and at the PIM device's derived peak and internal bandwidth). The PIM
    part spreads its columns round robin over the memory's channels and its lowering works in
    groups of `fc_row_granule` output rows per channel (AttAcc's bank and bank-group modes: 16),
    so the PIM part takes whole groups on every channel: the split is the multiple of channels
    x granule (or all N) that minimises the later of the two ends; 0 when no PIM share beats the
    xPU alone."""
    xpu, pim = system.device("xpu"), system.device("pim")
    pool = system.memory_of(system.roles["pim"])

    def per_column(dev, compute_util=1.0, bandwidth_util=1.0):
        return max(2 * M * K / (dev.peak_flops * compute_util), K * weight_bytes / (dev.bandwidth * bandwidth_util))

    cx = per_column(xpu, xpu.compute_utilization, xpu.bandwidth_utilization)
    cp = per_column(pim)
    step = pool.channels * fc_row_granule(pool.spec)
    best, best_end = 0, N * cx
    for n in list(range(step, N, step)) + [N]:
        end = max((N - n) * cx, math.ceil(n / step) * step * cp)
        if end < best_end:
            best, best_end = n, end
    return best


def attacc_head_groups(system, model, batch, choice):
    """How many head groups AttAcc's pipelining builds a layer's attention block in.

    `heads_per_device`: AttAcc's rule, one KV head of each xPU per group (GPT-3 175B on 8 GPUs:
    96 / 8 = 12). `auto`: the most groups, up to that, that do not lengthen the attention on the
    PIM memory. A group's (request, KV head) instances spread over the channels (one per channel
    per round; mapping.place slices the channels between groups narrower than the memory), so
    the layer's attention takes ceil(G / s) x ceil(n / (C / s)) instance rounds for G groups of n
    instances in s slices of C channels, against ceil(B H / C) for one group: more groups than
    fill the channels evenly would leave channels idle. An integer: that many groups."""
    if isinstance(choice, int):
        return choice
    most = max(1, model.kv_heads // system.device("xpu").count)
    if choice == "heads_per_device":
        return most
    C = system.memory_of(system.roles["pim"]).channels

    def rounds(G):
        n = batch * math.ceil(model.kv_heads / G)
        s = max(1, min(G, C // n))
        return math.ceil(G / s) * math.ceil(n / (C // s))

    return max(G for G in range(1, most + 1) if rounds(G) <= rounds(1))


def fc_row_granule(spec):
    """Output rows per channel that a PIM design's FC lowering handles as one unit (AttAcc's
    MAC groups; 1 for the generic GEMV lowering, which packs rows x cols)."""
    lowering = spec.pim.lowering if spec.pim is not None else {}
    if lowering.get("mapping") == "attacc":
        from ..lower.attacc import fc_row_granule as attacc_granule
        return attacc_granule(lowering["mode"])
    return 1


def papi_intensity(live_batch, speculation):
    """PAPI's run-time estimate of an FC kernel's arithmetic intensity: RLP × TLP."""
    return live_batch * speculation


def attention_device(system, kernel, phase):
    """Device of an attention kernel before any KV-cache placement rule applies."""
    p = system.policy
    if p in ("attacc", "papi"):
        pim = system.roles["pim" if p == "attacc" else "attn_pim"]
        limit = system.options.get("attention_reuse_limit")
        # a GQA/speculative kernel whose per-head reuse exceeds the limit is a GEMM: leave it to the xPU
        if limit is not None and (kernel.reuse or 1) > limit:
            return system.roles["xpu"]
        return pim     # softmax too: AttAcc's softmax unit sits on the buffer die
    if p == "neupims":
        if kernel.name in PIM_ATTENTION:
            limit = system.options.get("attention_reuse_limit")
            if limit is not None and (kernel.reuse or 1) > limit:
                return system.roles["npu"]
            return system.roles["pim"]
        return system.roles["npu"]    # softmax on the NPU's vector unit
    return host_device(system, phase)


def device_for(system, kernel, live_batch, speculation):
    """The device a mapping policy chooses for one kernel (attention before placement rules)."""
    p = system.policy
    if kernel.name in ATTENTION_NAMES and kernel.name != "attention_merge":
        return attention_device(system, kernel, kernel.phase)
    if kernel.name in FC_NAMES:
        if p == "papi":
            alpha = system.options["alpha"]
            if papi_intensity(live_batch, speculation) > alpha:
                return system.roles["xpu"]
            return system.roles["fc_pim"]
        if p == "ianus":
            npu, pim = system.device("npu"), system.device("pim")
            if fc_estimate_seconds(kernel, pim) < fc_estimate_seconds(kernel, npu):
                return pim.name
            return npu.name
    return host_device(system, kernel.phase)
