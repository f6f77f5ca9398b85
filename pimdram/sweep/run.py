"""Runs a sweep's points on an executor (a local process pool, Dask, or none: in this process),
takes finished points from the cache, and writes the results table."""
import concurrent.futures
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from .._atomic import atomic_output, output_path, writing
from .._version import __version__
from ..errors import OutputError, OutputExistsError, PimdramError, PimdramWarning
from .point import Resolver, error_text, point_hash, run_point
from .results import (METRICS, STATUS_FAILED, STATUS_OK, build_frame, read_results, results_kind,
                      write_results)
from .spec import Sweep, load_sweep

#: the cache directory beside the results table unless told otherwise
DEFAULT_CACHE = ".pimdram-cache"
CACHE_FORMAT = "pimdram.sweep-point"
CACHE_VERSION = (1, 0)


@dataclass
class SweepResult:
    """What a sweep did: the table written, and how many points ran, failed, came from the cache."""
    path: Path
    frame: object
    points: int
    ok: int
    failed: int
    cached: int
    seconds: float

    @property
    def first_errors(self):
        """(inputs, error) of the first failed points, at most three."""
        rows = self.frame[self.frame["status"] == STATUS_FAILED]
        inputs = self.frame.attrs["pimdram"]["inputs"]
        return [({k: row[k] for k in inputs}, row["error"]) for _, row in rows.head(3).iterrows()]


