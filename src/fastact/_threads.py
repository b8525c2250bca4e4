"""How many threads a native kernel may use (CONTRACT.md section 5).

Resolution, first match wins:
  1. ``with fastact.num_threads(n):`` -- the calling Python thread only;
  2. ``fastact.set_num_threads(n)`` -- process-wide;
  3. the environment variable ``FASTACT_NUM_THREADS`` (read at import);
  4. OpenMP's own default, read at each call (so ``OMP_NUM_THREADS`` and
     threadpoolctl's limits apply);
all capped by the CPUs this process may run on: its affinity mask, and the
CPU quota of its cgroup (a container's ``--cpus``, Kubernetes' CPU limit:
cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``, read once at import), so a
container limited to 2 CPUs on a 64-core host runs 2 threads, not 64.

threadpoolctl: fastact's OpenMP runtime is the libgomp its extension links
(bundled in the wheel), which ``threadpoolctl.threadpool_info()`` lists;
``threadpool_limits(n)`` sets OpenMP's thread count, which step 4 reads live.

Arrays smaller than :data:`PARALLEL_MIN_ELEMENTS` (piecewise-linear
activations, maxout, prelu) or :data:`PARALLEL_MIN_ELEMENTS_SMOOTH` (the
transcendental ones, softmax included) run on one thread: below it the cost
of waking a second thread exceeds the work (measured with
``benchmarks/threshold.py``; see the README).

Fork safety: GNU OpenMP hangs in a child forked after the parent ran a
parallel region (gunicorn ``--preload``, multiprocessing "fork").  After such
a fork the child runs every kernel on one thread, entering no OpenMP region.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading

#: Below this many elements a piecewise-linear call runs on one thread.
#: Measured on a 2-core x86-64 with the SIMD kernels (benchmarks/threshold.py):
#: two threads overtake one from 2^15 (relu float32) and 2^14 (float64); kept
#: one power of two above, as these calls are memory-bound and noisy.
PARALLEL_MIN_ELEMENTS = 1 << 16

#: The same for the transcendental activations (and softmax): measured
#: crossovers 2^10 (gelu, softplus), 2^11 (sigmoid float32), 2^12 (elu);
#: the largest.
PARALLEL_MIN_ELEMENTS_SMOOTH = 1 << 12

class _Local(threading.local):
    #: this thread's num_threads() limit; None outside such a block.  A class
    #: attribute, so that reading it where it was never set raises and
    #: catches no AttributeError: getattr(local, "limit", None) cost 0.8 us
    #: per call, most of the thread decision of a 10^5-element call.
    limit = None


_local = _Local()
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


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup",
                     proc_cgroup: str = "/proc/self/cgroup") -> int | None:
    """CPUs this process's cgroup quota allows (rounded up), or None if unlimited.

    The smallest quota of the process's cgroup and its ancestors: cgroup v2
    ``cpu.max`` ("<quota> <period>" or "max <period>"), or v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 is unlimited).
    """
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":  # cgroup v2
            base, read = root, _read_cpu_max
        elif "cpu" in controllers.split(","):  # cgroup v1
            base = next((os.path.join(root, d) for d in (controllers, "cpu", "cpu,cpuacct")
                         if os.path.isdir(os.path.join(root, d))), None)
            read = _read_cfs_quota
            if base is None:
                continue
        else:
            continue
        folder = os.path.normpath(base + "/" + path.strip("/"))
        while True:
            quota = read(folder)
            if quota is not None:
                quotas.append(quota)
            if os.path.normpath(folder) == os.path.normpath(base):
                break
            folder = os.path.dirname(folder)
    return max(1, math.ceil(min(quotas))) if quotas else None


def _read_cpu_max(folder):
    try:
        with open(os.path.join(folder, "cpu.max")) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _read_cfs_quota(folder):
    try:
        with open(os.path.join(folder, "cpu.cfs_quota_us")) as f:
            quota = int(f.read())
        with open(os.path.join(folder, "cpu.cfs_period_us")) as f:
            period = int(f.read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError, ZeroDivisionError):
        return None


_cgroup_quota = cgroup_cpu_quota()


def _cpu_limit() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    if _cgroup_quota is not None:
        n = min(n, _cgroup_quota)
    return max(1, n)


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
    n = _local.limit
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
    previous = _local.limit
    _local.limit = n
    try:
        yield n
    finally:
        _local.limit = previous


def threads_for(size: int, smooth: bool = False) -> int:
    """Threads for a call over ``size`` elements of a transcendental
    (``smooth``) or piecewise-linear activation."""
    if size < (PARALLEL_MIN_ELEMENTS_SMOOTH if smooth else PARALLEL_MIN_ELEMENTS):
        return 1
    return get_num_threads()


_parallel_used = None  # set by _api: the native module's parallel_used()


def _after_fork_in_child() -> None:
    global _forked_after_parallel
    if _parallel_used is not None and _parallel_used():
        _forked_after_parallel = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
