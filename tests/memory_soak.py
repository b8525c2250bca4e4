"""Memory: many calls of every public function leak nothing (issue 4).

For every function and backward of the registry, ``calls`` calls cycling
through three forms: out-of-place, in place (``out=`` the input, or a
preallocated ``out``) and raising (an invalid parameter or a wrong ``out``,
the error caught).  Measured before and after, once warmed up:

- RSS (``/proc/self/statm``) and ``tracemalloc``'s traced memory: growth must
  stay under 1 MiB;
- ``sys.getrefcount`` of the input arrays, the ``out`` arrays and the
  parameter objects: unchanged.

    PYTHONPATH=src python3 tests/memory_soak.py --calls 1000000   # the full run
    PYTHONPATH=src python3 tests/memory_soak.py --calls 100000 --no-tracemalloc
    PYTHONPATH=src python3 tests/memory_soak.py --calls 2000 --backend numpy
    PYTHONPATH=src python3 tests/memory_soak.py --shard 1/2   # every other form (two processes)

tests/test_memory.py runs a reduced version in CI.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import calls  # noqa: E402
from conftest import BACKEND_NAMES, default_kwargs, functions_for  # noqa: E402
from fastact import _registry as R  # noqa: E402

MIB = 1 << 20
SIZE = 64  # elements per call: the per-call path, not the kernels, is what could leak


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bad_kwargs(act):
    """Keyword arguments that make the call raise (an invalid parameter value), or
    None if the entry has no checked parameter (then a wrong ``out`` is used)."""
    for p in act.params:
        bad = calls.invalid_values(p)
        if bad:
            return default_kwargs(act, **{p.name: bad[0]})
    return None


def workload(fa, act, direction, dtype):
    """Three closures (out-of-place, in place, raising) and the objects whose
    reference counts must not change."""
    rng = np.random.default_rng(len(act.name))
    shape = calls.fit_shape(act, (4, SIZE // 4))
    kw = default_kwargs(act)
    if act.kind == R.PRELU:
        kw["weight"] = np.linspace(-1, 1, shape[1]).astype(dtype)
    x = calls.values(rng, shape, dtype)
    g = calls.values(rng, calls.result_shape(act, shape), dtype)
    rshape = calls.output_shape(act, direction, shape)
    inputs = (x,) if direction == "forward" else (g, calls.forward(fa, act, x, **kw)
                                                   if direction == "backward_y"
                                                   or act.kind == R.SOFTMAX else x)
    inputs = tuple(np.array(a) for a in inputs)
    out = np.empty(rshape, dtype)
    in_place = inputs[0] if inputs[0].shape == rshape else out
    bad = bad_kwargs(act)
    wrong_out = np.empty(rshape + (1,), dtype)

    def plain():
        calls.call(fa, act, direction, inputs, **kw)

    def inplace():
        calls.call(fa, act, direction, inputs, out=in_place, **kw)

    def raising():
        try:
            if bad is not None and direction != "backward_y":
                calls.call(fa, act, direction, inputs, **dict(kw, **bad))
            else:
                calls.call(fa, act, direction, inputs, out=wrong_out, **kw)
        except (TypeError, ValueError):
            return
        raise AssertionError(f"{act.name} {direction}: did not raise")

    watched = list(inputs) + [out, wrong_out] + [v for v in kw.values()
                                                if isinstance(v, np.ndarray)]
    return (plain, inplace, raising), watched


def measure(backend, n_calls, log=print, trace=True, shard=(0, 1)):
    """Runs ``n_calls`` calls of every function (forms in turn); returns
    (rss growth, tracemalloc growth, refcount changes, calls made).
    ``shard`` = (k, n): only the forms whose index is k modulo n (so that n
    processes share a long run)."""
    fa = functions_for(backend)
    work = []
    for act in R.ACTIVATIONS:
        for direction in calls.directions(act):
            for dtype in (np.float32, np.float64):
                fns, watched = workload(fa, act, direction, np.dtype(dtype))
                work.append((f"{act.name} {direction} {np.dtype(dtype).name}", fns, watched))
    work = work[shard[0]::shard[1]]
    # Warm up: caches (dtype rules, chunk buffers), lazy imports, first allocations.
    for _, fns, _ in work:
        for _ in range(20):
            for fn in fns:
                fn()
    gc.collect()
    if trace:
        tracemalloc.start()
    refs = [[sys.getrefcount(o) for o in watched] for _, _, watched in work]
    rss0 = rss_bytes()
    traced0 = tracemalloc.get_traced_memory()[0]
    made = 0
    t0 = time.time()
    for k, (name, fns, watched) in enumerate(work):
        for i in range(n_calls):
            fns[i % 3]()
        made += n_calls
        if n_calls >= 100000:
            log(f"  {name}: {n_calls} calls, rss {(rss_bytes() - rss0) / MIB:+.3f} MiB, "
                f"traced {(tracemalloc.get_traced_memory()[0] - traced0) / MIB:+.3f} MiB, "
                f"{time.time() - t0:.0f} s")
    gc.collect()
    rss_growth = rss_bytes() - rss0
    traced_growth = tracemalloc.get_traced_memory()[0] - traced0
    tracemalloc.stop()
    changed = [(name, before, [sys.getrefcount(o) for o in watched])
               for (name, _, watched), before in zip(work, refs)
               if before != [sys.getrefcount(o) for o in watched]]
    return rss_growth, traced_growth, changed, made, len(work)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000,
                    help="calls per function, per dtype (default 10**6)")
    ap.add_argument("--backend", choices=BACKEND_NAMES, default=BACKEND_NAMES[0])
    ap.add_argument("--no-tracemalloc", action="store_true",
                    help="RSS and refcounts only (tracemalloc slows every call ~4x)")
    ap.add_argument("--shard", default="0/1", metavar="K/N",
                    help="run only the forms whose index is K modulo N (default 0/1: all)")
    args = ap.parse_args(argv)
    k, n = (int(v) for v in args.shard.split("/"))
    if not 0 <= k < n:
        ap.error(f"--shard {args.shard}: need 0 <= K < N")
    t0 = time.time()
    rss, traced, changed, made, n_functions = measure(args.backend, args.calls,
                                                      trace=not args.no_tracemalloc,
                                                      shard=(k, n))
    ok = rss < MIB and traced < MIB and not changed
    print(f"memory_soak: backend {args.backend}, shard {k}/{n}, {n_functions} function forms x {args.calls} "
          f"calls = {made} calls (out-of-place, in place, raising in turn) in "
          f"{time.time() - t0:.0f} s: RSS {rss / MIB:+.3f} MiB, tracemalloc "
          f"{traced / MIB:+.3f} MiB, refcount changes {len(changed)} -> "
          f"{'OK' if ok else 'LEAK'}")
    for name, before, after in changed:
        print(f"  refcounts of {name}: {before} -> {after}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
