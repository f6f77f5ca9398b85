"""Iteration-level scheduling of a request stream (as Orca and vLLM do it), with a paged KV cache.

Each iteration is one forward pass, a prefill or a decode step (a step never mixes the two: a step
time is one phase's replay). The rules, which tests/test_serve_scheduler.py works by hand:

- Requests join the waiting queue at their arrival (ties by position) and are admitted first come,
  first served. When nothing runs and nothing waits, time jumps to the next arrival.
- Whole prefill (`prefill="whole"`, vLLM's default): a prefill step admits waiting requests in
  order while the step stays within `max_batch` requests in the system's batch (running,
  decoding or prefilling) and `max_tokens` prompt tokens, and the KV cache has free blocks for
  each admitted prompt plus its first output token (blocks of `block_size` tokens). A prompt
  longer than `max_tokens` is admitted alone. Prefill comes first: a decode step runs only when
  no waiting request can be admitted. The prefill yields each request's first token (TTFT ends at
  the step's end).
- Chunked prefill (`prefill="chunked"`, as Sarathi-Serve cuts prompts): a prefill step processes
  at most `max_tokens` prompt tokens in all. It first continues the requests whose earlier chunks
  are done (in admission order), then admits waiting requests into the tokens left; the last one
  may get only part of its prompt. A chunk of n tokens of a request with c tokens already
  prefilled is the group (n, c, 1). A request's first token comes with its last chunk. Admission
  still reserves the blocks of the whole prompt plus one token. Since a step cannot mix phases,
  prefill and decode steps alternate while both have work: after a prefill step, requests that
  are decoding get a decode step before the next chunk.
- Otherwise a decode step gives every decoding request one more token (it processes the last
  token produced, against the tokens cached before it). A request whose next cached token needs a
  new block takes a free one; when none is free, the most recently admitted request holding
  blocks is preempted (never the last decoding one):
  - `preemption="recompute"` (vLLM's default): its blocks are freed and it goes back to the front
    of the waiting queue, to be prefilled again over its prompt and the tokens it had generated;
    that prefill yields its next token.
  - `preemption="swap"`: its blocks are copied to host memory (`swap_time(blocks)` gives the
    seconds and joules, added to this step) and it waits, with its progress, in the swapped
    queue. At the start of each iteration swapped requests come back first, oldest first, while
    the blocks they held are free and the batch has room (the copy back is added to the next
    step); no waiting request is admitted in an iteration that begins with a request swapped out
    (as vLLM's scheduler).
- A request leaves, freeing its blocks, when it has all its output tokens.

`step_time(phase, groups)` gives a step's (seconds, joules); `groups` are (new_tokens, context,
count) triples: `count` requests each processing `new_tokens` tokens with `context` tokens
already cached.
"""
import contextlib
import gc
import math
from dataclasses import dataclass

from ..errors import WorkloadError

PREFILL_MODES = ("whole", "chunked")
PREEMPTION_MODES = ("recompute", "swap")
STAGES = ("one", "two")


