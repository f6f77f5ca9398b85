"""Mapping policies: which device runs each kernel (gpu-only, attacc, neupims, ianus, papi, hybe,
pim-only)."""
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
