"""The executors a sweep runs on, behind one interface (concurrent.futures' `submit` and futures):
a local process pool, or a Dask distributed cluster through `Client.get_executor()`."""
import contextlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor

from ..errors import SweepError

EXECUTORS = ("local", "dask")


def default_jobs():
    """Worker processes when not told: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def local_pool(jobs=None):
    """A pool of `jobs` worker processes on this machine."""
    with ProcessPoolExecutor(max_workers=jobs or default_jobs()) as pool:
        yield pool


@contextlib.contextmanager
def dask_executor(address=None, jobs=None):
    """An executor on the Dask cluster whose scheduler is at `address` (`dask-scheduler`,
    `dask-worker`), or on a LocalCluster of `jobs` single-threaded worker processes when no
    address is given. Needs the `dask` extra."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("--executor dask needs Dask: pip install 'pimdram[dask]'") from None
    cluster = None
    try:
        if address:
            try:
                client = Client(address, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise SweepError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
        else:
            cluster = LocalCluster(n_workers=jobs or default_jobs(), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        yield client.get_executor()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def executor_for(kind, jobs=None, address=None):
    """The executor named `kind` ('local' or 'dask'), as a context manager."""
    if kind == "local":
        if address:
            raise SweepError("a scheduler address is for --executor dask")
        with local_pool(jobs) as ex:
            yield ex
    elif kind == "dask":
        with dask_executor(address, jobs) as ex:
            yield ex
    else:
        raise SweepError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTORS)}")
