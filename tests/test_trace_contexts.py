"""trace.contexts: one converted form per contexts object, and the growth kernel_at applies."""
from pimdram.trace.contexts import as_list, as_tuple, grown_by
from pimdram.trace.growth import kernel_at, parse_grow, record_growth


def test_one_list_per_tuple_and_one_tuple_per_list():
    t = ((100, 2), (250, 1))
    a, b = as_list(t), as_list(t)
    assert a == [[100, 2], [250, 1]] and a is b
    other = tuple(tuple(p) for p in [[100, 2], [250, 1]])    # equal, another object: its own list
    assert as_list(other) == a and as_list(other) is not a
    assert as_tuple(a) == t and as_tuple(a) is as_tuple(a)


def test_grown_by_moves_every_context_and_keeps_the_counts():
    ctx = [[10, 2], [15, 1], [400, 3]]
    assert grown_by(ctx, 3) == [[13, 2], [18, 1], [403, 3]]
    assert grown_by(ctx, 3) is grown_by(ctx, 3)
    assert ctx == [[10, 2], [15, 1], [400, 3]]          # the record's own list is untouched


def _record(ctx):
    return {"id": 0, "name": "attention_score", "op": "attention_score", "step": 0, "flops": 64 * sum(t * n for t, n in ctx),
            "shape": {"M": 1, "N": max(t for t, _ in ctx), "K": 64}, "contexts": [list(p) for p in ctx],
            "operands": [], "bytes_read": 0, "bytes_written": 0}


def test_a_decode_growth_is_unit_and_kernel_at_applies_it_as_the_dense_rule_does():
    a, b = _record([(10, 2), (15, 1)]), _record([(11, 2), (16, 1)])
    grow = record_growth(a, b)
    assert grow == {"flops": 64 * 3, "shape.N": 1, "contexts.0": 1, "contexts.1": 1}
    r = dict(a, grow=grow)
    parsed = parse_grow(r)
    assert ("contexts", "unit", None, ((0, 1), (1, 1))) in parsed
    z = kernel_at(r, 5, parsed)
    assert z["contexts"] == [[15, 2], [20, 1]] and z["shape"]["N"] == 20 and z["flops"] == a["flops"] + 5 * 64 * 3
    # a growth of 2 per step is dense but not unit: each context moves by its own change
    b2 = _record([(12, 2), (17, 1)])
    r2 = dict(a, grow=record_growth(a, b2))
    p2 = parse_grow(r2)
    assert ("contexts", True, None, ((0, 2), (1, 2))) in p2
    assert kernel_at(r2, 3, p2)["contexts"] == [[16, 2], [21, 1]]
