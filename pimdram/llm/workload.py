"""Inference workloads: requests, phase, speculation length, data types, and the steps they run as."""
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import WorkloadError

# bits per element; int4 packs two elements per byte
DTYPE_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "int4": 4}
PHASES = ("prefill", "decode", "generate")
#: sanity limits: a workload beyond them is a typo (`--batch 1e9`), and building its kernels would
#: exhaust the host's memory before any capacity check could run
MAX_REQUESTS = 1 << 16
MAX_OUTPUT = 1 << 24          # output tokens of one request (a generation's steps)
MAX_CONTEXT = 1 << 40         # prompt or context tokens of one request (numbers only: capacity studies)


def dtype_bytes(dtype, elements):
    """Bytes of `elements` values of `dtype` (whole bytes, rounded up for int4)."""
    return -(-elements * DTYPE_BITS[dtype] // 8)


@dataclass(frozen=True)
class Request:
    id: int
    prompt: int       # prompt tokens
    output: int       # tokens to generate
    arrival: float = 0.0   # seconds; carried into the trace for the replay to honour
    cached: int = 0        # prompt tokens already in the KV cache when the prefill runs (a chunked
                           # prefill's later chunk: it processes prompt - cached tokens against them)


@dataclass(frozen=True)
class StepGroup:
    """Requests of one step that process the same number of new tokens against the same context."""
    requests: tuple   # request ids
    new_tokens: int   # tokens each request processes in this step
    context: int      # tokens already in each request's KV cache before this step


@dataclass(frozen=True)
class Step:
    """One forward pass over the live batch: a prefill, or one decode step."""
    index: int
    phase: str        # "prefill" or "decode"
    groups: tuple     # StepGroup, sorted

    @property
    def requests(self):
        return tuple(sorted(r for g in self.groups for r in g.requests))

    @property
    def live_batch(self):
        return sum(len(g.requests) for g in self.groups)

    @property
    def tokens(self):
        return sum(len(g.requests) * g.new_tokens for g in self.groups)


@dataclass(frozen=True)
class Workload:
    """What to run: requests (uniform or from a request file), the phase, speculation length and dtypes.

    phase "prefill" runs the prompts; "decode" runs one decode step with `context` tokens already
    cached per request (default: the prompt length, i.e. the first decode step); "generate" runs
    the prefill and then decode steps until every request has its output tokens. The prefill
    yields each request's first output token; a decode step yields `speculation` tokens per request
    (every drafted token accepted; the draft model's own kernels are not included).
    """

    requests: tuple
    phase: str = "decode"
    context: int = None
    speculation: int = 1
    weight_dtype: str = "fp16"
    activation_dtype: str = "fp16"
    kv_cache_dtype: str = "fp16"
    source: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.requests:
            raise WorkloadError("the workload has no requests")
        if len(self.requests) > MAX_REQUESTS:
            raise WorkloadError(f"{len(self.requests)} requests; at most {MAX_REQUESTS} are supported")
        for r in self.requests:
            if r.prompt <= 0 or r.output <= 0:
                raise WorkloadError(f"request {r.id}: prompt and output tokens must be positive, "
                                    f"got prompt={r.prompt}, output={r.output}")
            if not 0 <= r.cached < r.prompt:
                raise WorkloadError(f"request {r.id}: cached prompt tokens must be at least 0 and fewer than the "
                                    f"prompt's {r.prompt}, got {r.cached}")
            if r.prompt > MAX_CONTEXT or r.output > MAX_OUTPUT:
                raise WorkloadError(f"request {r.id}: at most {MAX_CONTEXT} prompt and {MAX_OUTPUT} output tokens "
                                    f"are supported, got prompt={r.prompt}, output={r.output}")
        if self.phase not in PHASES:
            raise WorkloadError(f"phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        if self.speculation <= 0:
            raise WorkloadError(f"speculation length must be positive, got {self.speculation}")
        if self.context is not None:
            if self.phase != "decode":
                raise WorkloadError("a context length is only meaningful for --phase decode")
            if self.context <= 0:
                raise WorkloadError(f"context length must be positive, got {self.context}")
            if self.context > MAX_CONTEXT:
                raise WorkloadError(f"context length must be at most {MAX_CONTEXT}, got {self.context}")
        if self.speculation > MAX_OUTPUT:
            raise WorkloadError(f"speculation length must be at most {MAX_OUTPUT}, got {self.speculation}")
        for key in ("weight_dtype", "activation_dtype", "kv_cache_dtype"):
            if getattr(self, key) not in DTYPE_BITS:
                raise WorkloadError(f"{key} must be one of {', '.join(DTYPE_BITS)}, got {getattr(self, key)!r}")

    @classmethod
    def uniform(cls, batch, prompt, output, **kwargs):
        """`batch` identical requests of `prompt` prompt tokens and `output` output tokens."""
        for name, v in (("batch", batch), ("prompt", prompt), ("output", output)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise WorkloadError(f"{name} must be a positive integer, got {v!r}")
        if batch > MAX_REQUESTS:          # before building a tuple of them
            raise WorkloadError(f"batch {batch}: at most {MAX_REQUESTS} requests are supported")
        return cls(tuple(Request(i, prompt, output) for i in range(batch)), **kwargs)

    @classmethod
    def from_csv(cls, path, **kwargs):
        return cls(load_requests_csv(path), source=str(path), **kwargs)

    @classmethod
    def from_options(cls, batch=None, prompt_tokens=None, output_tokens=None, requests=None, phase="decode",
                     context=None, speculation=1, dtype="fp16", weight_dtype=None, activation_dtype=None,
                     kv_dtype=None):
        """The workload of `pimdram gen`'s options (also a sweep point's): `batch` uniform requests of
        `prompt_tokens` and `output_tokens`, or the requests of CSV file `requests`; `dtype` for
        every tensor unless one is given on its own."""
        common = dict(phase=phase, context=context, speculation=speculation,
                      weight_dtype=weight_dtype or dtype, activation_dtype=activation_dtype or dtype,
                      kv_cache_dtype=kv_dtype or dtype)
        if requests is not None:
            if any(v is not None for v in (batch, prompt_tokens, output_tokens)):
                raise WorkloadError("a requests file replaces batch, prompt tokens and output tokens; "
                                    "give one or the other")
            return cls.from_csv(requests, **common)
        missing = [n for n, v in (("batch", batch), ("prompt tokens", prompt_tokens),
                                  ("output tokens", output_tokens)) if v is None]
        if missing:
            raise WorkloadError(f"give {', '.join(missing)} (or a requests file)")
        return cls.uniform(batch, prompt_tokens, output_tokens, **common)

    @property
    def batch(self):
        return len(self.requests)

    @property
    def uniform_shape(self):
        """(prompt, output) when every request has the same lengths, else None."""
        shapes = {(r.prompt, r.output) for r in self.requests}
        return next(iter(shapes)) if len(shapes) == 1 else None

    def bytes(self, what, elements):
        dtype = {"weight": self.weight_dtype, "activation": self.activation_dtype, "kv_cache": self.kv_cache_dtype}[what]
        return dtype_bytes(dtype, elements)

    def decode_context(self, request):
        return self.context if self.context is not None else request.prompt

    def max_cached_tokens(self, request):
        """KV-cache tokens a request holds at its largest during this workload."""
        if self.phase == "prefill":
            return request.prompt
        if self.phase == "decode":
            return self.decode_context(request) + self.speculation
        return request.prompt + request.output

    def steps(self):
        """The forward passes of the workload, in order."""
        out = []
        if self.phase in ("prefill", "generate"):
            out.append(Step(0, "prefill", _group([(r.id, r.prompt - r.cached, r.cached) for r in self.requests])))
        if self.phase == "decode":
            out.append(Step(0, "decode", _group([(r.id, self.speculation, self.decode_context(r))
                                                 for r in self.requests])))
        elif self.phase == "generate":
            # after the prefill each request holds prompt tokens and has produced one output token
            produced = {r.id: 1 for r in self.requests}
            while True:
                live = [r for r in self.requests if produced[r.id] < r.output]
                if not live:
                    break
                entries = []
                for r in live:
                    k = min(self.speculation, r.output - produced[r.id])
                    entries.append((r.id, k, r.prompt + produced[r.id] - 1))
                    produced[r.id] += k
                out.append(Step(len(out), "decode", _group(entries)))
        return out

    def describe(self):
        d = {
            "phase": self.phase,
            "batch": self.batch,
            "speculation": self.speculation,
            "dtypes": {"weights": self.weight_dtype, "activations": self.activation_dtype,
                       "kv_cache": self.kv_cache_dtype},
        }
        shape = self.uniform_shape
        if shape is not None:
            d["prompt"], d["output"] = shape
        if self.phase == "decode":
            d["context"] = self.context if self.context is not None else (shape[0] if shape else None)
        if self.source:
            d["requests_file"] = Path(self.source).name
        d["requests"] = [{"id": r.id, "arrival": r.arrival, "prompt": r.prompt, "output": r.output}
                         for r in self.requests]
        return d


def _group(entries):
    """Group (request, new_tokens, context) triples with equal shape, in a stable order."""
    groups = {}
    for rid, n, c in entries:
        groups.setdefault((n, c), []).append(rid)
    return tuple(StepGroup(tuple(sorted(ids)), n, c) for (n, c), ids in sorted(groups.items()))


def load_requests_csv(path):
    """Requests of a request file (docs/request-file-format.md: CSV or JSON Lines with `id`,
    `arrival_s` (or `arrival`), `prompt_tokens`, `output_tokens`). Errors name the file and line."""
    from ..serve.requests import read_requests

    served = read_requests(path)
    if len(served) > MAX_REQUESTS:
        raise WorkloadError(f"{path}: {len(served)} requests; at most {MAX_REQUESTS} are supported in one workload")
    return tuple(Request(r.id, r.prompt_tokens, r.output_tokens, r.arrival_s) for r in served)
