"""Threads and processes (CONTRACT.md section 5).

- results bit-identical for 1, 2, 3, 4, 5 and 7 threads, for every registry entry and
  call form, including softmax/log_softmax (parallel over slices), maxout and
  prelu's grad_weight (parallel over channels);
- ``set_num_threads`` / ``get_num_threads`` / ``num_threads`` semantics;
- ``FASTACT_NUM_THREADS`` and ``OMP_NUM_THREADS`` (fresh subprocesses);
- the GIL is released during a native kernel;
- concurrent calls from many Python threads equal serial calls;
- fork safety: a child forked after multi-threaded kernels computes correctly
  and never hangs.
"""

import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import calls
import fastact
from calls import assert_same
from conftest import ACTIVATIONS, BACKEND_NAMES, functions_for, ids
from fastact import _registry as R
from fastact import _threads

CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
N = fastact.PARALLEL_MIN_ELEMENTS

needs_native = pytest.mark.skipif("native" not in BACKEND_NAMES,
                                  reason="the native backend is not built")
NATIVE = functions_for("native") if "native" in BACKEND_NAMES else None
#: Tests of OpenMP's threads: skipped for a build with FASTACT_OPENMP=0, whose
#: kernels always run on the calling thread (CI tests that build too).
needs_openmp = pytest.mark.skipif(
    "native" not in BACKEND_NAMES or not fastact._BACKENDS["native"].m.openmp_enabled(),
    reason="the native backend is built without OpenMP")
SRC = os.path.dirname(os.path.dirname(fastact.__file__))


