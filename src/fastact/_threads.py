"""How many threads a native kernel may use (CONTRACT.md section 5).

Resolution, first match wins:
  1. ``with fastact.num_threads(n):`` -- the calling Python thread only;
  2. ``fastact.set_num_threads(n)`` -- process-wide;
  3. the environment variable ``FASTACT_NUM_THREADS`` (read at import);
  4. OpenMP's own default, read at each call (so ``OMP_NUM_THREADS`` and
     threadpoolctl's limits apply);
all capped by the CPUs this process may run on (its affinity mask).

Arrays smaller than :data:`PARALLEL_MIN_ELEMENTS` run on one thread: below it
the cost of waking a second thread exceeds the work (measured with
``benchmarks/threshold.py``; see the README).

Fork safety: GNU OpenMP hangs in a child forked after the parent ran a
parallel region (gunicorn ``--preload``, multiprocessing "fork").  After such
a fork the child runs every kernel on one thread, entering no OpenMP region.
"""

from __future__ import annotations

import contextlib
import os
import threading

#: Below this many elements a call runs on one thread.  Measured on a 2-core
#: x86-64 (benchmarks/threshold.py): the two-thread time of a cheap op (relu)
#: and of a transcendental one (gelu) overtakes the one-thread time between
#: the sizes listed in the README; this is the larger crossing, rounded up.
PARALLEL_MIN_ELEMENTS = 1 << 16

_local = threading.local()
_process_default: int | None = None
_forked_after_parallel = False
_omp_max_threads = None  # set by _api when the native backend loads


def _env_threads() -> int | None:
    value = os.environ.get("FASTACT_NUM_THREADS", "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"FASTACT_NUM_THREADS must be a positive integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"FASTACT_NUM_THREADS must be a positive integer, got {value!r}")
    return n


_env_default = _env_threads()


def _cpu_limit() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_count(n) -> int:
    try:
        import operator
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"the number of threads must be an integer, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"the number of threads must be >= 1, got {n}")
    return n


def get_num_threads() -> int:
    """The number of threads a call from this thread may use now."""
    if _forked_after_parallel:
        return 1
    n = getattr(_local, "limit", None)
    if n is None:
        n = _process_default
    if n is None:
        n = _env_default
    if n is None:
        n = _omp_max_threads() if _omp_max_threads is not None else 1
    return max(1, min(n, _cpu_limit()))


def set_num_threads(n: int) -> None:
    """Set the process-wide number of threads (capped by the CPUs available)."""
    global _process_default
    _process_default = _check_count(n)


@contextlib.contextmanager
def num_threads(n: int):
    """Limit calls made from the current thread to ``n`` threads inside the block."""
    n = _check_count(n)
    previous = getattr(_local, "limit", None)
    _local.limit = n
    try:
        yield n
    finally:
        _local.limit = previous


def threads_for(size: int) -> int:
    """Threads for a call over ``size`` elements."""
    if size < PARALLEL_MIN_ELEMENTS:
        return 1
    return get_num_threads()


_parallel_used = None  # set by _api: the native module's parallel_used()


def _after_fork_in_child() -> None:
    global _forked_after_parallel
    if _parallel_used is not None and _parallel_used():
        _forked_after_parallel = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