@dataclass(frozen=True)
class SchedulerOptions:
    max_batch: int = 256          # requests in the batch (decoding or prefilling)
    max_tokens: int = 8192        # prompt tokens a prefill step processes
    block_size: int = 16          # KV-cache tokens per block
    kv_blocks: int = None         # blocks the KV cache holds (None: no limit)
    prefill: str = "whole"        # whole or chunked
    preemption: str = "recompute"  # recompute or swap
    stages: str = "one"           # one: prefill and decode steps take turns; two: on their own devices at once

    def __post_init__(self):
        for name in ("max_batch", "max_tokens", "block_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorkloadError(f"{name} must be a positive whole number, got {v!r}")
        if self.kv_blocks is not None and (isinstance(self.kv_blocks, bool) or not isinstance(self.kv_blocks, int)
                                           or self.kv_blocks < 1):
            raise WorkloadError(f"kv_blocks must be a positive whole number, got {self.kv_blocks!r}")
        if self.prefill not in PREFILL_MODES:
            raise WorkloadError(f"prefill must be one of {', '.join(PREFILL_MODES)}, got {self.prefill!r}")
        if self.preemption not in PREEMPTION_MODES:
            raise WorkloadError(f"preemption must be one of {', '.join(PREEMPTION_MODES)}, got {self.preemption!r}")
        if self.stages not in STAGES:
            raise WorkloadError(f"stages must be one of {', '.join(STAGES)}, got {self.stages!r}")
        if self.stages == "two" and self.preemption == "swap":
            raise WorkloadError("two stages preempt by recompute only (swap would need the host link of both stages)")


@dataclass
class RequestResult:
    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    first_token_s: float = math.nan
    finish_s: float = math.nan
    preemptions: int = 0


@dataclass
class StepRecord:
    start_s: float
    seconds: float                # the step's time, with any swap to or from host memory
    phase: str
    batch: int                    # requests in the step
    tokens: int                   # tokens the step processes
    kv_blocks: int                # blocks in use during the step
    energy_j: float
    waiting: int = 0              # requests in the system but not in the step (queued, swapped, other phase)
    preempted: int = 0            # requests preempted before the step
    swap_s: float = 0.0           # seconds of `seconds` spent copying KV blocks to or from host memory
    output_tokens: int = 0        # tokens the step yields: one per decoding request, one per completed prompt


@dataclass(eq=False)                # compared by identity
class _Live:
    index: int
    prompt: int                   # tokens to prefill (the prompt, plus generated ones after a recompute)
    generated: int = 0
    blocks: int = 0
    admitted: int = 0             # admission order (preemption takes the latest)
    prefilled: int = 0            # tokens of `prompt` prefilled so far
    ready_s: float = 0.0          # two stages: when its KV cache is ready for the decode stage


def _blocks(tokens, size):
    return -(-tokens // size)


class _Stream:
    """The scheduler's state between iterations (see the module's rules)."""

    def __init__(self, requests, options, step_time, swap_time, progress):
        self.requests, self.opts, self.step_time, self.swap_time = requests, options, step_time, swap_time
        self.progress = progress or (lambda done, total: None)
        self.results = [RequestResult(r.id, r.arrival_s, r.prompt_tokens, r.output_tokens) for r in requests]
        self.pending = sorted(range(len(requests)), key=lambda i: (requests[i].arrival_s, i))
        self.pending.reverse()                      # pop() takes the earliest
        self.waiting, self.swapped = [], []         # front first
        self.prefilling, self.running = [], []      # admitted: prompt chunks left / decoding
        self.free = options.kv_blocks if options.kv_blocks is not None else math.inf
        self.now = 0.0
        self.steps = []
        self.admissions = 0
        self.done = 0
        self.last_phase = None
        self.swap_s = self.swap_j = 0.0             # host copies owed to the next step
        self.preempted = 0

    def run(self):
        n = len(self.requests)
        while self.done < n:
            self._arrivals()
            if not (self.running or self.prefilling or self.waiting or self.swapped):
                self.now = max(self.now, self.requests[self.pending[-1]].arrival_s)
                continue
            admit = not self.swapped              # no admissions in an iteration that swaps in
            self._swap_in()
            chunks = self._prefill_chunks(admit)
            if chunks:
                self._prefill(chunks)
            elif self.running:
                self._decode()
            else:
                # nothing decodes and the front request cannot get its blocks: the cache is too small
                front = (self.swapped or self.waiting)[0]
                raise WorkloadError(f"request {self.requests[front.index].id} does not fit the KV cache")
        return self.results, self.steps

    # -- queues ----------------------------------------------------------------------------------

    def _arrivals(self):
        reqs = self.requests
        while self.pending and reqs[self.pending[-1]].arrival_s <= self.now:
            i = self.pending.pop()
            self.waiting.append(_Live(i, reqs[i].prompt_tokens))

    def _in_batch(self):
        return len(self.running) + len(self.prefilling)

    def _swap_in(self):
        while self.swapped and self._in_batch() < self.opts.max_batch and self.swapped[0].blocks <= self.free:
            w = self.swapped.pop(0)
            self.free -= w.blocks
            s, j = self.swap_time(w.blocks)
            self.swap_s += s
            self.swap_j += j
            (self.running if w.prefilled == w.prompt else self.prefilling).append(w)
        self.running.sort(key=lambda w: w.admitted)
        self.prefilling.sort(key=lambda w: w.admitted)

    def _admit(self, w, need):
        self.waiting.pop(0)
        self.free -= need
        w.blocks = need
        self.admissions += 1
        w.admitted = self.admissions

    def _prefill_chunks(self, admit=True):
        """[(request, tokens)] of the next prefill step (admitting waiting requests unless `admit` is
        false), or [] for a decode."""
        opts = self.opts
        if opts.prefill == "chunked" and self.last_phase == "prefill" and self.running:
            return []                               # alternate: the decoding requests' turn
        chunks, tokens = [], 0
        for w in self.prefilling:                   # chunked: continue the admitted prompts first
            if tokens == opts.max_tokens:
                break
            n = min(w.prompt - w.prefilled, opts.max_tokens - tokens)
            chunks.append((w, n))
            tokens += n
        admitted = 0
        while admit and self.waiting and self._in_batch() + admitted < opts.max_batch:
            w = self.waiting[0]
            need = _blocks(w.prompt + 1, opts.block_size)
            if need > self.free:
                break
            if opts.prefill == "chunked":
                if tokens == opts.max_tokens:
                    break
                n = min(w.prompt, opts.max_tokens - tokens)
            else:
                if chunks and tokens + w.prompt > opts.max_tokens:
                    break
                n = w.prompt
            self._admit(w, need)
            admitted += 1
            chunks.append((w, n))
            tokens += n
        return chunks

    # -- steps -----------------------------------------------------------------------------------

    def _record(self, phase, groups, batch, tokens, waiting, yields):
        seconds, joules = self.step_time(phase, groups)
        seconds += self.swap_s
        self.steps.append(StepRecord(self.now, seconds, phase, batch, tokens, self._used(), joules + self.swap_j,
                                     waiting, self.preempted, self.swap_s, yields))
        self.swap_s = self.swap_j = 0.0
        self.preempted = 0
        self.now += seconds
        self.last_phase = phase

    def _prefill(self, chunks):
        in_step = {id(w) for w, _ in chunks}
        groups = _groups((n, w.prefilled) for w, n in chunks)
        others = len(self.waiting) + len(self.swapped) + len(self.running) \
            + sum(1 for w in self.prefilling if id(w) not in in_step)
        yields = sum(1 for w, n in chunks if w.prefilled + n == w.prompt)
        self._record("prefill", groups, len(chunks), sum(n for _, n in chunks), others, yields)
        prefilling = set(id(w) for w in self.prefilling)
        for w, n in chunks:
            w.prefilled += n
            if id(w) not in prefilling:
                self.prefilling.append(w)
            if w.prefilled == w.prompt:
                self.prefilling.remove(w)
                w.generated += 1
                res = self.results[w.index]
                if math.isnan(res.first_token_s):
                    res.first_token_s = self.now
                self.running.append(w)
        self._finish()

    def _decode(self):
        opts, reqs = self.opts, self.requests

        def grows(w):
            return _blocks(reqs[w.index].prompt_tokens + w.generated, opts.block_size) > w.blocks

        while True:
            want = sum(1 for w in self.running if grows(w))
            if want <= self.free:
                break
            candidates = self.prefilling + (self.running if len(self.running) > 1 else [])
            if not candidates:
                raise WorkloadError(f"request {reqs[self.running[0].index].id} does not fit the KV cache")
            victim = max(candidates, key=lambda w: w.admitted)
            (self.prefilling if victim in self.prefilling else self.running).remove(victim)
            self._preempt(victim)
        for w in self.running:
            if grows(w):
                w.blocks += 1
                self.free -= 1
        # each request processes its last token against the tokens cached before it
        groups = _groups((1, reqs[w.index].prompt_tokens + w.generated - 1) for w in self.running)
        n = len(self.running)
        self._record("decode", groups, n, n, len(self.waiting) + len(self.swapped) + len(self.prefilling), n)
        for w in self.running:
            w.generated += 1
        self._finish()

    def _preempt(self, victim):
        self.free += victim.blocks
        self.preempted += 1
        self.results[victim.index].preemptions += 1
        if self.opts.preemption == "swap":
            s, j = self.swap_time(victim.blocks)
            self.swap_s += s
            self.swap_j += j
            self.swapped.insert(0, victim)
            return
        victim.blocks = 0
        victim.prefilled = 0
        victim.prompt = self.requests[victim.index].prompt_tokens + victim.generated
        self.waiting.insert(0, victim)

    def _finish(self):
        """Requests with all their output tokens leave, freeing their blocks."""
        keep = []
        before = self.done
        for w in self.running:
            if w.generated >= self.requests[w.index].output_tokens:
                self.results[w.index].finish_s = self.now
                self._release(w.blocks)
                self.done += 1
            else:
                keep.append(w)
        self.running[:] = keep
        if self.done != before:
            self.progress(self.done, len(self.requests))

    def _release(self, blocks):
        """A leaving request's blocks are free from the end of its last step (now)."""
        self.free += blocks

    def _used(self):
        return 0 if self.opts.kv_blocks is None else self.opts.kv_blocks - self.free


def serve(requests, options, step_time, swap_time=None, progress=None):
    """Run the stream; returns ([RequestResult] in the input's order, [StepRecord]).

    swap_time(blocks) -> (seconds, joules) of copying that many KV blocks between the cache and
    host memory (one way); needed with `preemption="swap"`. progress(done, total) is called as
    requests finish."""
    opts = options
    if opts.preemption == "swap" and swap_time is None:
        raise WorkloadError("swap preemption needs the time to copy KV blocks to host memory and back")
    if opts.kv_blocks is not None:
        for r in requests:
            need = _blocks(r.prompt_tokens + r.output_tokens, opts.block_size)
            if need > opts.kv_blocks:
                raise WorkloadError(f"request {r.id}: {r.prompt_tokens} + {r.output_tokens} tokens need {need} KV "
                                    f"blocks; the cache holds {opts.kv_blocks}")
    stream = _TwoStages if opts.stages == "two" else _Stream
    with _fewer_collections():
        return stream(requests, opts, step_time, swap_time, progress).run()


#: objects allocated between two collections of Python's youngest generation while a stream runs
YOUNG_COLLECTION = 50_000


@contextlib.contextmanager
def _fewer_collections():
    """Python's cyclic garbage collector run less often while a stream runs. Timing a step makes
    and drops thousands of small containers (kernel records, their operands and contexts) beside
    the stream's long-lived memos, and at the default thresholds (700, 10, 10) collecting them
    took about a quarter of a GPT-3 175B stream's host time; nothing the stream keeps depends on
    when garbage is collected (the same results, tested by the stream tests)."""
    old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_COLLECTION, old[0]), max(50, old[1]), old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


class _TwoStages(_Stream):
    """Prefill and decode on their own devices at once (Hybe's stage-level pipelining, ISCA
    2025): the prefill stage runs prefill steps back to back as requests arrive, the decode stage
    runs decode steps over the requests whose prefill (with its KV transfer, inside the prefill
    step's replay) has ended. Each stage has its own clock; the next step is the stage's whose
    clock is earlier (prefill first on a tie). The batch limit, the KV blocks and recompute
    preemption are shared, as one cache and one batch; a leaving request's blocks are free from
    the end of its step. A prefill stage that cannot admit (batch or blocks full) waits for the end
    of the decode stage's next step."""

    def __init__(self, *args):
        super().__init__(*args)
        self.releases = []                          # (time, blocks) of requests that left

    def _release(self, blocks):
        # free when the leaving step ends: a step of the other stage that starts earlier but is
        # taken later (the stages' clocks differ) must not use them
        self.releases.append((self.now, blocks))

    def _released_by(self, t):
        due = [b for when, b in self.releases if when <= t]
        if due:
            self.free += sum(due)
            self.releases = [(when, b) for when, b in self.releases if when > t]

    def run(self):
        n = len(self.requests)
        pclock = dclock = 0.0
        while self.done < n:
            blocked = False
            ready = [w.ready_s for w in self.running]
            td = max(dclock, min(ready)) if ready else math.inf
            if self.waiting or self.prefilling:
                tp = pclock
            elif self.pending:
                tp = max(pclock, self.requests[self.pending[-1]].arrival_s)
            else:
                tp = math.inf
            if tp <= td:
                self.now = tp
                self._released_by(tp)
                self._arrivals()
                self.last_phase = None              # no alternation: decode has its own devices
                chunks = self._prefill_chunks()
                if chunks:
                    joined = set(map(id, self.running))
                    self._prefill(chunks)
                    pclock = self.now
                    for w in self.running:
                        if id(w) not in joined:
                            w.ready_s = self.now
                    continue
                if td == math.inf:
                    front = self.waiting[0]
                    raise WorkloadError(f"request {self.requests[front.index].id} does not fit the KV cache")
                blocked = True                      # wait for the decode stage to free room: decode now
            self.now = td
            self._released_by(td)
            self._arrivals()
            later = [w for w in self.running if w.ready_s > td]
            self.running[:] = [w for w in self.running if w.ready_s <= td]
            self._decode()
            self.running.extend(later)
            self.running.sort(key=lambda w: w.admitted)
            dclock = self.now
            if blocked:
                pclock = max(pclock, dclock)
        return self.results, self.steps


def _groups(pairs):
    """(new_tokens, context, count) triples, sorted."""
    counts = {}
    for n, c in pairs:
        counts[(n, c)] = counts.get((n, c), 0) + 1
    return tuple((n, c, k) for (n, c), k in sorted(counts.items()))


def percentiles(values, qs=(50, 90, 99)):
    """Nearest-rank percentiles of `values` (no interpolation)."""
    v = sorted(values)
    if not v:
        return {q: math.nan for q in qs}
    return {q: v[max(0, math.ceil(q / 100 * len(v)) - 1)] for q in qs}


__all__ = ["PREEMPTION_MODES", "PREFILL_MODES", "RequestResult", "SchedulerOptions", "StepRecord", "percentiles",
           "serve"]
