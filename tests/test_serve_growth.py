"""Consecutive decode steps of an unchanged batch timed as the first one grown (StepRun) rather
than built again: the growth between two kernel records, and the grown steps equal to the
steps built and replayed one by one."""
import pytest

from pimdram.serve.steptime import StepTimer, _shift
from pimdram.trace.growth import kernel_at, record_growth


def _record(L, device="pim"):
    # a context GEMV over L cached tokens of d = 64: 2 * L * 64 FLOPs, V read as L x 64 fp16
    return {"id": 7, "name": "attention_context", "op": "attention_context", "layer": 0, "step": 0,
            "phase": "decode", "device": device, "shape": {"L": L, "d": 64}, "tokens": [0, L],
            "contexts": [[L, 2], [L + 10, 1]], "flops": 2 * L * 64, "bytes_read": L * 128 + 128,
            "bytes_written": 128, "intensity": 0.5,
            "operands": [{"name": "v", "role": "kv_cache", "access": "read", "dtype": "fp16", "shape": [L, 64],
                          "bytes": L * 128, "region": "kv"},
                         {"name": "s", "role": "activation", "access": "read", "dtype": "fp16", "shape": [1, 64],
                          "bytes": 128},
                         {"name": "o", "role": "activation", "access": "write", "dtype": "fp16", "shape": [1, 64],
                          "bytes": 128}],
            "deps": [3]}


def test_the_growth_of_a_record_is_the_change_of_its_numbers_and_replays_exactly():
    grow = record_growth(_record(100), _record(101))
    # one more token: 128 more FLOPs, one more row of V (128 bytes), L, the tokens' end and both contexts
    assert grow == {"flops": 128, "shape.L": 1, "tokens.hi": 1, "contexts.0": 1, "contexts.1": 1,
                    "operands.0.bytes": 128, "operands.0.shape.0": 1}
    later = kernel_at(dict(_record(100), grow=grow), 5)
    want = _record(105)
    assert {f: later[f] for f in want if f not in ("step", "intensity")} == \
        {f: want[f] for f in want if f not in ("step", "intensity")}
    assert later["bytes_read"] == 105 * 128 + 128 and later["step"] == 5


def test_records_that_differ_in_more_than_numbers_have_no_growth():
    assert record_growth(_record(100), _record(101, device="gpu")) is None
    other = _record(101)
    other["contexts"][1][1] = 2          # a request more at the second context
    assert record_growth(_record(100), other) is None
    other = _record(101)
    other["operands"][1]["region"] = "elsewhere"
    assert record_growth(_record(100), other) is None
    assert record_growth(_record(100), _record(100)) == {}


def test_a_shift_is_every_context_longer_by_the_same_tokens():
    base = ((1, 100, 2), (1, 300, 1))
    assert _shift(base, ((1, 103, 2), (1, 303, 1))) == 3
    assert _shift(base, ((1, 101, 2), (1, 302, 1))) == 0       # unequal changes
    assert _shift(base, ((1, 101, 1), (1, 301, 1))) == 0       # a request fewer
    assert _shift(base, base) == 0 and _shift(base, ((1, 99, 2), (1, 299, 1))) == 0


@pytest.mark.parametrize("system", ["dgx-attacc", "dgx-h100", "neupims"])
def test_grown_steps_equal_the_steps_built_one_by_one(system):
    # gpt2, 6 requests at 4 contexts decoding 6 steps: the first three steps are built (the
    # first step's checks replay it with every layer, so the second has no built predecessor
    # of the same layer counts; the third is the second plus one token and starts the run), the
    # other three are the second grown 2, 3 and 4 tokens, each with one and two layers
    contexts = {40: 2, 75: 1, 300: 2, 511: 1}
    grown = StepTimer("gpt2", system)
    built = StepTimer("gpt2", system)
    for i in range(6):
        groups = [(1, c + i, k) for c, k in sorted(contexts.items())]
        a = grown("decode", groups)
        built._run = built._last = None
        b = built("decode", groups)
        assert a == b
    assert grown.grown == 6 and built.grown == 0
    assert grown.replays == built.replays


def _grown_equals_built(system, contexts, steps):
    grown, built = StepTimer("gpt2", system), StepTimer("gpt2", system)
    for i in range(steps):
        groups = [(1, c + i, 1) for c in contexts]
        a = grown("decode", groups)
        built._run = built._last = None
        assert a == built("decode", groups), f"step {i}"
    return grown


def test_a_run_of_grown_steps_ends_where_neupims_packs_its_sub_batches_anew():
    # NeuPIMs packs requests into 2 sub-batches by length (context + 2), longest first, each to
    # the lighter: 100 | 40 + 30 + 5 while the lengths are d tokens longer with 70 + 2d < 100 + d;
    # from d = 30 on (130 | 70 + 60, a tie goes to the first) the shortest goes to the first
    # sub-batch: the kernels change there, so the run must end
    timer = _grown_equals_built("neupims", [98, 38, 28, 3], 36)
    assert timer._layout("decode", ((1, 32, 1), (1, 57, 1), (1, 67, 1), (1, 127, 1)))[1] == (1, 1, 1, 0)
    assert timer._layout("decode", ((1, 33, 1), (1, 58, 1), (1, 68, 1), (1, 128, 1)))[1] == (0, 1, 1, 0)
    assert timer.grown > 0


def test_a_run_of_grown_steps_ends_where_a_context_crosses_a_kv_part_bound(tmp_path):
    from test_mapping import custom_system

    def by_token(d):
        d["placement"]["kv_cache"]["split"] = [{"tokens": [0, 48], "memory": "attacc_hbm"},
                                               {"tokens": [48, 100000], "memory": "gpu_hbm"}]
        d["mapping"]["head_groups"] = 1
    system = custom_system(tmp_path, "dgx-attacc", by_token)
    # contexts 40 and 60: the second has filled the first part (tokens 0-47); the first fills it
    # on the 8th step (47 cached + 1 new: then both have 48 tokens there, and the part's kernel
    # is no longer ragged) and crosses into the second part on the 9th
    timer = _grown_equals_built(system, [40, 60], 14)
    assert timer._bounds == [0, 48, 100000]

    def at_48(c1, c2):              # each group's (cached, filled, beyond) flags at token 48
        sides = timer._layout("decode", ((1, c1, 1), (1, c2, 1)))[0]
        return sides[1], sides[4]
    assert at_48(46, 66) == ((False, False, False), (True, True, True))
    assert at_48(47, 67) == ((False, True, False), (True, True, True))
    assert at_48(48, 68) == ((True, True, True), (True, True, True))
    assert timer.grown > 0
