"""From model, workload and system to a kernel trace: build each step's kernels, map them to
devices, link them (dependencies, transfers, all-reduces; link.py), place the tensors (place.py),
select (select.py), and share one template among the steps that differ only in context length.

Step templates. A generation's decode steps differ mostly in how many tokens each request has
cached: the kernels, their devices and dependencies stay the same while attention's shapes,
FLOPs and bytes grow by the same amount every step. Consecutive steps whose live requests, new
tokens and KV-cache parts are the same form a run; the run's steps are linked one by one until
two consecutive ones have the same structure, and from there on one template stands for all of
them with `grow`, the per-step change of every number (checked exact at the run's last step).
A trace's size and the time to write it grow with the number of runs, not of steps.
"""
import copy

from .. import __version__
from ..errors import PimdramError, WorkloadError
from ..llm.kernels import AttentionPart, StepBuilder
from ..llm.models import load_model
from ..llm.workload import Workload
from ..trace.kernels import FORMAT_NAME, FORMAT_VERSION, KernelTrace
from ..config.system import load_system
from .link import Linker
from .place import place
from .policies import attacc_head_groups, device_for, ffn_pim_columns
from .select import Selection, check_only

ALL_TOKENS = (0, 1 << 62)


def generate_kernel_trace(model, system, workload, layers=None, only=None, allow_overcommit=False,
                          warn=None, progress=None, place_selected=False):
    """The kernel trace of `workload` on `system` (names, paths or specs) as a KernelTrace.

    `layers` keeps the kernels of the first N decoder layers (plus embedding and LM head);
    `only` keeps the kernels of the given kinds (attention, fc, ffn, norm, communication), ops or
    names. Placement and the memory-capacity check always cover the whole model. A workload that
    does not fit is an error, or with `allow_overcommit` a warning (recorded in the header's
    `warnings` and passed to `warn`, a callable taking the text). `progress(done, total)` is
    called as the work advances: one unit per run of steps that share their kernels (a prefill,
    a run of decode steps whose context grows), one for placement and one for the records.

    `place_selected`: build and place only the first `layers` layers (with `allow_overcommit`;
    the serving step timer's path): the regions keep the channels the whole model's placement
    gives them (a KV cache's channels come from its KV heads, weights spread over every channel),
    only their rows differ, and rows do not enter a kernel's timing; the capacity check is the
    caller's.
    """
    model = load_model(model)
    system = load_system(system)
    if not isinstance(workload, Workload):
        raise TypeError("workload must be a pimdram.llm.Workload")
    if layers is not None and (isinstance(layers, bool) or not isinstance(layers, int) or layers <= 0):
        raise WorkloadError(f"layers must be a positive integer, got {layers!r}")
    if layers is not None and layers > model.layers:
        raise WorkloadError(f"--layers {layers} exceeds the {model.layers} layers of {model.name}")
    only = check_only(only)
    if place_selected and not allow_overcommit:
        raise WorkloadError("placing only the selected layers skips the capacity check: pass allow_overcommit")
    _fits_at_all(model, system, workload, allow_overcommit)

    runs = list(_runs(workload.steps(), _token_bounds(system)))
    total = len(runs) + 2
    report = progress if progress is not None else (lambda done, total: None)
    parts = _attention_parts(model, system)
    steps = _StepKernels(model, system, workload, parts, layers if place_selected else None)
    linker, selection = Linker(system), Selection(layers, only)
    templates, placed = [], []
    for i, run in enumerate(runs):
        for t in _run_templates(run, steps, linker, selection, placed):
            t.index = len(templates)
            # tokens each step of the run yields: one per request from a prefill, the new ones from a decode
            s = run[0]
            t.tokens = len(s.requests) if s.phase == "prefill" else sum(len(g.requests) * g.new_tokens
                                                                         for g in s.groups)
            t.phase = s.phase
            templates.append(t)
        report(i + 1, total)
    regions, overflows = place(model, system, workload, placed, parts)
    report(len(runs) + 1, total)
    if overflows and not allow_overcommit:
        raise WorkloadError(overflows[0] + "; reduce batch, prompt or output, use a larger system, or pass "
                                           "--allow-overcommit to study it anyway")
    for text in overflows:
        if warn is not None:
            warn(text)

    records, step_runs, first_id = [], [], 0
    for t in templates:
        for k, grow in zip(t.kernels, t.grow):
            k.id += first_id
            k.deps = [d + first_id for d in k.deps]
            r = k.record()
            if len(templates) > 1:
                r["template"] = t.index
            if grow:
                r["grow"] = grow
            records.append(r)
        step_runs.append({"template": t.index, "first_step": t.first_step, "count": t.count, "phase": t.phase,
                          "tokens": t.tokens})
        first_id += len(t.kernels)
    report(total, total)
    return KernelTrace(_header(model, system.to_dict(), workload, regions, records, layers, only, step_runs,
                               overflows), records)


