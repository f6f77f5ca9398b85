"""Request files (docs/request-file-format.md): the requests a served stream is made of, read
from CSV or JSON Lines, written atomically, and generated from arrival processes and length
distributions with a seed.

A request is an id, an arrival time in seconds, and its prompt and output token counts; further
columns (e.g. `priority`) are kept as they are in `extra`.
"""
import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_output, note_input
from ..errors import WorkloadError

FORMAT_NAME = "pimdram-requests"
FORMAT_VERSION = (1, 0)
COLUMNS = ("id", "arrival_s", "prompt_tokens", "output_tokens")
#: limits: a longer line is not a request (e.g. /dev/zero), more requests or tokens are a typo
MAX_LINE = 1 << 16
MAX_REQUESTS = 1 << 24
MAX_TOKENS = 1 << 40


@dataclass(frozen=True)
class ServedRequest:
    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    extra: dict = field(default_factory=dict, compare=False, hash=False)


# --- reading ----------------------------------------------------------------------------------------

def _open_input(path):
    """Text file `path`, opened for reading and recorded as an input of the run."""
    note_input(path)
    try:
        return open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise WorkloadError(f"{path}: {exc.strerror or exc}") from None


def _lines(f, path):
    number = 0
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise WorkloadError(f"{path}:{number}: line longer than {MAX_LINE} characters; not a request or histogram file")
        yield number, line


def _version_line(text, path, number):
    """A '# pimdram-requests X.Y' line's version, checked readable."""
    parts = text.lstrip("#").split()
    if len(parts) != 2 or parts[0] != FORMAT_NAME:
        return None
    try:
        version = tuple(int(x) for x in parts[1].split("."))
    except ValueError:
        raise WorkloadError(f"{path}:{number}: version {parts[1]!r} is not MAJOR.MINOR") from None
    _check_version(version, path, number)
    return version


def _check_version(version, path, number):
    if len(version) != 2 or version[0] != FORMAT_VERSION[0] or version[1] > FORMAT_VERSION[1]:
        raise WorkloadError(f"{path}:{number}: {FORMAT_NAME} version {'.'.join(map(str, version))} is not readable "
                            f"by this pimdram (reads {FORMAT_VERSION[0]}.0 to {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]})")


def _request(values, path, number, index):
    """A ServedRequest from a mapping of column -> value (strings from CSV, JSON values)."""
    def integer(name):
        v = values.get(name)
        if isinstance(v, str):
            v = v.strip()
            try:
                v = int(v)
            except ValueError:
                raise WorkloadError(f"{path}:{number}: {name} {values.get(name)!r} is not a whole number") from None
        if isinstance(v, bool) or not isinstance(v, int):
            raise WorkloadError(f"{path}:{number}: {name} must be a whole number, got {v!r}")
        return v

    missing = [c for c in COLUMNS[2:] if values.get(c) in (None, "")]
    if values.get("arrival_s") in (None, "") and values.get("arrival") in (None, ""):
        missing.insert(0, "arrival_s")
    if missing:
        raise WorkloadError(f"{path}:{number}: missing {', '.join(missing)}")
    rid = integer("id") if values.get("id") not in (None, "") else index
    raw = values.get("arrival_s", values.get("arrival"))
    try:
        arrival = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise WorkloadError(f"{path}:{number}: arrival_s {raw!r} is not a number of seconds") from None
    if isinstance(raw, bool) or not math.isfinite(arrival) or arrival < 0:
        raise WorkloadError(f"{path}:{number}: arrival_s must be a finite, non-negative number of seconds, got {raw!r}")
    prompt, output = integer("prompt_tokens"), integer("output_tokens")
    for name, v in (("prompt_tokens", prompt), ("output_tokens", output)):
        if not 0 < v <= MAX_TOKENS:
            raise WorkloadError(f"{path}:{number}: {name} must be between 1 and {MAX_TOKENS}, got {v}")
    if rid < 0:
        raise WorkloadError(f"{path}:{number}: id must be non-negative, got {rid}")
    extra = {k: v for k, v in values.items() if k not in COLUMNS and k != "arrival" and k is not None}
    return ServedRequest(rid, arrival, prompt, output, extra)


def read_requests(path):
    """The requests of a request file (CSV, or JSON Lines when the first non-blank character is
    '{'), in file order. Errors name the file and line."""
    path = Path(path)
    f = _open_input(path)
    try:
        with f:
            requests = _read(_lines(f, path), path)
    except UnicodeDecodeError:
        raise WorkloadError(f"{path}: not a text file (UTF-8)") from None
    if not requests:
        raise WorkloadError(f"{path}: no requests")
    seen = set()
    for number, r in requests:
        if r.id in seen:
            raise WorkloadError(f"{path}:{number}: duplicate request id {r.id}")
        seen.add(r.id)
    return [r for _, r in requests]


