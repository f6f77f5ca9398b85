"""A ragged attention kernel's `contexts` shared between the records of one step.

A decode step of a few hundred requests has one list of (tokens, requests) pairs, and every
ragged kernel of the step (score, softmax and context of each layer and head group, in the
one- and two-layer traces of the serving step timer) carries it. Converting, comparing, growing
and hashing that list once per kernel was a large part of a step's host time; these keep one
converted form per list by identity (the list or tuple kept alive with it, so an identity is never
reused), for code that never changes a record's contexts in place (none does: kernel_at grows a
copy). Each cache holds the most recent entries only.
"""

_LIMIT = 256
_LISTS = {}      # id(tuple) -> (tuple, [[tokens, requests], ...])
_TUPLES = {}     # id(list) -> (list, ((tokens, requests), ...))
_GROWN = {}      # (id(list), offset) -> (list, the list with every context `offset` tokens on)


def _put(cache, key, value):
    if len(cache) >= _LIMIT:
        cache.clear()
    cache[key] = value
    return value


def as_list(contexts):
    """A record's `contexts` (a list of [tokens, requests] lists) for a kernel's tuple of pairs:
    the same list object for the same tuple object."""
    hit = _LISTS.get(id(contexts))
    if hit is not None and hit[0] is contexts:
        return hit[1]
    return _put(_LISTS, id(contexts), (contexts, list(map(list, contexts))))[1]


def as_tuple(contexts):
    """A record's `contexts` as a tuple of pairs (hashable), once per list object."""
    hit = _TUPLES.get(id(contexts))
    if hit is not None and hit[0] is contexts:
        return hit[1]
    return _put(_TUPLES, id(contexts), (contexts, tuple(map(tuple, contexts))))[1]


def grown_by(contexts, offset):
    """`contexts` with every context `offset` tokens longer (a decode step's growth), once per
    list object and offset."""
    key = (id(contexts), offset)
    hit = _GROWN.get(key)
    if hit is not None and hit[0] is contexts:
        return hit[1]
    return _put(_GROWN, key, (contexts, [[t + offset, n] for t, n in contexts]))[1]
