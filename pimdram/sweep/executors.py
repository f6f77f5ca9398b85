"""The executors a sweep runs on, behind one interface (concurrent.futures' `submit` and futures):
a local process pool, or a Dask distributed cluster through `Client.get_executor()`."""
import contextlib
import logging
import os
import signal
from concurrent.futures import ProcessPoolExecutor

from .. import _signals
from ..errors import SweepError

EXECUTORS = ("local", "dask")


def default_jobs():
    """Worker processes when not told: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not on Linux
        return max(1, os.cpu_count() or 1)


def _worker_signals():
    """A worker leaves SIGINT to the parent (Ctrl-C reaches the whole process group; the parent
    stops the pool) and dies quietly of SIGTERM (the parent's terminate)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def local_pool(jobs=None):
    """A pool of `jobs` worker processes on this machine. Leaving the block with an exception
    (an error, Ctrl-C, SIGTERM) stops at once: queued points are cancelled and running ones'
    workers terminated, rather than waited for (a point's files are written atomically, and the
    next run removes a killed worker's temporaries)."""
    pool = ProcessPoolExecutor(max_workers=jobs or default_jobs(), initializer=_worker_signals)
    try:
        yield pool
    except BaseException:
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
        raise
    pool.shutdown(wait=True)


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
            # a signal that stopped LocalCluster half-built left a cluster Dask's own exit handler
            # then failed to close (a traceback after "interrupted"): it waits for the cluster
            with _signals.held():
                cluster = LocalCluster(n_workers=jobs or default_jobs(), threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
                client = Client(cluster)
            _signals.check()
    except BaseException:
        _close_quietly(cluster)
        raise
    try:
        yield client.get_executor()
    except BaseException:
        _close_quietly(client, cluster)
        raise
    client.close()
    if cluster is not None:
        cluster.close()


def _close_quietly(*things):
    """Close what a failed or interrupted sweep leaves open; a failure to close must not hide why."""
    with _signals.held():
        for thing in things:
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()


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