def _read(lines, path):
    out = []
    header = None
    jsonl = None
    for number, line in lines:
        if number == 1:
            line = line.lstrip("\ufeff")
        text = line.strip()
        if not text:
            continue
        if jsonl is None:
            jsonl = text.startswith("{")
        if len(out) >= MAX_REQUESTS:
            raise WorkloadError(f"{path}:{number}: more than {MAX_REQUESTS} requests")
        if jsonl:
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise WorkloadError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise WorkloadError(f"{path}:{number}: expected a JSON object per line")
            if "format" in obj:
                if obj["format"] != FORMAT_NAME or out:
                    raise WorkloadError(f"{path}:{number}: unexpected header {obj.get('format')!r}")
                v = obj.get("version")
                if not (isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
                    raise WorkloadError(f"{path}:{number}: version must be [MAJOR, MINOR]")
                _check_version(tuple(v), path, number)
                continue
            out.append((number, _request(obj, path, number, len(out))))
            continue
        if text.startswith("#"):
            _version_line(text, path, number)
            continue
        try:
            row = next(csv.reader(io.StringIO(line)))
        except csv.Error as exc:
            raise WorkloadError(f"{path}:{number}: not CSV ({exc})") from None
        row = [c.strip() for c in row]
        if header is None:
            header = row
            names = set(header)
            need = [c for c in COLUMNS[2:] if c not in names]
            if "arrival_s" not in names and "arrival" not in names:
                need.insert(0, "arrival_s")
            if need or len(names) != len(header):
                what = f"missing column(s) {', '.join(need)}" if need else "repeated column names"
                raise WorkloadError(f"{path}:{number}: {what}; expected a header naming {', '.join(COLUMNS)}")
            continue
        if len(row) != len(header):
            raise WorkloadError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}")
        out.append((number, _request(dict(zip(header, row)), path, number, len(out))))
    return out


# --- writing ----------------------------------------------------------------------------------------

def write_requests(path, requests, overwrite=False):
    """Write `requests` (ServedRequest) as CSV, or as JSON Lines when `path` ends in .jsonl,
    atomically (the file appears whole or not at all)."""
    path = Path(path)
    extras = sorted({k for r in requests for k in r.extra})
    with atomic_output(path, "w", overwrite=overwrite, newline="", encoding="utf-8") as f:
        if path.suffix == ".jsonl":
            f.write(json.dumps({"format": FORMAT_NAME, "version": list(FORMAT_VERSION)}) + "\n")
            for r in requests:
                obj = {"id": r.id, "arrival_s": r.arrival_s, "prompt_tokens": r.prompt_tokens,
                       "output_tokens": r.output_tokens}
                obj.update(r.extra)
                f.write(json.dumps(obj) + "\n")
            return
        f.write(f"# {FORMAT_NAME} {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(COLUMNS) + extras)
        for r in requests:
            w.writerow([r.id, repr(float(r.arrival_s)), r.prompt_tokens, r.output_tokens]
                       + [r.extra.get(k, "") for k in extras])


# --- generating -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LengthStats:
    """A named length distribution: means from a publication, the spread an assumption."""
    prompt_mean: float
    output_mean: float
    cv: float               # coefficient of variation of each (log-normal)
    source: str


#: Means: Kwon et al., "Efficient Memory Management for Large Language Model Serving with
#: PagedAttention" (vLLM, SOSP 2023), section 6.1 / Fig. 11: ShareGPT prompts 161.31 and outputs
#: 337.99 tokens on average, Alpaca 19.31 and 58.45 ("8.4x longer input prompts and 5.8x longer
#: outputs"). The spread is an assumption: log-normal with a coefficient of variation of 1 (the
#: figure shows long right tails; its standard deviations are not given).
LENGTHS = {
    "sharegpt": LengthStats(161.31, 337.99, 1.0, "vLLM (SOSP 2023), ShareGPT means; log-normal spread, CV 1 (assumption)"),
    "alpaca": LengthStats(19.31, 58.45, 1.0, "vLLM (SOSP 2023), Alpaca means; log-normal spread, CV 1 (assumption)"),
}
ARRIVALS = ("poisson", "fixed", "burst")
MAX_SAMPLED_TOKENS = 1 << 20


def _lognormal(rng, mean, cv, n, limit):
    sigma2 = math.log(1 + cv * cv)
    mu = math.log(mean) - sigma2 / 2
    x = rng.lognormal(mu, math.sqrt(sigma2), n) if cv > 0 else np.full(n, mean)
    return np.clip(np.rint(x), 1, limit).astype(np.int64)


def read_histogram(path):
    """(prompt_tokens, output_tokens, weight) rows of a length histogram: CSV with columns
    prompt_tokens, output_tokens and count (a joint histogram; weights need not sum to 1)."""
    path = Path(path)
    f = _open_input(path)
    rows = []
    with f:
        header = None
        for number, line in _lines(f, path):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            row = [c.strip() for c in next(csv.reader(io.StringIO(line)))]
            if header is None:
                header = row
                if not {"prompt_tokens", "output_tokens", "count"} <= set(header):
                    raise WorkloadError(f"{path}:{number}: expected a header naming prompt_tokens, output_tokens, count")
                continue
            if len(row) != len(header):
                raise WorkloadError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}")
            d = dict(zip(header, row))
            try:
                p, o, c = int(d["prompt_tokens"]), int(d["output_tokens"]), float(d["count"])
            except ValueError:
                raise WorkloadError(f"{path}:{number}: prompt_tokens and output_tokens must be whole numbers, count a "
                                    "number") from None
            if not (0 < p <= MAX_TOKENS and 0 < o <= MAX_TOKENS) or not (math.isfinite(c) and c >= 0):
                raise WorkloadError(f"{path}:{number}: token counts must be positive and count non-negative")
            rows.append((p, o, c))
    if not rows or sum(c for _, _, c in rows) <= 0:
        raise WorkloadError(f"{path}: the histogram has no weight")
    return rows


