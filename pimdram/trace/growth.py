"""How a kernel record grows from step to step: a template's `grow` (kernel-trace format 1.2:
the per-step change of each number) parsed, applied `offset` steps on (kernel_at), and derived
from two records one step apart (record_growth, the serving step timer's grown steps)."""
from .contexts import grown_by


def parse_grow(k):
    """A kernel's `grow` as (where, index, subindex, change) steps for kernel_at; the contexts'
    growth as one step ("contexts", dense, None, ((index, change), ...)): a ragged kernel has
    hundreds (dense: one for each of its contexts, in order; "unit": each of them 1)."""
    out = []
    contexts = []
    for key, v in (k.get("grow") or {}).items():
        if key.startswith("contexts."):
            contexts.append((int(key[9:]), v))
            continue
        parts = key.split(".")
        if parts[0] == "flops":
            out.append(("flops", None, None, v))
        elif parts[0] == "shape":
            out.append(("shape", parts[1], None, v))
        elif parts[0] == "tokens":
            out.append(("tokens", None, None, v))
        elif parts[2] == "bytes":
            out.append(("bytes", int(parts[1]), None, v))
        else:
            out.append(("oshape", int(parts[1]), int(parts[3]), v))
    if contexts:
        # dense: every context grows, in order (a decode step's ragged kernel): kernel_at zips
        dense = len(contexts) == len(k.get("contexts") or ()) and all(i == j for j, (i, _) in enumerate(contexts))
        if dense and all(change == 1 for _, change in contexts):
            dense = "unit"
        out.append(("contexts", dense, None, tuple(contexts)))
    return out


def kernel_at(k, offset, parsed=None):
    """Kernel record `k` of a template as it is `offset` steps after the template's first step
    (its numbers grown; bytes_read and bytes_written follow the operands). `parsed`: parse_grow(k),
    when the caller has it at hand."""
    if not offset or not k.get("grow"):
        return k
    out = dict(k)
    shape = ops = None
    read = written = 0
    for where, a, b, v in (parsed if parsed is not None else parse_grow(k)):
        if where == "contexts":
            if a == "unit":     # every context one token a step (a decode step's): shared
                out["contexts"] = grown_by(k["contexts"], offset)
            elif a:             # dense
                out["contexts"] = [[t + offset * change, n] for (t, n), (_, change) in zip(k["contexts"], v)]
            else:
                ctx = out["contexts"] = list(map(list, k["contexts"]))
                for i, change in v:
                    ctx[i][0] += offset * change
            continue
        d = offset * v
        if where == "flops":
            out["flops"] = k["flops"] + d
        elif where == "shape":
            if shape is None:
                shape = out["shape"] = dict(k["shape"])
            shape[a] += d
        elif where == "tokens":
            out["tokens"] = [k["tokens"][0], k["tokens"][1] + d]
        else:
            if ops is None:
                ops = out["operands"] = list(k["operands"])
            if ops[a] is k["operands"][a]:
                ops[a] = dict(ops[a])
            if where == "bytes":
                ops[a]["bytes"] += d
                if ops[a]["access"] == "read":
                    read += d
                else:
                    written += d
            else:
                ops[a]["shape"] = list(ops[a]["shape"])
                ops[a]["shape"][b] += d
    out["bytes_read"] = k["bytes_read"] + read
    out["bytes_written"] = k["bytes_written"] + written
    out["step"] = k["step"] + offset
    return out


def record_growth(earlier, later):
    """The `grow` that takes kernel record `earlier` to `later` one step on (kernel_at(earlier
    with it, 1) == later in every number), or None when the two differ in more than the numbers
    that grow: flops, shape, tokens' end, contexts' tokens, operands' bytes and shapes (the
    serving step timer's consecutive steps; `pimdram gen` derives its templates' growth from the
    kernels before they are records)."""
    if earlier.keys() != later.keys():
        return None
    grow = {}

    def differ(key, a, b):
        if a != b:
            grow[key] = b - a

    for key, a in earlier.items():
        b = later[key]
        if key in _DERIVED:
            continue
        if key == "flops":
            differ("flops", a, b)
        elif key == "shape":
            if a.keys() != b.keys():
                return None
            for name, v in a.items():
                differ(f"shape.{name}", v, b[name])
        elif key == "tokens":
            if a[0] != b[0]:
                return None
            differ("tokens.hi", a[1], b[1])
        elif key == "contexts":
            if len(a) != len(b) or any(x[1] != y[1] for x, y in zip(a, b)):
                return None
            for i, (x, y) in enumerate(zip(a, b)):
                differ(f"contexts.{i}", x[0], y[0])
        elif key == "operands":
            if len(a) != len(b):
                return None
            for i, (x, y) in enumerate(zip(a, b)):
                if x.keys() != y.keys() or len(x["shape"]) != len(y["shape"]) or any(
                        x[f] != y[f] for f in x if f not in ("bytes", "shape")):
                    return None
                differ(f"operands.{i}.bytes", x["bytes"], y["bytes"])
                for j, (u, v) in enumerate(zip(x["shape"], y["shape"])):
                    differ(f"operands.{i}.shape.{j}", u, v)
        elif a != b:
            return None
    return grow


#: record fields that follow from others (kernel_at recomputes the bytes; the step is the offset)
_DERIVED = ("bytes_read", "bytes_written", "intensity", "step", "grow")
