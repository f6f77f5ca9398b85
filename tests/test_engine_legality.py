"""Is every command the engine issues legal? Random request traces on every memory preset and
controller policy, replayed with a command log and re-verified by the independent checker."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pimdram._engine import Engine
from pimdram.check import check_command_log
from pimdram.config import list_configs
from pimdram.config.memory import load_memory
from pimdram.errors import ConfigError
from pimdram.replay import CommandLogExpander, engine_params

PRESETS = list_configs("dram") + list_configs("compare")
PIM_DESIGNS = list_configs("pim")
POLICIES = [
    {},
    {"controller.row_policy": "closed"},
    {"controller.scheduler": "fcfs"},
    {"controller.scheduler": "round_robin", "controller.row_hit_cap": 2},
    {"controller.bank_queue": 4, "controller.read_queue": 8, "controller.write_queue": 8},
    {"controller.refresh": "per_bank"},
]


def run_logged(spec, address, is_write, arrival):
    engine = Engine(engine_params(spec, command_log=True))
    expand = CommandLogExpander(engine, spec)
    engine.feed(address, is_write, arrival)
    engine.run(False)
    engine.run(True)
    return engine, expand(engine.take_log())


@st.composite
def traces(draw):
    """Requests clustered on a few rows (hits, misses and conflicts all happen) with bursts and gaps."""
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    span = draw(st.sampled_from([1 << 14, 1 << 20, 1 << 26, 1 << 32]))
    hot = rng.integers(0, span // 64, size=8) * 64
    pick_hot = rng.random(n) < draw(st.floats(0, 1))
    address = np.where(pick_hot, hot[rng.integers(0, 8, size=n)] + rng.integers(0, 16, size=n) * 64,
                       rng.integers(0, span // 64, size=n) * 64).astype(np.uint64)
    is_write = (rng.random(n) < draw(st.floats(0, 1))).astype(np.uint8)
    if draw(st.booleans()):
        arrival = np.cumsum(rng.integers(0, draw(st.integers(1, 400)), size=n)).astype(np.int64)
    else:
        arrival = np.full(n, -1, dtype=np.int64)
    return address, is_write, arrival


def inexpressible(preset, policy):
    """Why `preset` cannot express `policy` (the error it must give), or None: per-bank refresh
    needs the standard to define it; per-bank command queues need requests to leave the request
    queues at their column command (Ramulator 2's presets leave at the activate). Decided from the
    preset's own data, so a preset that fails to load fails the test instead of being skipped."""
    spec = load_memory(preset)
    if policy.get("controller.refresh") == "per_bank" and "per_bank" not in spec.refresh_options:
        return "controller.refresh: 'per_bank' refresh is not defined under refresh:"
    if policy.get("controller.bank_queue", 0) > 0 and spec.controller.leave_queue_at == "activate":
        return "controller.leave_queue_at: 'activate' needs bank_queue: 0"
    return None


def expressible(preset, policy):
    return inexpressible(preset, policy) is None


def policy_id(policy):
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in policy.items()) or "default"


CASES = [pytest.param(preset, policy, id=f"{preset}-{policy_id(policy)}")
         for preset in PRESETS for policy in POLICIES if expressible(preset, policy)]
INEXPRESSIBLE = [pytest.param(preset, policy, id=f"{preset}-{policy_id(policy)}")
                 for preset in PRESETS for policy in POLICIES if not expressible(preset, policy)]


@pytest.mark.parametrize("preset, policy", CASES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=traces())
def test_every_issued_command_is_legal(preset, policy, trace):
    spec = load_memory(preset, policy)
    address, is_write, arrival = trace
    engine, log = run_logged(spec, address, is_write, arrival)
    counters = engine.counters()
    assert counters["reads"].sum() + counters["writes"].sum() == len(address)
    result = check_command_log(spec, log, refresh=False)
    assert result.ok, str(result)


@pytest.mark.parametrize("preset, policy", INEXPRESSIBLE)
def test_a_policy_a_preset_cannot_express_is_an_error_not_a_skip(preset, policy):
    with pytest.raises(ConfigError) as info:
        load_memory(preset, policy)
    assert inexpressible(preset, policy) in str(info.value)


@pytest.mark.parametrize("preset", PRESETS + PIM_DESIGNS)
def test_long_random_run_is_legal_including_refresh(preset):
    """Every memory preset and PIM design (normal traffic on it), refresh on: legal, and every
    refresh node refreshed in time."""
    spec = load_memory(preset)
    rng = np.random.default_rng(7)
    n = 12000
    address = (rng.integers(0, 1 << 26, size=n) * 64).astype(np.uint64)
    is_write = (rng.random(n) < 0.3).astype(np.uint8)
    arrival = np.cumsum(rng.integers(0, 12, size=n)).astype(np.int64)
    engine, log = run_logged(spec, address, is_write, arrival)
    refresh = spec.command_names[spec.refresh.command]
    assert np.count_nonzero(log["command"] == spec.command_index(refresh)) > 0
    result = check_command_log(spec, log)
    assert result.ok and result.n_warnings == 0, str(result)


def test_a_planted_violation_in_an_engine_log_is_caught():
    spec = load_memory("ddr4_3200")
    rng = np.random.default_rng(3)
    address = (rng.integers(0, 1 << 20, size=200) * 64).astype(np.uint64)
    _, log = run_logged(spec, address, np.zeros(200, np.uint8), np.full(200, -1, np.int64))
    reads = np.flatnonzero(log["command"] == spec.command_index("RD"))
    moved = {k: v.copy() for k, v in log.items()}
    i = reads[len(reads) // 2]
    moved["cycle"][i] = moved["cycle"][i - 1]      # squeeze a read onto the previous command
    assert not check_command_log(spec, moved, refresh=False).ok
