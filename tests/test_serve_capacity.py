"""The KV-cache planner (pimdram.serve.capacity) and the host link it swaps over, worked by hand."""
import math

import pytest

from pimdram.config.system import load_system
from pimdram.errors import ConfigError, WorkloadError
from pimdram.llm.models import load_model
from pimdram.serve.capacity import plan_kv_cache, swap_time


def test_capacity_is_the_memory_left_after_weights_and_activations_in_blocks():
    # gpt2: 2 (K, V) x 12 heads x 64 x 2 B x 12 layers = 36,864 B a token; 589,824 B a block of 16.
    # neupims: one memory of 8 x 32 x 32 x 65,536 x 1,024 B = 512 GiB holding the weights (124.4M
    # params x 2 B), the activations of a 4096-token prefill and the KV cache
    model, system = load_model("gpt2"), load_system("neupims")
    plan = plan_kv_cache(model, system, 16, 4096)
    assert plan.block_bytes == 589_824
    (m,) = plan.memories
    assert (m.memory, m.capacity_bytes, m.weights_bytes, m.share) == ("pim_hbm", 512 << 30, model.param_count() * 2,
                                                                      1.0)
    assert m.activations_bytes > 4096 * 768 * 2                    # more than one hidden-state tensor
    assert plan.blocks == plan.derived_blocks == (m.capacity_bytes - m.weights_bytes - m.activations_bytes) // 589_824
    assert plan.bytes_by_memory(10) == {"pim_hbm": 10 * 589_824}
    # given blocks replace the rule's, which is still reported
    given = plan_kv_cache(model, system, 16, 4096, kv_blocks=7)
    assert (given.blocks, given.derived_blocks) == (7, plan.blocks)


def test_only_the_memories_that_hold_kv_cache_count():
    # dgx-attacc: weights in the GPUs' memory, the KV cache in AttAcc's
    plan = plan_kv_cache(load_model("gpt2"), load_system("dgx-attacc"), 32, 1024)
    assert [(m.memory, m.weights_bytes, m.share) for m in plan.memories] == [("attacc_hbm", 0, 1.0)]
    assert plan.block_bytes == 36_864 * 32


def test_a_model_that_fills_the_memory_leaves_no_room():
    with pytest.raises(WorkloadError, match="no room for a KV cache in memory 'hbm2e' of system a100"):
        plan_kv_cache(load_model("gpt3-175b"), load_system("a100"), 16, 1024)


def test_swap_needs_a_host_link(tmp_path):
    plan = plan_kv_cache(load_model("gpt2"), load_system("neupims"), 16, 1024)
    with pytest.raises(WorkloadError, match="system neupims has none: add a `host:` section"):
        swap_time(load_system("neupims"), plan)
    p = tmp_path / "h.yaml"
    p.write_text("base: neupims\nname: neupims-host\nhost:\n  bandwidth_gbs: 32\n  latency_us: 10\n"
                 "  energy_pj_per_byte: 20\n")
    system = load_system(p)
    assert system.to_dict()["host"] == {"bandwidth_gbs": 32.0, "latency_us": 10.0, "energy_pj_per_byte": 20.0}
    assert load_system(system.to_dict()).host == system.host          # a trace header's system keeps it
    seconds, joules = swap_time(system, plan)(3)
    assert math.isclose(seconds, 10e-6 + 3 * 589_824 / 32e9)
    assert math.isclose(joules, 3 * 589_824 * 20e-12)
    p.write_text("base: neupims\nhost:\n  bandwidth_gbs: 0\n")
    with pytest.raises(ConfigError, match="host.bandwidth_gbs"):
        load_system(p)
    p.write_text("base: neupims\nhost:\n  bandwidth_gbs: 1\n  colour: red\n")
    with pytest.raises(ConfigError, match="host.colour: unknown key"):
        load_system(p)