def shape_for(act):
    """An odd-sized shape above the parallel threshold with many slices, channels
    and groups, so that every kind splits its work between threads."""
    if act.kind == R.ELEMENTWISE:
        return (2 * N // 101 + 1, 101)  # a bias row of 101 straddles chunk boundaries
    if act.kind == R.PRELU:
        return (5, 7, N // 16 + 3)  # outer 5, 7 channels, odd inner
    if act.kind == R.SOFTMAX:
        return (37, N // 16 + 5)
    return (37, 2 * (N // 32 + 3))  # maxout: even along the grouped axis


def overrides_for(act, shape, dtype):
    if act.kind == R.PRELU:
        return {"weight": np.linspace(-1.5, 1.5, shape[1]).astype(dtype), "axis": 1}
    return {}


def all_results(fa, act, dtype, seed=0):
    """Every result of every call form of ``act`` on a fixed big input, as a dict."""
    shape = shape_for(act)
    rng = np.random.default_rng([seed, len(act.name)])
    ov = overrides_for(act, shape, dtype)
    x = calls.values(rng, shape, dtype, -8, 8)
    g = calls.values(rng, calls.result_shape(act, shape, **ov), dtype, -2, 2)
    res = {"forward": calls.forward(fa, act, x, **ov)}
    bwd = calls.backward_raw(fa, act, g, res["forward"] if act.kind == R.SOFTMAX else x, **ov)
    if act.kind == R.PRELU:
        res["grad_input"], res["grad_weight"] = bwd
    else:
        res["backward"] = bwd
    if act.backward_from_y:
        res["backward_y"] = calls.backward_from_y(fa, act, g, res["forward"], **ov)
    if calls.has_bias(act):
        bias = calls.values(rng, shape[-1:], dtype)
        res["forward_bias"] = calls.forward(fa, act, x, bias=bias, **ov)
        b = calls.backward_raw(fa, act, g, x, bias=bias, **ov)
        res["backward_bias"] = b[0] if act.kind == R.PRELU else b
        if act.kind == R.PRELU:
            res["grad_weight_bias"] = b[1]
    if act.kind == R.SOFTMAX:
        # Along axis 0 the slices are strided: inner > 1.
        res["forward_axis0"] = calls.forward(fa, act, x, axis=0)
    for variant in calls.variants(act)[1:]:  # gelu's tanh form, rrelu's training slopes
        res[f"forward {variant}"] = calls.forward(fa, act, x, **variant, **ov)
        res[f"backward {variant}"] = calls.backward(fa, act, g, x, **variant, **ov)
    return res


# ---------------------------------------------------------------------------
# Bit-identical results for every thread count

THREAD_COUNTS = (1, 2, 3, 4, 5, 7)


@pytest.fixture
def uncapped(monkeypatch):
    """Lift the affinity cap, so that 3 and 5 threads really run (oversubscribed) on
    a 2-CPU machine: the chunk boundaries, not the core count, decide the results."""
    monkeypatch.setattr(_threads, "_cpu_limit", lambda: 64)


@needs_native
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_bit_identical_for_every_thread_count(act, dtype, uncapped):
    results = {}
    for n in THREAD_COUNTS:
        with fastact.num_threads(n):
            assert _threads.threads_for(N) == n
            results[n] = all_results(NATIVE, act, dtype)
    for n in THREAD_COUNTS[1:]:
        for key, value in results[1].items():
            assert_same(results[n][key], value, f"{act.name} {key} with {n} threads")


@needs_openmp
def test_threads_really_used():
    """The bit-identity test above ran several threads (else it proves nothing)."""
    if CPUS < 2:
        pytest.skip("one CPU")
    with fastact.num_threads(2):
        NATIVE.gelu(np.ones(2 * N))
    assert fastact._BACKENDS["native"].m.parallel_used()


@pytest.mark.parametrize("n", [1, 2])
def test_below_threshold_one_thread(n):
    with fastact.num_threads(n):
        assert _threads.threads_for(N - 1) == 1
        assert _threads.threads_for(N) == min(n, CPUS)


# ---------------------------------------------------------------------------
# set_num_threads / get_num_threads / num_threads

@pytest.fixture
def restore_threads(monkeypatch):
    """Undo set_num_threads after the test (it is process-wide)."""
    monkeypatch.setattr(_threads, "_process_default", _threads._process_default)


def test_num_threads_context(restore_threads):
    fastact.set_num_threads(CPUS)
    assert fastact.get_num_threads() == CPUS
    with fastact.num_threads(1):
        assert fastact.get_num_threads() == 1
        with fastact.num_threads(CPUS):
            assert fastact.get_num_threads() == CPUS
        assert fastact.get_num_threads() == 1
    assert fastact.get_num_threads() == CPUS
    with pytest.raises(KeyError):
        with fastact.num_threads(1):
            raise KeyError("restored on error too")
    assert fastact.get_num_threads() == CPUS


def test_num_threads_is_thread_local(restore_threads):
    fastact.set_num_threads(CPUS)
    seen = {}
    inside = threading.Event()
    done = threading.Event()

    def other():
        inside.wait(10)
        seen["other"] = fastact.get_num_threads()
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with fastact.num_threads(1):
        inside.set()
        done.wait(10)
        seen["main"] = fastact.get_num_threads()
    t.join(10)
    assert seen == {"main": 1, "other": CPUS}


def test_set_num_threads_is_process_wide(restore_threads):
    fastact.set_num_threads(1)
    seen = []
    t = threading.Thread(target=lambda: seen.append(fastact.get_num_threads()))
    t.start()
    t.join(10)
    assert seen == [1] and fastact.get_num_threads() == 1
    fastact.set_num_threads(2)
    assert fastact.get_num_threads() == min(2, CPUS)


def test_capped_by_affinity(restore_threads):
    fastact.set_num_threads(CPUS + 5)
    assert fastact.get_num_threads() == CPUS
    with fastact.num_threads(10**6):
        assert fastact.get_num_threads() == CPUS


@pytest.mark.parametrize("bad, error",
                         [(v, ValueError) for v in (0, -1, -(2**40))]
                         + [(v, TypeError) for v in (1.5, 2.0, "2", None, [2])])
def test_invalid_counts_raise(bad, error, restore_threads):
    """Counts below 1 raise ValueError, non-integers TypeError; nothing changes."""
    before = fastact.get_num_threads()
    with pytest.raises(error):
        fastact.set_num_threads(bad)
    with pytest.raises(error):
        with fastact.num_threads(bad):
            pass
    assert fastact.get_num_threads() == before


# ---------------------------------------------------------------------------
# Environment, in fresh processes

def run_python(code, env_updates=(), timeout=120):
    """Run ``code`` in a fresh interpreter that imports this fastact; its stdout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTACT_NUM_THREADS", "OMP_NUM_THREADS", "FASTACT_BACKEND",
                        "FASTACT_ISA")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(dict(env_updates))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


COUNT = "import fastact; print(fastact.get_num_threads())"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_fastact_num_threads_env(n):
    assert int(run_python(COUNT, {"FASTACT_NUM_THREADS": str(n)})) == min(n, CPUS)


def test_fastact_num_threads_env_beats_omp():
    env = {"FASTACT_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}
    assert int(run_python(COUNT, env)) == min(2, CPUS)
    env = {"FASTACT_NUM_THREADS": "1", "OMP_NUM_THREADS": str(CPUS)}
    assert int(run_python(COUNT, env)) == 1


def test_set_num_threads_beats_env():
    code = "import fastact; fastact.set_num_threads(1); print(fastact.get_num_threads())"
    assert int(run_python(code, {"FASTACT_NUM_THREADS": str(CPUS)})) == 1


@pytest.mark.skipif(CPUS < 2 or not hasattr(os, "sched_setaffinity"),
                    reason="needs 2 CPUs and sched_setaffinity")
def test_capped_by_affinity_set_at_run_time():
    """The cap follows the affinity mask when it changes (taskset, cgroups, a job
    scheduler), whatever asked for more."""
    code = """
        import os, fastact
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        a = fastact.get_num_threads()
        fastact.set_num_threads(8)
        b = fastact.get_num_threads()
        with fastact.num_threads(4):
            c = fastact.get_num_threads()
        print(a, b, c)
    """
    assert run_python(code, {"FASTACT_NUM_THREADS": "2"}).split() == ["1", "1", "1"]


@needs_openmp
@pytest.mark.parametrize("n", [1, 2])
def test_omp_num_threads_env(n):
    assert int(run_python(COUNT, {"OMP_NUM_THREADS": str(n)})) == min(n, CPUS)


@needs_openmp
def test_default_uses_every_cpu():
    assert int(run_python(COUNT)) == CPUS


@needs_openmp
def test_omp_num_threads_env_reaches_kernels():
    """OMP_NUM_THREADS=1: a big call runs no parallel region at all."""
    code = """
        import numpy as np, fastact
        fastact.gelu(np.ones(4 * fastact.PARALLEL_MIN_ELEMENTS))
        print(fastact._BACKENDS["native"].m.parallel_used())
    """
    assert run_python(code, {"OMP_NUM_THREADS": "1"}) == "False"
    if CPUS >= 2:
        assert run_python(code, {"OMP_NUM_THREADS": "2"}) == "True"


# ---------------------------------------------------------------------------
# The GIL

@needs_native
def test_gil_released_during_native_kernel():
    """A pure-Python counter thread keeps counting while one long kernel runs.

    With the GIL held for the whole call the counter could run only in the
    driver's Python code around it (a switch interval or two), a small fraction
    of the call; with the GIL released it runs for the whole call."""
    x = np.linspace(-5, 5, 3_000_000)
    while True:
        with fastact.num_threads(1):
            t0 = time.perf_counter()
            NATIVE.gelu(x)
            elapsed = time.perf_counter() - t0
        if elapsed > 0.15 or x.size >= 30_000_000:
            break
        x = np.linspace(-5, 5, min(x.size * 4, 30_000_000))
    count = [0]
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=counter, daemon=True)
    t.start()
    try:
        time.sleep(0.05)
        c0, t0 = count[0], time.perf_counter()
        time.sleep(elapsed)
        rate = (count[0] - c0) / (time.perf_counter() - t0)  # counts/s, GIL free
        with fastact.num_threads(1):
            c0, t0 = count[0], time.perf_counter()
            NATIVE.gelu(x)
            during, took = count[0] - c0, time.perf_counter() - t0
    finally:
        stop.set()
        t.join(10)
    # A good part of the free-running count; a held GIL would give ~0.
    assert during > 0.3 * rate * took, (during, rate, took)


# ---------------------------------------------------------------------------
# Many Python threads at once

@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_concurrent_calls_equal_serial(backend):
    fa = functions_for(backend)
    jobs = []
    for i, act in enumerate(ACTIVATIONS):
        for dtype in (np.float32, np.float64):
            for size in (1001, N + 33):
                jobs.append((act, np.dtype(dtype), size, i))

    def run(job):
        act, dtype, size, seed = job
        shape = calls.fit_shape(act, (size // 7, 7) if act.kind == R.PRELU else (size,))
        rng = np.random.default_rng([seed, size, dtype.itemsize])
        x = calls.values(rng, shape, dtype)
        g = calls.values(rng, calls.result_shape(act, shape), dtype)
        return calls.forward(fa, act, x), calls.backward(fa, act, g, x)

    serial = [run(j) for j in jobs]
    with fastact.num_threads(2):
        with ThreadPoolExecutor(8) as pool:
            for _ in range(2):
                concurrent = list(pool.map(run, jobs))
                for job, s, c in zip(jobs, serial, concurrent):
                    for a, b in zip(c, s):
                        assert_same(a, b, f"{job[0].name} {job[1]} size {job[2]} concurrent")


# ---------------------------------------------------------------------------
# fork

FORK_SCRIPT = r"""
import multiprocessing as mp
import os
import sys

import numpy as np
import fastact

big = np.linspace(-6, 6, 8 * fastact.PARALLEL_MIN_ELEMENTS + 5)
rows = big[: 64 * 1001].reshape(64, 1001)


def work(seed):
    out = {}
    out["gelu"] = fastact.gelu(big + seed)
    out["softmax"] = fastact.softmax(rows + seed, axis=-1)
    out["tanh_backward"] = fastact.tanh_backward(big, big + seed)
    return out


def same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


fastact.set_num_threads(2)
expected = {s: work(s) for s in range(4)}  # runs parallel regions (2 threads)
native = fastact.get_backend() == "native"
if native and len(os.sched_getaffinity(0)) >= 2:
    assert fastact._BACKENDS["native"].m.parallel_used()

# os.fork: the child computes and reports through its exit status.
pid = os.fork()
if pid == 0:
    ok = all(same(work(s), expected[s]) for s in range(4))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status

# multiprocessing's "fork" start method: a Pool of forked workers.
with mp.get_context("fork").Pool(2) as pool:
    got = pool.map(work, range(4), chunksize=1)
assert all(same(g, expected[s]) for s, g in enumerate(got))

# The parent still runs its kernels (multi-threaded) after forking.
assert same(work(1), expected[1])
print("fork ok")
"""


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_fork_after_parallel_kernels(backend):
    env = {"FASTACT_BACKEND": backend}
    try:
        out = run_python(FORK_SCRIPT, env, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("a process forked after multi-threaded kernels hung")
    assert out.endswith("fork ok")


# ---------------------------------------------------------------------------
# The soak (tests/soak_threads.py), short

@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_sixteen_threads_soak_short(backend):
    """16 Python threads on random functions, another flipping set_num_threads: every
    result bit-identical to serial, no deadlock (the long run: soak_threads.py)."""
    import soak_threads
    r = soak_threads.soak(seconds=1.0, n_threads=16, backend=backend)
    assert r["calls"] >= 16 and r["min_calls_per_thread"] >= 1
    assert r["set_num_threads_flips"] >= 1


def test_thresholds_per_family():
    """Transcendental calls go parallel from PARALLEL_MIN_ELEMENTS_SMOOTH on,
    piecewise-linear ones only from PARALLEL_MIN_ELEMENTS (the measured
    crossovers of benchmarks/threshold.py differ by 2^4)."""
    small, big = _threads.PARALLEL_MIN_ELEMENTS_SMOOTH, _threads.PARALLEL_MIN_ELEMENTS
    assert small < big
    with fastact.num_threads(2):
        assert _threads.threads_for(small - 1, True) == 1
        assert _threads.threads_for(small, True) == min(2, fastact.get_num_threads())
        assert _threads.threads_for(small, False) == 1
        assert _threads.threads_for(big, False) == min(2, fastact.get_num_threads())
    assert fastact.config()["parallel_min_elements_smooth"] == small


@needs_openmp
def test_smooth_call_above_its_threshold_runs_parallel():
    code = f"""
        import numpy as np, fastact
        fastact.set_num_threads(2)
        fastact.gelu(np.ones({2 * _threads.PARALLEL_MIN_ELEMENTS_SMOOTH}))
        print(fastact._BACKENDS["native"].m.parallel_used())
    """
    if CPUS < 2:
        pytest.skip("one CPU")
    assert run_python(code) == "True"