def step_traces(model, system, workload, layer_counts, system_record=None):
    """KernelTraces of a workload of one step, one for each n of `layer_counts`: the step with
    its first n decoder layers (the serving step timer's path). The step is built, linked and
    placed once, with the most layers asked for (placement of the built layers only, as
    generate_kernel_trace's `place_selected`; no capacity check), and each trace selects its
    layers from it as `--layers` selects. `system_record`: system.to_dict() when the caller
    has it (the header's copy)."""
    model = load_model(model)
    system = load_system(system)
    steps = workload.steps()
    if len(steps) != 1:
        raise WorkloadError(f"step_traces takes a workload of one step, got {len(steps)}")
    step = steps[0]
    counts = [min(int(n), model.layers) for n in layer_counts]
    parts = _attention_parts(model, system)
    linked = Linker(system).link(_StepKernels(model, system, workload, parts, max(counts))(step))
    regions, _ = place(model, system, workload, linked, parts)
    record = system_record if system_record is not None else system.to_dict()
    tokens = len(step.requests) if step.phase == "prefill" else step.tokens
    runs = [{"template": 0, "first_step": step.index, "count": 1, "phase": step.phase, "tokens": tokens}]
    # the records of every kernel built; a count's kept kernels take theirs with the positions
    # selection gives them (selection renumbers what it keeps: it works on copies)
    full = [k.record() for k in linked]
    position = {id(k): i for i, k in enumerate(linked)}
    out = []
    for j, n in enumerate(counts):
        selection = Selection(n, None)
        if j == len(counts) - 1:
            kernels, index = linked, position
        else:   # selection changes only what it keeps (and reads the others): those are copied
            kernels = [_copy_kernel(k) if selection.keep(k) else k for k in linked]
            index = {id(c): i for i, c in enumerate(kernels)}
        kept = selection.select(kernels)
        records = [_renumbered(full[index[id(k)]], k) for k in kept]
        out.append(KernelTrace(_header(model, record, workload, regions, records, n, None, runs, [],
                                       out[0].header if out else None), records))
    return out


def _renumbered(record, k):
    """Kernel `record` with the position and dependencies kernel `k` (its copy, selected) has."""
    out = dict(record, id=k.id, deps=list(k.deps))
    out.pop("prev_deps", None)
    if k.prev_deps:
        out["prev_deps"] = list(k.prev_deps)
    return out


def _copy_kernel(k):
    c = object.__new__(type(k))          # copy.copy's result, without its generic protocol
    c.__dict__.update(k.__dict__)
    c.deps, c.prev_deps = list(k.deps), list(k.prev_deps)
    return c


def _header(model, system_record, workload, regions, records, layers, only, step_runs, overflows, like=None):
    """A kernel trace's header; `like`: a header of the same model and workload whose model and
    workload entries it shares (the traces of one step)."""
    used = sorted({o["region"] for r in records for o in r["operands"] if "region" in o})
    header = {
        "format": FORMAT_NAME,
        "version": list(FORMAT_VERSION),
        "generated_by": f"pimdram {__version__}",
        "model": like["model"] if like else model.summary(kv_bytes=workload.bytes("kv_cache", 1)),
        "workload": like["workload"] if like else workload.describe(),
        "system": system_record,
        "placement": {"regions": {name: regions[name] for name in used}},
        "selection": {"layers": layers, "only": list(only) if only else None},
        "steps": step_runs,
        "kernels": len(records),
    }
    if overflows:
        header["warnings"] = list(overflows)
    return header


def _fits_at_all(model, system, workload, allow_overcommit):
    """Before any kernel is built: the least the workload needs (the weights once, every request's
    KV cache at its largest) against all of the system's memories together. A workload that
    cannot fit is an error here, before building it could run the host out of memory; the exact
    per-memory check comes with the placement."""
    if allow_overcommit:
        return
    per_token = 2 * model.kv_heads * model.head_dim * model.layers
    tokens = {}
    for r in workload.requests:
        n = workload.max_cached_tokens(r)
        tokens[n] = tokens.get(n, 0) + 1
    kv = sum(count * workload.bytes("kv_cache", n * per_token) for n, count in tokens.items())
    weights = workload.bytes("weight", model.param_count())
    capacity = sum(m.capacity for m in system.memories.values())
    if weights + kv > capacity:
        gb = 1e9
        names = list(system.memories)
        where = (f"memory {names[0]!r} of system {system.name}: capacity {capacity / gb:.1f} GB "
                 f"({system.memories[names[0]].stacks} stacks)" if len(names) == 1 else
                 f"the memories {', '.join(map(repr, names))} of system {system.name} together: capacity "
                 f"{capacity / gb:.1f} GB")
        raise WorkloadError(
            f"the workload does not fit {where}, needed weights {weights / gb:.1f} GB + KV cache {kv / gb:.1f} GB "
            f"= {(weights + kv) / gb:.1f} GB before activations ({workload.batch} requests); reduce batch, prompt "
            "or output, use a larger system, or pass --allow-overcommit to study it anyway")


