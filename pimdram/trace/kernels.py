"""The kernel-trace format (JSON Lines, docs/kernel-trace-format.md): writer and validating reader."""
import hashlib
import io
import itertools
import json
from pathlib import Path

from .._atomic import atomic_output
from ..errors import FileFormatError, TraceError, VersionTooNewError, VersionTooOldError
from .source import trace_source
from .growth import kernel_at, parse_grow, record_growth  # noqa: F401 -- re-exported: the format's growth

FORMAT_NAME = "pimdram.kernel-trace"
FORMAT_VERSION = (1, 4)

OPS = ("embedding", "norm", "gemm", "gemv", "elementwise", "attention_score", "softmax", "attention_context",
       "communication")
PRODUCT_OPS = ("gemm", "gemv", "attention_score", "attention_context")
ROLES = ("weight", "activation", "kv_cache")
ACCESSES = ("read", "write")
PHASES = ("prefill", "decode")
DTYPES = ("fp32", "fp16", "bf16", "int8", "int4")
COLLECTIVES = ("all_reduce", "all_gather")
HEADER_KEYS = ("format", "version", "generated_by", "model", "workload", "system", "placement", "kernels")


class KernelTrace:
    """A header (plain dict) and kernels (plain dicts, one per trace line), in id order."""

    def __init__(self, header, kernels):
        self.header = header
        self.kernels = kernels
        self.sha256 = None          # of the file it was read from

    def __len__(self):
        return len(self.kernels)

    def __iter__(self):
        return iter(self.kernels)

    def __eq__(self, other):
        return isinstance(other, KernelTrace) and self.header == other.header and self.kernels == other.kernels

    def lines(self):
        """The file's lines (without newlines): deterministic for equal content."""
        yield _dump(self.header)
        for k in self.kernels:
            yield _dump(k)

    def write(self, path, overwrite=True, inputs=()):
        write_kernel_trace(path, self, overwrite=overwrite, inputs=inputs)

    def templates(self):
        """The step templates, in file order: (template, kernels, runs) where runs lists the
        (first_step, count) of the steps that use it. A trace without `steps` (before 1.3) is one
        template run once."""
        runs = self.header.get("steps") or [{"template": 0, "first_step": 0, "count": 1}]
        by_template = {}
        for k in self.kernels:
            by_template.setdefault(k.get("template", 0), []).append(k)
        out = []
        for t in sorted(by_template):
            out.append((t, by_template[t], [(r["first_step"], r["count"]) for r in runs if r["template"] == t]))
        return out

    def step_runs(self):
        """(template, first_step, count) of each run of steps, in step order."""
        runs = self.header.get("steps") or [{"template": 0, "first_step": 0, "count": 1}]
        return [(r["template"], r["first_step"], r["count"]) for r in runs]

    def totals_by_device(self):
        out = {}
        for k in self.kernels:
            t = out.setdefault(k["device"], {"kernels": 0, "flops": 0, "bytes_read": 0, "bytes_written": 0})
            t["kernels"] += 1
            t["flops"] += k["flops"]
            t["bytes_read"] += k["bytes_read"]
            t["bytes_written"] += k["bytes_written"]
        return out


def _dump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def write_kernel_trace(path, trace, overwrite=True, inputs=()):
    """Write a trace to `path` via a temporary name in the same directory, renamed when complete
    (`overwrite` and `inputs` as for pimdram._atomic.output_path)."""
    validate_kernel_trace(trace, source=str(path))
    with atomic_output(path, "w", overwrite=overwrite, inputs=inputs, encoding="utf-8", newline="\n") as f:
        for line in trace.lines():
            f.write(line)
            f.write("\n")


#: the longest line of a kernel trace (its header embeds the whole system: tens of kilobytes)
MAX_LINE_BYTES = 64 << 20


