"""Selection (`pimdram gen --layers N --only KIND`): keep some kernels of each step, and let the
kept ones depend on the kept kernels that the dropped ones led to."""
from ..errors import WorkloadError
from ..llm.kernels import KINDS, OPS

#: kernel names `--only` accepts besides the kinds and ops
EXTRA_NAMES = {"embedding", "rotary_embedding", "activation", "attention_residual", "ffn_residual",
               "moe_combine", "final_norm", "lm_head"}


def check_only(only):
    """`only` as a tuple of kinds, ops or kernel names (None: keep everything)."""
    if only is None:
        return None
    if isinstance(only, str):
        only = [s.strip() for s in only.split(",") if s.strip()]
    if not only:
        # keeping nothing is no selection a user means, and keeping everything is not what was asked
        raise WorkloadError("--only names no kernel kind; give kinds, ops or kernel names, comma-separated")
    names = {n for group in KINDS.values() for n in group}
    known = set(KINDS) | set(OPS) | names | EXTRA_NAMES
    bad = [o for o in only if o not in known]
    if bad:
        raise WorkloadError(f"unknown kernel kind {bad[0]!r}; use one of {', '.join(sorted(KINDS))}, an op "
                            f"({', '.join(OPS)}) or a kernel name")
    return tuple(only)


class Selection:
    """Applies `--layers` and `--only` to the steps of a workload, one step after the other."""

    def __init__(self, layers, only):
        self.layers = layers
        self.only = only
        self.names_of_kind = set()
        for o in only or ():
            self.names_of_kind.update(KINDS.get(o, ()))
        self.previous = None          # position in the previous step -> kept positions it stands for

    def keep(self, k):
        if self.layers is not None and k.layer is not None and k.layer >= self.layers:
            return False
        if self.only:
            return k.name in self.names_of_kind or k.op in self.only or k.name in self.only
        return True

    def select(self, kernels):
        """The kept kernels of one linked step (positions renumbered from 0), with their `deps`
        and `prev_deps` pointing at kept kernels."""
        previous = self.previous or {}
        resolved, prev_resolved = {}, {}       # dropped old position -> kept old positions / previous step's
        new_pos = {}                           # kept old position -> new position
        out = []
        for k in kernels:
            deps, prev = set(), set()
            for d in k.deps:
                if d in new_pos:
                    deps.add(d)
                else:
                    deps.update(resolved.get(d, ()))
                    prev.update(prev_resolved.get(d, ()))
            for d in k.prev_deps:
                prev.update(previous.get(d, ()))
            if self.keep(k):
                new_pos[k.id] = len(out)
                k.deps = sorted(new_pos[d] for d in deps)
                k.prev_deps = sorted(prev)
                k.id = len(out)
                out.append(k)
            else:
                resolved[k.id] = deps
                prev_resolved[k.id] = prev
        # what a later step's reference to each old position of this step means, in new positions
        mapping = {old: {new} for old, new in new_pos.items()}
        for old, kept in resolved.items():
            mapping[old] = {new_pos[d] for d in kept}
        self.previous = mapping
        return out