# --- attention split by KV-cache placement rules -----------------------------------------------

def _attention_parts(model, system):
    """Per layer, the (KV-head range, token range, memory) cells the placement rules carve out."""
    rules = system.placement.kv_split
    default = system.placement.kv_cache
    cache = {}

    def parts(layer):
        active = [r for r in rules if r.covers_layer(layer)]
        key = tuple(active)
        if key in cache:
            return cache[key]
        heads = sorted({0, model.kv_heads} | {min(b, model.kv_heads) for r in active if r.kv_heads for b in r.kv_heads})
        toks = sorted({ALL_TOKENS[0], ALL_TOKENS[1]} | {b for r in active if r.tokens for b in r.tokens})
        cells = []
        for hlo, hhi in zip(heads, heads[1:]):
            for tlo, thi in zip(toks, toks[1:]):
                memory = default
                for r in active:
                    if (r.kv_heads is None or (r.kv_heads[0] <= hlo and hhi <= r.kv_heads[1])) and \
                            (r.tokens is None or (r.tokens[0] <= tlo and thi <= r.tokens[1])):
                        memory = r.memory
                        break
                if hhi > hlo:
                    cells.append(AttentionPart((hlo, hhi), (tlo, thi), memory))
        if len({c.tag for c in cells}) == 1:
            cells = [AttentionPart((0, model.kv_heads), ALL_TOKENS, cells[0].tag)]
        cache[key] = cells
        return cells

    return parts


def _sub_batches(system, workload):
    """NeuPIMs: requests in sub-batches by greedy least-loaded packing, longest first."""
    n = system.options.get("sub_batches", 1) if system.policy == "neupims" else 1
    n = min(n, workload.batch)
    if n <= 1:
        return [None], {r.id: None for r in workload.requests}
    loads = [0] * n
    owner = {}
    for r in sorted(workload.requests, key=lambda r: (-(r.prompt + r.output), r.id)):
        b = min(range(n), key=lambda i: (loads[i], i))
        loads[b] += r.prompt + r.output
        owner[r.id] = b
    return list(range(n)), owner


def _device_on_memory(system, kernel, parts):
    """Move an attention part to a device local to the memory its KV cache is placed in."""
    tag = next((p.tag for p in parts if p.kv_heads[0] <= kernel.kv_heads[0] < p.kv_heads[1]
                and p.tokens[0] <= kernel.tokens[0] < p.tokens[1]), "follow")
    if tag == "follow" or system.devices[kernel.device].memory == tag:
        return kernel.device
    local = [d for d in system.devices.values() if d.memory == tag]
    local.sort(key=lambda d: (d.kind != "pim", list(system.devices).index(d.name)))
    if not local:
        raise WorkloadError(f"system {system.name}: KV cache placed in memory {tag!r}, but no device computes there")
    return local[0].name



# --- steps, runs and templates ---------------------------------------------------------------------

class _StepKernels:
    """The kernels of one step, mapped to devices (before linking)."""

    def __init__(self, model, system, workload, parts, layers=None):
        self.system, self.workload, self.parts = system, workload, parts
        opts = system.options
        groups = attacc_head_groups(system, model, workload.batch, opts.get("head_groups", 1)) \
            if system.policy == "attacc" else 1
        split = None
        if opts.get("ffn_coprocessing"):
            wbytes = workload.bytes("weight", 1)
            split = lambda M, K, N: ffn_pim_columns(system, M, K, N, wbytes)      # noqa: E731
        self.builder = StepBuilder(model, workload, attention_parts=parts, layers=layers, head_groups=groups,
                                   ffn_split=split)
        self.batches, self.owner = _sub_batches(system, workload)

    def __call__(self, step):
        system = self.system
        per_batch = []
        for b in self.batches:
            groups = [g.__class__(tuple(r for r in g.requests if self.owner[r] == b), g.new_tokens, g.context)
                      for g in step.groups]
            groups = [g for g in groups if g.requests]
            if groups:
                per_batch.append(self.builder.build(step, groups, sub_batch=b))
        # interleave sub-batches layer by layer so that the file reads in execution order
        order = []
        for ks in per_batch:
            for k in ks:
                order.append(((-1 if k.name == "embedding" else (1 << 30) if k.layer is None else k.layer),
                              len(order), k))
        kernels = [k for _, _, k in sorted(order, key=lambda t: (t[0], t[2].sub_batch or 0, t[1]))]
        live = step.live_batch
        for k in kernels:
            k.device = device_for(system, k, live, self.workload.speculation)
            if k.kv_heads is not None:
                k.device = _device_on_memory(system, k, self.parts(k.layer))
            if k.split is not None and k.split[0] == 1:       # FF co-processing: the PIM's columns
                k.device = system.roles["pim"]
        return kernels