def read_kernel_trace(path):
    """Read and validate a kernel trace (a path, `-` for standard input, or a TraceSource); errors
    name the file and line of the first problem. The trace's `sha256` is that of its bytes."""
    source = trace_source(path)
    digest = hashlib.sha256()

    def lines():
        with io.BufferedReader(source.open()) as f:
            for lineno in itertools.count(1):
                raw = f.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                digest.update(raw)
                if len(raw) > MAX_LINE_BYTES:
                    raise TraceError(f"{source}:{lineno}: line longer than {MAX_LINE_BYTES} bytes, expected "
                                     "one JSON object per line")
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise TraceError(f"{source}:{lineno}: not UTF-8 text, expected one JSON object per "
                                     "line") from None

    numbered = lines()
    first = next(numbered, (1, ""))[1]
    try:
        header = json.loads(first) if first.strip() else None
    except (json.JSONDecodeError, RecursionError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{source}: not a pimdram kernel trace (the first line must be a JSON header with "
                              f"format \"{FORMAT_NAME}\")")
    check_version(header.get("version"), str(source))
    kernels = []
    for lineno, line in numbered:
        if not line.strip():
            raise TraceError(f"{source}:{lineno}: empty line")
        try:
            k = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{source}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:
            raise TraceError(f"{source}:{lineno}: invalid JSON: {exc}") from None
        kernels.append(k)
    trace = KernelTrace(header, kernels)
    validate_kernel_trace(trace, source=str(source))
    trace.sha256 = digest.hexdigest()
    return trace


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def check_version(version, source):
    if not (isinstance(version, list) and len(version) == 2 and all(_is_int(v) and v >= 0 for v in version)):
        raise FileFormatError(f"{source}: header version must be [major, minor], got {version!r}")
    if version[0] > FORMAT_VERSION[0]:
        raise VersionTooNewError(f"{source}: kernel-trace version {version[0]}.{version[1]} is newer than this "
                                 f"pimdram reads ({FORMAT_VERSION[0]}.x); upgrade pimdram")
    if version[0] < FORMAT_VERSION[0]:
        raise VersionTooOldError(f"{source}: kernel-trace version {version[0]}.{version[1]} is older than this "
                                 f"pimdram reads ({FORMAT_VERSION[0]}.x); regenerate it with pimdram gen")


def validate_kernel_trace(trace, source="kernel trace"):
    """Check a trace's header and every kernel; TraceError names `source` and the line (header = 1)."""
    h = trace.header
    if not isinstance(h, dict) or h.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{source}: header format must be \"{FORMAT_NAME}\"")
    check_version(h.get("version"), source)

    def herr(msg):
        return TraceError(f"{source}:1: {msg}")

    for key in HEADER_KEYS:
        if key not in h:
            raise herr(f"header lacks '{key}'")
    for key in ("model", "workload", "placement"):
        if not isinstance(h[key], dict):
            raise herr(f"header '{key}' must be a JSON object, got {h[key]!r}"[:200])
    for key in ("heads", "kv_heads", "layers"):
        if key in h["model"] and not (_is_int(h["model"][key]) and h["model"][key] >= 0):
            raise herr(f"header model.{key} must be a non-negative integer, got {h['model'][key]!r}")
    requests = h["workload"].get("requests")
    if requests is not None and not (isinstance(requests, list) and all(
            isinstance(r, dict) and _is_int(r.get("id")) and r["id"] >= 0 for r in requests)):
        raise herr("header workload.requests must be a list of requests with non-negative integer ids")
    request_ids = None if requests is None else {r["id"] for r in requests}
    if "warnings" in h and not (isinstance(h["warnings"], list) and all(isinstance(w, str) for w in h["warnings"])):
        raise herr("header 'warnings' must be a list of strings")
    system = h["system"]
    if not isinstance(system, dict) or not isinstance(system.get("devices"), dict) or \
            not isinstance(system.get("memories"), dict):
        raise herr("header system must have devices and memories")
    for name, mem in system["memories"].items():
        for key in ("standard", "pim"):
            if key not in mem or not (mem[key] is None or isinstance(mem[key], str)) or \
                    (key == "standard" and not isinstance(mem[key], str)):
                raise herr(f"memory {name}: '{key}' must be a name (string)")
    devices = set(system["devices"]) | set(system.get("links") or {})
    regions = (h["placement"] or {}).get("regions")
    if not isinstance(regions, dict):
        raise herr("header placement must have regions")
    for name, reg in regions.items():
        if not isinstance(reg, dict) or reg.get("memory") not in system["memories"]:
            raise herr(f"region {name}: memory must be one of the system's memories")
        for key in ("channels", "banks", "rows"):
            r = reg.get(key)
            if not (isinstance(r, list) and len(r) == 2 and all(_is_int(v) for v in r) and 0 <= r[0] <= r[1]):
                raise herr(f"region {name}: {key} must be [lo, hi]")
    if not _is_int(h["kernels"]) or h["kernels"] != len(trace.kernels):
        raise TraceError(f"{source}:{len(trace.kernels) + 2}: header announces {h['kernels']} kernels, "
                         f"found {len(trace.kernels)} (truncated file?)")

    template_of = []
    for i, k in enumerate(trace.kernels):
        _validate_kernel(k, i, devices, regions, f"{source}:{i + 2}", request_ids)
        t = k.get("template", 0)
        if not _is_int(t) or t < 0 or (template_of and t < template_of[-1]):
            raise TraceError(f"{source}:{i + 2}: 'template' must be a template number, the kernels of one "
                             f"template together and in order, got {t!r}")
        template_of.append(t)
        for d in k["deps"]:
            if template_of[d] != t:
                raise TraceError(f"{source}:{i + 2}: dependency {d} is a kernel of another template; a kernel "
                                 f"waits for kernels of the previous step with prev_deps")
    _validate_steps(trace, template_of, herr, source)


