"""lower.uniform: a channel's program of n instances of one context, resumed from the pairs
built for other n, is attention_layer's program command by command."""
import dataclasses

import numpy as np
import pytest

from pimdram._engine import Engine
from pimdram.config.memory import load_memory
from pimdram.lower.attacc import _Builder, attacc_mode, attention_layer
from pimdram.lower.program import assemble
from pimdram.lower.uniform import UniformAttention
from pimdram.replay import engine_params


def _one_channel(design):
    spec = load_memory(design)
    one = dataclasses.replace(spec, counts=[1] + list(spec.counts[1:]))
    return one, Engine(engine_params(one)).node_id


def _columns(spec, b):
    cols, counts = assemble(spec, [(0, b)])
    return cols, counts


@pytest.mark.parametrize("design", ["attacc-bank", "attacc-bankgroup", "attacc-buffer", "papi-attn"])
def test_programs_of_any_count_equal_attention_layer(design):
    spec, node_id = _one_channel(design)
    mode = attacc_mode(spec)
    # a long context: the GEMVs cross refresh fences (the state passed from pair to pair)
    for L, d, reuse in ((1500, 128, 1), (37, 64, 4)):
        u = UniformAttention(lambda: _Builder(spec, node_id, mode, reuse), L, d)
        # counts out of order: up, down to a count whose pairs are built, odd and even
        for n in (3, 1, 9, 2, 5, 0, 8):
            want = _Builder(spec, node_id, mode, reuse)
            attention_layer(want, n, L, d)
            got = u.program(n)
            a, ca = _columns(spec, want)
            b, cb = _columns(spec, got)
            assert ca == cb, (L, n)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{k}, L={L}, n={n}")
        # up to 9 instances: 4 pairs; without refresh fences (bank level: every bank at once)
        # each pair after the first begins as the one before and is its commands on other rows
        assert len(u.states) == 5
        if mode == "bank":
            assert u.reused == 2


def test_a_count_beyond_the_rows_is_refused_as_attention_layer_refuses_it():
    spec, node_id = _one_channel("attacc-bank")
    mode = attacc_mode(spec)
    u = UniformAttention(lambda: _Builder(spec, node_id, mode, 1), 4096, 128)
    rows = u.rows
    n = spec.rows // (2 * rows) + 1
    with pytest.raises(ValueError, match=f"{n} instances of 4096 tokens x 128 need {2 * n * rows} rows"):
        u.program(n)
    with pytest.raises(ValueError, match=f"{n} instances of 4096 tokens x 128 need {2 * n * rows} rows"):
        attention_layer(_Builder(spec, node_id, mode, 1), n, 4096, 128)
    assert len(u.states) == 1           # nothing built for a refused count


def test_a_memory_keeps_the_most_recent_contexts_and_times_evicted_ones_alike(monkeypatch):
    import pimdram.system.pim as pim
    from pimdram.config.system import load_system
    pool = load_system("dgx-attacc").memories["attacc_hbm"]
    monkeypatch.setattr(pim, "UNIFORM_LIMIT", 2)
    pm = pim.PimMemory(pool)
    lengths = (300, 700, 1100, 300)
    got = []
    for L in lengths:
        got.append(pm.run("layer", [(3, 1)], (L, 128, 1), True, 1).duration_ns)
        pm.cache.clear()                        # simulate again: the programs come from UniformAttention
    assert len(pm._uniform) == 2
    # 300 tokens was evicted by 1100 and built again: the same time as the first
    assert got[3] == got[0]
    fresh = pim.PimMemory(pool)
    assert [fresh.run("layer", [(3, 1)], (L, 128, 1), True, 1).duration_ns for L in lengths] == got
