"""The KV-cache planner of a served stream: how many paged blocks the system's memories hold, where
each block's bytes live, and what a swap of blocks to host memory costs.

The rule (docs/serving.md, "KV-cache capacity"): the placement `pimdram gen` makes for a decode
step of one request with `max_tokens` tokens cached says which memories hold KV cache while
requests decode and which fraction of every token's KV bytes each holds (its share: by layers or
KV heads, as the system's placement splits the cache); the weights placed in each memory, and
the larger of that step's activations and those of a prefill of `max_tokens` tokens, are set
apart. A memory holding KV cache has its
capacity minus those weights and activations free for KV; the cache holds as many blocks as the
tightest memory allows:

    blocks = min over KV memories m of floor((capacity_m - weights_m - activations_m) / (share_m x block_bytes))
    block_bytes = kv_cache_bytes_per_token x block_size

Bytes, not rows: the row granularity of the placement is not counted. A placement that splits
the cache by token range has its shares at `max_tokens` tokens. Where a prefill writes the cache
in another memory than the decode reads it from (hybe: the GPUs' memory, then the NPUs'), the
prefill side's copy is not counted: it lives only until the transfer.
"""
import math
from dataclasses import dataclass

from ..errors import WorkloadError
from ..llm.workload import Request, Workload


@dataclass(frozen=True)
class KVMemory:
    """A memory that holds KV cache, and what else is placed in it."""
    memory: str
    capacity_bytes: int
    weights_bytes: int
    activations_bytes: int
    share: float                  # fraction of every token's KV bytes held here

    @property
    def free_bytes(self):
        return self.capacity_bytes - self.weights_bytes - self.activations_bytes


@dataclass(frozen=True)
class KVPlan:
    block_size: int               # tokens per block
    block_bytes: int              # KV bytes of one block, every layer
    blocks: int                   # blocks the cache holds
    derived_blocks: int           # blocks the memories hold by the rule (blocks may be set apart from it)
    memories: tuple               # KVMemory, in the system's order

    def bytes_by_memory(self, blocks):
        """{memory: KV bytes} of `blocks` blocks in use."""
        return {m.memory: blocks * self.block_bytes * m.share for m in self.memories}

    def capacity_by_memory(self):
        """{memory: KV bytes} of the whole cache (`blocks`)."""
        return self.bytes_by_memory(self.blocks)


def plan_kv_cache(model, system, block_size, max_tokens, dtype="fp16", kv_blocks=None):
    """The KVPlan of `model` on `system` (loaded specs); `kv_blocks` sets the number of blocks
    instead of the rule (the shares and the rule's figure are still reported)."""
    from ..mapping import generate_kernel_trace

    placed = {m: {"weights": 0, "kv_cache": 0, "activations": 0} for m in system.memories}
    for phase in ("decode", "prefill"):
        wl = Workload((Request(0, max_tokens, 2),), phase=phase, weight_dtype=dtype, activation_dtype=dtype,
                      kv_cache_dtype=dtype)
        regions = generate_kernel_trace(model, system, wl, allow_overcommit=True).header["placement"]["regions"]
        sums = {m: {"weights": 0, "kv_cache": 0, "activations": 0} for m in system.memories}
        for r in regions.values():
            sums[r["memory"]][r["kind"]] += r["bytes"]
        for m, p in sums.items():
            placed[m]["weights"] = max(placed[m]["weights"], p["weights"])
            placed[m]["activations"] = max(placed[m]["activations"], p["activations"])
            if phase == "decode":
                placed[m]["kv_cache"] = p["kv_cache"]
    kv_total = sum(p["kv_cache"] for p in placed.values())
    block_bytes = wl.bytes("kv_cache", 2 * model.kv_heads * model.head_dim * model.layers * block_size)
    memories = tuple(KVMemory(name, system.memories[name].capacity, p["weights"], p["activations"],
                              p["kv_cache"] / kv_total)
                     for name, p in placed.items() if p["kv_cache"])
    derived = None
    for m in memories:
        if m.free_bytes <= 0:
            raise WorkloadError(f"no room for a KV cache in memory {m.memory!r} of system {system.name}: its "
                                f"{m.capacity_bytes / 1e9:.1f} GB hold {m.weights_bytes / 1e9:.1f} GB of {model.name} "
                                f"weights and {m.activations_bytes / 1e9:.2f} GB of activations")
        fit = math.floor(m.free_bytes / (m.share * block_bytes))
        derived = fit if derived is None else min(derived, fit)
    if derived is not None and derived < 1:
        raise WorkloadError(f"no room for one KV block ({block_bytes} B) on system {system.name}")
    blocks = derived if kv_blocks is None else kv_blocks
    return KVPlan(block_size, block_bytes, blocks, derived, memories)


def swap_time(system, plan):
    """`swap_time(blocks) -> (seconds, joules)` of copying blocks one way over the system's host
    link, or WorkloadError when the system states none."""
    host = system.host
    if host is None:
        raise WorkloadError(f"--preemption swap needs the system's link to host memory and system {system.name} "
                            "has none: add a `host:` section (bandwidth_gbs, latency_us) to its YAML "
                            "(docs/systems.md), or use --preemption recompute")

    def cost(blocks):
        nbytes = blocks * plan.block_bytes
        return host.seconds(nbytes), host.joules(nbytes)
    return cost