def _validate_steps(trace, template_of, herr, source):
    """The header's `steps` (since 1.3): runs of consecutive steps, each using one template; and
    the kernels' `prev_deps` (positions in the previous step's template) and `grow`."""
    h = trace.header
    sizes = {}
    for t in template_of:
        sizes[t] = sizes.get(t, 0) + 1
    runs = h.get("steps")
    if runs is None:
        if set(sizes) - {0}:
            raise herr("kernels name templates but the header has no 'steps'")
        runs = [{"template": 0, "first_step": 0, "count": 1}]
    if not isinstance(runs, list) or not runs:
        raise herr("'steps' must be a list of runs {template, first_step, count}")
    previous = {}          # template -> sizes of the templates of the steps before its instances
    counts = {}
    expect = None
    for j, r in enumerate(runs):
        if not (isinstance(r, dict) and all(_is_int(r.get(key)) for key in ("template", "first_step", "count"))
                and r["count"] >= 1 and r["template"] in sizes):
            raise herr(f"steps[{j}] must be {{template, first_step, count}} with count >= 1 and a template "
                       f"of the file's kernels, got {r!r}")
        if expect is not None and r["first_step"] != expect:
            raise herr(f"steps[{j}]: first_step {r['first_step']} does not follow the run before (step {expect})")
        expect = r["first_step"] + r["count"]
        t = r["template"]
        counts[t] = max(counts.get(t, 0), r["count"])
        if j > 0:
            previous.setdefault(t, []).append(sizes[runs[j - 1]["template"]])
        if r["count"] > 1:
            previous.setdefault(t, []).append(sizes[t])
    unused = set(sizes) - {r["template"] for r in runs}
    if unused:
        raise herr(f"template {min(unused)} is used by no run of steps")
    first_steps = {}
    for r in runs:
        first_steps.setdefault(r["template"], set()).add(r["first_step"])
    for i, k in enumerate(trace.kernels):
        where = f"{source}:{i + 2}"
        t = template_of[i]
        # a kernel's step places it in time and counts its tokens: one outside the steps was
        # replayed as a step of its own (a hand-edited step doubled tokens/s)
        if "steps" in h and k["step"] not in first_steps[t]:
            raise TraceError(f"{where}: 'step' {k['step']} is not the first step of a run of template {t} "
                             f"(header steps: {sorted(first_steps[t])})")
        prev = k.get("prev_deps", [])
        limit = min(previous.get(t, [0]))
        if not isinstance(prev, list) or not all(_is_int(p) and 0 <= p < limit for p in prev):
            raise TraceError(f"{where}: 'prev_deps' must be positions in the previous step's template "
                             f"(0..{limit - 1}), got {prev!r}")
        grow = k.get("grow")
        if grow is not None:
            _validate_grow(k, grow, counts[t], where)


def _grow_targets(k):
    """The numbers of a kernel that `grow` may name, by key."""
    out = {"flops": k["flops"]}
    out.update({f"shape.{n}": v for n, v in k["shape"].items()})
    if isinstance(k.get("tokens"), list) and len(k["tokens"]) == 2:
        out["tokens.hi"] = k["tokens"][1]
    for i, c in enumerate(k.get("contexts") or ()):
        out[f"contexts.{i}"] = c[0]
    for i, o in enumerate(k["operands"]):
        out[f"operands.{i}.bytes"] = o["bytes"]
        for j, v in enumerate(o.get("shape") or []):
            out[f"operands.{i}.shape.{j}"] = v
    return out