class PointCache:
    """Finished points as JSON files named by their hash (`<dir>/<hash[:2]>/<hash>.json`), each
    written atomically; only successful points are kept, so a rerun retries failures."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.write_error = None         # the first entry that could not be written (warned once)

    def check(self, output):
        """Refuse, before any point runs, a cache that cannot be one: a file, a device, the results
        table itself, or a directory below a file."""
        d = self.directory
        if _same_path(d, output):
            raise OutputError(f"{d}: the cache directory cannot be the results table; give another --cache")
        for ancestor in [d, *d.absolute().parents]:
            try:
                if ancestor.exists():
                    if not ancestor.is_dir():
                        raise OutputError(f"{d}: cannot be the sweep's cache directory: {ancestor} is not a "
                                          "directory")
                    break
            except OSError as exc:
                raise OutputError(f"{d}: cannot be the sweep's cache directory: {exc.strerror or exc}") from None

    def _path(self, key):
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key):
        """The metrics of point `key`, or None (absent, unreadable, or of another cache version)."""
        try:
            record = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (not isinstance(record, dict) or record.get("format") != CACHE_FORMAT
                or record.get("format_version", [None])[0] != CACHE_VERSION[0] or record.get("point") != key
                or not isinstance(record.get("metrics"), dict)):
            return None
        # a hand-edited or damaged entry's metrics (text, a list) reached the table's float columns
        # as a traceback after every point had run: such an entry is a miss, its point runs again
        if not all(v is None or isinstance(v, (int, float)) for v in record["metrics"].values()):
            return None
        return record["metrics"]

    def put(self, key, metrics):
        """Keep a finished point. The cache only saves work: an entry that cannot be written (a
        directory in its place, a full disk) is one warning, never the sweep's failure; the point's
        result is in the table all the same."""
        path = self._path(key)
        record = {"format": CACHE_FORMAT, "format_version": list(CACHE_VERSION), "point": key,
                  "generated_by": f"pimdram {__version__}", "metrics": metrics}
        try:
            with writing(path):
                path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(path, "w", encoding="utf-8") as f:
                json.dump(record, f)
        except OutputError as exc:
            if self.write_error is None:
                self.write_error = exc
                warnings.warn(f"the sweep cache is not kept: {exc} (results go to the table; a rerun runs "
                              "such points again)", PimdramWarning, stacklevel=2)


def _same_path(a, b):
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def default_cache(output):
    return Path(output).parent / DEFAULT_CACHE


def run_sweep(sweep, output, *, executor=None, cache="default", resume=False, overwrite=False, progress=None):
    """Run every point of `sweep` (a Sweep or a sweep file's path) and write the results table to
    `output` (.parquet, .csv or .h5). Returns a SweepResult.

    executor: a concurrent.futures-style executor (`submit` returning futures), e.g. a
    ProcessPoolExecutor or a Dask client's `get_executor()`; None runs the points here, one by one.
    cache: the directory of finished points (default: .pimdram-cache beside `output`; None: no
    cache). A point whose hash is there is not run again. resume: `output` may exist; its ok rows
    count as finished too, and it is replaced by the completed table. overwrite: `output` may
    exist and is replaced. progress(done, total, counts): after every point, with counts of ok,
    failed and cached points.
    """
    started = time.perf_counter()
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    output = Path(output)
    results_kind(output)
    # checked whole (a name too long, a directory, a device, an input) before it is looked at
    try:
        output_path(output, overwrite=overwrite or resume, inputs=[sweep.path] if sweep.path else ())
    except OutputExistsError:
        raise OutputExistsError(f"{output} exists; pass --resume to finish that sweep or --overwrite to "
                                "replace it") from None
    store = PointCache(default_cache(output) if cache == "default" else cache) if cache is not None else None
    if store is not None:
        store.check(output)
    previous = _previous(output) if resume and output.exists() else {}

    points = sweep.points()
    resolver = Resolver()
    rows = []
    tasks = {}          # hash -> Task to run
    waiting = {}        # hash -> rows waiting for it (a point given twice runs once)
    known = {}          # hash -> metrics of a finished point
    counts = {"ok": 0, "failed": 0, "cached": 0}
    for p in points:
        row = {"point": "", "inputs": p.inputs, "status": None, "error": "", "metrics": None}
        rows.append(row)
        try:
            task = resolver.task(p)
        except PimdramError as exc:
            _finish(row, STATUS_FAILED, error_text(exc), None, counts, "failed")
            continue
        key = row["point"] = point_hash(task)
        if key in waiting:
            waiting[key].append(row)
            continue
        if key not in known:
            found = previous.get(key)
            if found is None and store is not None:
                found = store.get(key)
            if found is not None:
                known[key] = found
        if key in known:
            _finish(row, STATUS_OK, "", known[key], counts, "cached")
            continue
        tasks[key] = task
        waiting[key] = [row]

    total = len(rows)
    done = total - sum(len(rows_) for rows_ in waiting.values())
    report = progress if progress is not None else (lambda done, total, counts: None)
    report(done, total, dict(counts))

    def record(key, result):
        nonlocal done
        ok = result.get("status") == STATUS_OK and result.get("version") == __version__
        if result.get("status") == STATUS_OK and not ok:
            result = dict(result, error=f"the worker runs pimdram {result.get('version')}, this sweep "
                                        f"{__version__}: install the same version on the cluster")
        if ok and store is not None:
            store.put(key, result["metrics"])
        for row in waiting[key]:
            _finish(row, STATUS_OK if ok else STATUS_FAILED, "" if ok else result["error"],
                    result["metrics"] if ok else None, counts, "ok" if ok else "failed")
            done += 1
        report(done, total, dict(counts))

    if executor is None:
        for key, task in tasks.items():
            record(key, run_point(task))
    elif tasks:
        futures = {executor.submit(run_point, task): key for key, task in tasks.items()}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    result = future.result()
                except Exception as exc:        # the worker died or the task could not be sent
                    result = {"status": STATUS_FAILED, "error": error_text(exc), "metrics": None}
                record(futures[future], result)
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    keep = sweep.keep or tuple(m.name for m in METRICS)
    frame = build_frame(rows, sweep.columns, keep, {"sweep": sweep.describe()})
    write_results(frame, output, overwrite=overwrite or resume)
    return SweepResult(output, frame, total, counts["ok"], counts["failed"], counts["cached"],
                       time.perf_counter() - started)


def _finish(row, status, error, metrics, counts, counted):
    row.update(status=status, error=error, metrics=metrics)
    counts[counted] += 1


def _previous(output):
    """point hash -> metrics of the ok rows of an existing results table (for --resume); only a
    table with every metric can stand in for a run."""
    frame = read_results(output)
    names = [m.name for m in METRICS]
    if not set(names) <= set(frame.columns):
        return {}
    out = {}
    for _, row in frame[frame["status"] == STATUS_OK].iterrows():
        out[row["point"]] = {n: _plain(row[n]) for n in names}
    return out


def _plain(value):
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value