def generate_requests(count, rate=math.inf, arrivals="poisson", lengths="sharegpt", seed=0, start_id=0):
    """`count` requests, deterministic for a seed.

    arrivals: 'poisson' (exponential gaps of mean 1/rate), 'fixed' (every 1/rate s) or 'burst'
    (all at 0; also any process when rate is infinite). lengths: a name of LENGTHS, a histogram
    file (read_histogram), or (prompt, output) for fixed lengths."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= MAX_REQUESTS:
        raise WorkloadError(f"count must be between 1 and {MAX_REQUESTS}, got {count!r}")
    rate = float(rate)
    if not rate > 0:
        raise WorkloadError(f"rate must be positive requests per second, got {rate}")
    if arrivals not in ARRIVALS:
        raise WorkloadError(f"arrivals must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    rng = np.random.default_rng(seed)
    if arrivals == "burst" or math.isinf(rate):
        times = np.zeros(count)
    elif arrivals == "fixed":
        times = np.arange(count) / rate
    else:
        gaps = rng.exponential(1 / rate, count)
        gaps[0] = 0.0
        times = np.cumsum(gaps)
    if isinstance(lengths, tuple):
        p, o = lengths
        if not (0 < p <= MAX_TOKENS and 0 < o <= MAX_TOKENS):
            raise WorkloadError(f"fixed lengths must be between 1 and {MAX_TOKENS} tokens, got {p}:{o}")
        prompts, outputs = np.full(count, p), np.full(count, o)
    elif isinstance(lengths, str) and lengths in LENGTHS:
        s = LENGTHS[lengths]
        prompts = _lognormal(rng, s.prompt_mean, s.cv, count, MAX_SAMPLED_TOKENS)
        outputs = _lognormal(rng, s.output_mean, s.cv, count, MAX_SAMPLED_TOKENS)
    else:
        rows = read_histogram(lengths)
        w = np.array([c for _, _, c in rows], dtype=float)
        pick = rng.choice(len(rows), size=count, p=w / w.sum())
        prompts = np.array([rows[i][0] for i in pick])
        outputs = np.array([rows[i][1] for i in pick])
    return [ServedRequest(start_id + i, float(times[i]), int(prompts[i]), int(outputs[i])) for i in range(count)]


def parse_lengths(text):
    """`--lengths`: a name of LENGTHS, PROMPT:OUTPUT, or a histogram file."""
    if text in LENGTHS:
        return text
    if ":" in text and all(part.strip().isdigit() for part in text.split(":", 1)):
        p, o = (int(x) for x in text.split(":", 1))
        return (p, o)
    if Path(text).exists():
        return text
    raise WorkloadError(f"--lengths {text!r}: expected {', '.join(LENGTHS)}, PROMPT:OUTPUT or a histogram file")