def _validate_grow(k, grow, count, where):
    targets = _grow_targets(k)
    if not isinstance(grow, dict):
        raise TraceError(f"{where}: 'grow' must be a mapping of a kernel number to its change per step")
    for key, v in grow.items():
        if key not in targets or not _is_int(v):
            raise TraceError(f"{where}: grow.{key}: expected an integer change of one of the kernel's numbers "
                             f"({', '.join(sorted(targets))})")
        if targets[key] + (count - 1) * v < 0:
            raise TraceError(f"{where}: grow.{key}: {targets[key]} + {count - 1} x {v} is negative at the "
                             f"template's last step")


#: the largest number a kernel may carry (shapes, FLOPs, bytes): far beyond any real kernel, and
#: small enough that sums and products of a few stay within 64-bit integers
MAX_NUMBER = 2**53


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_NUMBER <= v <= MAX_NUMBER


def _is_range(v):
    return isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v) and 0 <= v[0] <= v[1]


def _validate_kernel(k, index, devices, regions, where, request_ids=None):
    def err(msg):
        return TraceError(f"{where}: {msg}")

    if not isinstance(k, dict):
        raise err("expected a JSON object")
    for key, check, what in (
            ("id", _is_int, "an integer"), ("name", lambda v: isinstance(v, str) and v, "a name"),
            ("op", lambda v: v in OPS, f"one of {', '.join(OPS)}"),
            ("layer", lambda v: v is None or (_is_int(v) and v >= 0), "a layer number or null"),
            ("step", lambda v: _is_int(v) and v >= 0, "a step number"),
            ("phase", lambda v: v in PHASES, "prefill or decode"),
            ("device", lambda v: v in devices, f"a device or link of the header ({', '.join(sorted(devices))})"),
            ("shape", lambda v: isinstance(v, dict) and all(_is_int(x) and x >= 0 for x in v.values()),
             "a mapping of non-negative integers"),
            ("flops", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
            ("bytes_read", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
            ("bytes_written", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
            ("operands", lambda v: isinstance(v, list), "a list"),
            ("deps", lambda v: isinstance(v, list), "a list")):
        if key not in k:
            raise err(f"missing '{key}'")
        if not check(k[key]):
            raise err(f"'{key}' must be {what}, got {k[key]!r}")
    if k["id"] != index:
        raise err(f"kernel ids must count up from 0 in file order: expected {index}, got {k['id']}")
    if k["op"] in PRODUCT_OPS:
        for dim in ("M", "N", "K"):
            if not _is_int(k["shape"].get(dim)) or k["shape"][dim] <= 0:
                raise err(f"a {k['op']} kernel needs a positive shape.{dim}")
        if k.get("form") not in ("gemm", "gemv"):
            raise err(f"a {k['op']} kernel needs form gemm or gemv")
    if "split" in k:
        sp = k["split"]
        if not (isinstance(sp, list) and len(sp) == 2 and all(_is_int(v) for v in sp) and 0 <= sp[0] < sp[1]):
            raise err(f"'split' must be [part, parts] with 0 <= part < parts, got {sp!r}")
    if "collective" in k:
        if k["op"] != "communication" or k["collective"] not in COLLECTIVES:
            raise err(f"'collective' must be one of {', '.join(COLLECTIVES)} on a communication kernel, "
                      f"got {k['collective']!r}")
        if not _is_int(k["shape"].get("devices")) or k["shape"]["devices"] < 1 or "bytes" not in k["shape"]:
            raise err("a collective needs shape.bytes (the tensor) and shape.devices (at least 1)")
    for d in k["deps"]:
        if not _is_int(d) or not 0 <= d < index:
            raise err(f"dependency {d!r} must be the id of an earlier kernel")
    for key in ("kv_heads", "tokens"):
        if key in k and not _is_range(k[key]):
            raise err(f"'{key}' must be [lo, hi] with 0 <= lo <= hi, got {k[key]!r}")
    if "contexts" in k:
        c = k["contexts"]
        if not (k["op"] in ("attention_score", "softmax", "attention_context") and isinstance(c, list) and len(c) >= 2
                and all(isinstance(p, list) and len(p) == 2 and all(_is_int(x) and x > 0 for x in p) for p in c)
                and all(a[0] < b[0] for a, b in zip(c, c[1:]))):
            raise err(f"'contexts' must be [[tokens, requests], ...] (two or more, tokens ascending, all positive) "
                      f"on an attention kernel, got {c!r}"[:300])
        if sum(p[1] for p in c) != len(k.get("requests") or ()):
            raise err(f"'contexts' counts {sum(p[1] for p in c)} requests; the kernel serves "
                      f"{len(k.get('requests') or ())}")
        if "N" in k["shape"] and max(p[0] for p in c) != k["shape"]["N" if k["op"] == "attention_score" else "K"] \
                and k["op"] != "softmax":
            raise err("the longest of 'contexts' must be the kernel's shape "
                      + ("N" if k["op"] == "attention_score" else "K"))
    if "requests" in k:
        if not (isinstance(k["requests"], list) and all(_is_int(r) for r in k["requests"])):
            raise err(f"'requests' must be a list of request ids, got {k['requests']!r}"[:300])
        unknown = [r for r in k["requests"] if request_ids is not None and r not in request_ids]
        if unknown:
            raise err(f"request {unknown[0]} is not one of the header's workload.requests")
    read = written = 0
    for j, o in enumerate(k["operands"]):
        if not isinstance(o, dict):
            raise err(f"operand {j} must be an object")
        for key in ("name", "role", "access", "bytes"):
            if key not in o:
                raise err(f"operand {j} lacks '{key}'")
        if o["role"] not in ROLES:
            raise err(f"operand {o['name']}: role must be one of {', '.join(ROLES)}, got {o['role']!r}")
        if o["access"] not in ACCESSES:
            raise err(f"operand {o['name']}: access must be read or write, got {o['access']!r}")
        if not _is_int(o["bytes"]) or o["bytes"] < 0:
            raise err(f"operand {o['name']}: bytes must be a non-negative integer")
        if "dtype" in o and o["dtype"] not in DTYPES:
            raise err(f"operand {o['name']}: dtype must be one of {', '.join(DTYPES)}, got {o['dtype']!r}")
        if "shape" in o and not (isinstance(o["shape"], list) and all(_is_int(x) and x >= 0 for x in o["shape"])):
            raise err(f"operand {o['name']}: shape must be a list of non-negative integers, got {o['shape']!r}"[:300])
        if "region" in o and o["region"] not in regions:
            raise err(f"operand {o['name']}: region {o['region']!r} is not in the header's placement")
        if "on_chip" in o and (o["on_chip"] is not True or "region" in o):
            raise err(f"operand {o['name']}: on_chip must be true and the operand have no region")
        if o.get("on_chip"):
            continue
        if o["access"] == "read":
            read += o["bytes"]
        else:
            written += o["bytes"]
    if read != k["bytes_read"] or written != k["bytes_written"]:
        raise err(f"bytes_read/bytes_written ({k['bytes_read']}/{k['bytes_written']}) differ from the operands' "
                  f"sums ({read}/{written})")


def _si(value):
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return str(value)


def _shape_text(k):
    s = k["shape"]
    if "M" in s:
        text = f"{s['M']}x{s['N']}x{s['K']}"
        return text + (f" x{s['instances']}" if "instances" in s else "")
    if "elements" in s:
        return f"{s['elements']} el"
    if "bytes" in s:
        return f"{_si(s['bytes'])}B"
    return ""


def summary_table(trace):
    """The per-kernel table a user checks by eye, then totals per device (plain text)."""
    head = ("id", "step", "layer", "kernel", "device", "op", "shape MxNxK", "FLOPs", "read B", "written B",
            "FLOP/B")
    rows = []
    for k in trace.kernels:
        op = k["op"] if "form" not in k or k["op"] in ("gemm", "gemv") else f"{k['op']}/{k['form']}"
        name = k["name"] + (f".e{k['expert']}" if "expert" in k else "") + \
            (f".b{k['sub_batch']}" if "sub_batch" in k else "")
        rows.append((str(k["id"]), str(k["step"]), "-" if k["layer"] is None else str(k["layer"]), name,
                     k["device"], op, _shape_text(k), _si(k["flops"]), _si(k["bytes_read"]),
                     _si(k["bytes_written"]), f"{k.get('intensity', 0):.2f}"))
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))]
    right = {0, 1, 2, 7, 8, 9, 10}

    def fmt(r):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    lines = [fmt(head), fmt(tuple("-" * w for w in widths))]
    lines += [fmt(r) for r in rows]
    lines.append("")
    lines.append("totals by device:")
    for dev, t in sorted(trace.totals_by_device().items()):
        moved = t["bytes_read"] + t["bytes_written"]
        lines.append(f"  {dev}: {t['kernels']} kernels, {_si(t['flops'])}FLOP, {_si(t['bytes_read'])}B read, "
                     f"{_si(t['bytes_written'])}B written, {t['flops'] / moved if moved else 0:.2f} FLOP/B")
    return "\n".join(lines)