def _token_bounds(system):
    """Token positions where a KV-cache placement rule starts or ends a part."""
    return sorted({b for r in system.placement.kv_split if r.tokens for b in r.tokens})


def _runs(steps, bounds):
    """Consecutive steps whose kernels can share a template: the same phase, live requests and
    new tokens per group, each group's context grown by its new tokens, and no group's cached or
    new tokens reaching or crossing a KV-cache part's boundary (a group that fills a part stops
    growing there, and may then share the part's context with another group)."""
    def shape(step):
        return (step.phase, tuple((g.requests, g.new_tokens,
                                   tuple((g.context >= b, g.context + g.new_tokens >= b, g.context + g.new_tokens > b)
                                         for b in bounds))
                                  for g in step.groups))

    runs = []
    for step in steps:
        if runs:
            last = runs[-1][-1]
            if shape(step) == shape(last) and all(g.context == p.context + p.new_tokens
                                                   for g, p in zip(step.groups, last.groups)):
                runs[-1].append(step)
                continue
        runs.append([step])
    return runs


class _Template:
    def __init__(self, kernels, first_step):
        self.kernels = kernels
        self.first_step = first_step
        self.count = 1
        self.grow = [{} for _ in kernels]
        self.key = _structure(kernels)
        self.index = None


def _run_templates(run, steps, linker, selection, placed):
    """The templates of one run of steps: its first steps one by one until two consecutive ones
    are alike, then one template for the rest with the per-step growth of every number."""
    out = []
    for j, step in enumerate(run):
        linked = linker.link(steps(step))
        kernels = selection.select(linked)
        if out and j >= 1 and _structure(kernels) == out[-1].key:
            t = out[-1]
            t.grow = [_difference(_numbers(a), _numbers(b)) for a, b in zip(kernels, t.kernels)]
            t.count = len(run) - (j - 1)
            if t.count > 2:
                _check_growth(t, run[-1], steps, linker, selection, placed)
            else:
                placed.extend(linked)
            break
        placed.extend(linked)
        out.append(_Template(kernels, step.index))
    return out


def _check_growth(t, last, steps, linker, selection, placed):
    """The run's last step, linked ahead on a copy of the state, must equal the template plus
    (count - 1) times its growth: the growth is exact, not an estimate."""
    ahead = linker.copy()
    sel = copy.copy(selection)
    linked = ahead.link(steps(last))
    placed.extend(linked)
    kernels = sel.select(linked)
    n = t.count - 1
    for k, first, grow in zip(kernels, t.kernels, t.grow):
        expect = {key: v + n * grow.get(key, 0) for key, v in _numbers(first).items()}
        if _numbers(k) != expect:
            raise PimdramError(f"internal error: kernel {first.name} (layer {first.layer}) of steps {t.first_step}.."
                               f"{last.index} does not grow linearly with the context; please report this")


def _structure(kernels):
    """What makes two steps' kernels the same up to their numbers."""
    return tuple((k.name, k.op, k.layer, k.phase, k.device, k.link, k.form, k.sub_batch, k.expert, k.kv_heads,
                  k.requests, k.reuse, k.collective, tuple(k.deps), tuple(k.prev_deps),
                  None if k.contexts is None else tuple(n for _, n in k.contexts),
                  tuple((o.name, o.role, o.access, o.dtype, o.region, len(o.shape)) for o in k.operands))
                 for k in kernels)


def _numbers(k):
    """Every number of a kernel that may change from step to step, by a flat key."""
    out = {"flops": k.flops}
    for name, v in k.shape.items():
        out[f"shape.{name}"] = v
    if k.tokens is not None:
        out["tokens.hi"] = k.tokens[1]
    for i, (tokens, _) in enumerate(k.contexts or ()):
        out[f"contexts.{i}"] = tokens
    for i, o in enumerate(k.operands):
        out[f"operands.{i}.bytes"] = o.bytes
        for j, v in enumerate(o.shape):
            out[f"operands.{i}.shape.{j}"] = v
    return out


def _difference(later, earlier):
    return {key: later[key] - earlier[key] for key in later if later[key] != earlier[key]}
