"""Design-space sweeps: a sweep file's grid of gen/replay points run on an executor (a local process
pool or a Dask cluster), finished points cached by content hash, one tidy results table
(docs/sweeps.md)."""
from .executors import dask_executor, executor_for, local_pool
from .point import Task, point_hash, run_point
from .results import METRICS, read_results, write_results
from .run import PointCache, SweepResult, run_sweep
from .spec import Point, Sweep, load_sweep, parse_sweep

__all__ = ["METRICS", "Point", "PointCache", "Sweep", "SweepResult", "Task", "dask_executor", "executor_for",
           "load_sweep", "local_pool", "parse_sweep", "point_hash", "read_results", "run_point", "run_sweep",
           "write_results"]
