"""Iteration-level scheduling of a request stream (as Orca and vLLM do it), with a paged KV cache.

Each iteration is one forward pass, a prefill or a decode step (prefill first, as vLLM's default
scheduler: a step never mixes the two). The rules, which tests/test_serve_scheduler.py works by
hand:

- Requests join the waiting queue at their arrival (ties by position) and are admitted first come,
  first served. When nothing runs and nothing waits, time jumps to the next arrival.
- A prefill step admits waiting requests in order while the step stays within `max_batch`
  running requests and `max_tokens` prompt tokens, and the KV cache has free blocks for each
  admitted prompt plus its first output token (blocks of `block_size` tokens). A prompt longer
  than `max_tokens` is admitted alone. The prefill yields each request's first token (TTFT ends
  at the step's end).
- Otherwise a decode step gives every running request one more token (it processes the last
  token produced, against the tokens cached before it). A request whose next cached token needs a
  new block takes a free one; when none is free, the most recently admitted running
  request is preempted: its blocks are freed and it goes back to the front of the waiting queue
  to be prefilled again over its prompt and the tokens it had generated (vLLM's recompute).
- A request leaves, freeing its blocks, when it has all its output tokens.

`step_time(phase, groups)` gives a step's (seconds, joules); `groups` are (new_tokens, context,
count) triples: `count` requests each processing `new_tokens` tokens with `context` tokens
already cached.
"""
import math
from dataclasses import dataclass

from ..errors import WorkloadError


@dataclass(frozen=True)
class SchedulerOptions:
    max_batch: int = 256          # running requests
    max_tokens: int = 8192        # prompt tokens a prefill step processes
    block_size: int = 16          # KV-cache tokens per block
    kv_blocks: int = None         # blocks the KV cache holds (None: no limit)

    def __post_init__(self):
        for name in ("max_batch", "max_tokens", "block_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorkloadError(f"{name} must be a positive whole number, got {v!r}")
        if self.kv_blocks is not None and (isinstance(self.kv_blocks, bool) or not isinstance(self.kv_blocks, int)
                                           or self.kv_blocks < 1):
            raise WorkloadError(f"kv_blocks must be a positive whole number, got {self.kv_blocks!r}")


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
    seconds: float
    phase: str
    batch: int                    # requests in the step
    tokens: int                   # tokens the step processes
    kv_blocks: int                # blocks in use during the step
    energy_j: float


@dataclass
class _Live:
    index: int
    prompt: int                   # tokens to prefill (the prompt, plus generated ones after a preemption)
    generated: int = 0
    blocks: int = 0
    admitted: int = 0             # admission order (preemption takes the latest)
    prefilled: bool = False


def _blocks(tokens, size):
    return -(-tokens // size)


def serve(requests, options, step_time):
    """Run the stream; returns ([RequestResult] in the input's order, [StepRecord])."""
    opts = options
    results = [RequestResult(r.id, r.arrival_s, r.prompt_tokens, r.output_tokens) for r in requests]
    if opts.kv_blocks is not None:
        for r in requests:
            need = _blocks(r.prompt_tokens + r.output_tokens, opts.block_size)
            if need > opts.kv_blocks:
                raise WorkloadError(f"request {r.id}: {r.prompt_tokens} + {r.output_tokens} tokens need {need} KV "
                                    f"blocks; the cache holds {opts.kv_blocks}")
    pending = sorted(range(len(requests)), key=lambda i: (requests[i].arrival_s, i))
    pending.reverse()                               # pop() takes the earliest
    waiting = []                                    # _Live, front first
    running = []
    free = opts.kv_blocks if opts.kv_blocks is not None else math.inf
    now = 0.0
    steps = []
    admissions = 0
    done = 0
    while done < len(requests):
        while pending and requests[pending[-1]].arrival_s <= now:
            i = pending.pop()
            waiting.append(_Live(i, requests[i].prompt_tokens))
        if not running and not waiting:
            now = max(now, requests[pending[-1]].arrival_s)
            continue
        # prefill: admit in order within the batch, token and block limits
        admit, tokens = [], 0
        while waiting and len(running) + len(admit) < opts.max_batch:
            w = waiting[0]
            need = _blocks(w.prompt + 1, opts.block_size)
            if admit and tokens + w.prompt > opts.max_tokens:
                break
            if need > free:
                break
            waiting.pop(0)
            free -= need
            w.blocks = need
            admissions += 1
            w.admitted = admissions
            admit.append(w)
            tokens += w.prompt
        if admit:
            groups = _groups((w.prompt, 0) for w in admit)
            seconds, joules = step_time("prefill", groups)
            steps.append(StepRecord(now, seconds, "prefill", len(admit), tokens, _used(opts, free), joules))
            now += seconds
            for w in admit:
                w.prefilled = True
                w.generated += 1
                res = results[w.index]
                if math.isnan(res.first_token_s):
                    res.first_token_s = now
                running.append(w)
            n, freed = _finish(running, requests, results, now)
            done, free = done + n, free + freed
            continue
        if not running:
            # the front request cannot get its blocks although nothing runs: the cache is too small
            raise WorkloadError(f"request {requests[waiting[0].index].id} does not fit the KV cache")
        # decode: every running request needs room for one more token
        running.sort(key=lambda w: w.admitted)
        while True:
            want = sum(1 for w in running
                       if _blocks(requests[w.index].prompt_tokens + w.generated, opts.block_size) > w.blocks)
            if want <= free or len(running) == 1:
                break
            victim = running.pop()                  # the latest admitted
            free += victim.blocks
            victim.blocks = 0
            victim.prefilled = False
            victim.prompt = requests[victim.index].prompt_tokens + victim.generated
            results[victim.index].preemptions += 1
            waiting.insert(0, victim)
        if want > free:
            raise WorkloadError(f"request {requests[running[0].index].id} does not fit the KV cache")
        for w in running:
            if _blocks(requests[w.index].prompt_tokens + w.generated, opts.block_size) > w.blocks:
                w.blocks += 1
                free -= 1
        # each request processes its last token against the tokens cached before it
        groups = _groups((1, requests[w.index].prompt_tokens + w.generated - 1) for w in running)
        seconds, joules = step_time("decode", groups)
        steps.append(StepRecord(now, seconds, "decode", len(running), len(running), _used(opts, free), joules))
        now += seconds
        for w in running:
            w.generated += 1
        n, freed = _finish(running, requests, results, now)
        done, free = done + n, free + freed
    return results, steps


def _finish(running, requests, results, now):
    """Remove finished requests from `running`: (how many, the blocks they free)."""
    keep, n, freed = [], 0, 0
    for w in running:
        if w.generated >= requests[w.index].output_tokens:
            results[w.index].finish_s = now
            freed += w.blocks
            n += 1
        else:
            keep.append(w)
    running[:] = keep
    return n, freed


def _used(opts, free):
    return 0 if opts.kv_blocks is None else opts.kv_blocks - free


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


__all__ = ["RequestResult", "SchedulerOptions", "StepRecord", "percentiles", "serve"]
