"""Where two threads start to beat one: the measurement behind
``fastact._threads.PARALLEL_MIN_ELEMENTS``.

    python benchmarks/threshold.py [--ops relu gelu] [--threads 2]

For a cheap activation (relu) and a transcendental one (gelu), in float32 and
float64, and for 2**10 .. 2**20 elements, times the native element-wise kernel
on one thread and on ``--threads`` threads.  The public functions cannot
show this: below PARALLEL_MIN_ELEMENTS they always run on one thread, so the
compiled module is called directly, exactly as ``_api.NativeBackend.forward``
calls it.  The Python call around the kernel costs the same in both columns,
so where the kernels cross, the public calls cross too.

The crossover of an op and dtype is the smallest size from which the
multi-threaded call is faster at that size and every larger one.  A parallel
region waits for a free CPU, so timings taken while other processes keep
CPUs busy say nothing: such a size is measured again after a pause, and if it
stays busy it is marked and left out of the crossover.  The
threshold to choose is the largest crossover, rounded up to a power of two.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

import fastact
from fastact import _bench
from fastact import _registry as R
from fastact._api import _native_params
from fastact._threads import PARALLEL_MIN_ELEMENTS

#: A cheap op and a transcendental one (override with --ops).
DEFAULT_OPS = ("relu", "gelu")
SIZES = tuple(2**k for k in range(10, 21))


def kernel_call(native, op, dtype, n, nthreads):
    """The zero-argument native forward call of ``op`` on ``n`` elements."""
    act = R.OP_ACTIVATION[op]
    values = _bench.param_values(act)
    for param in act.params:  # the form the op computes (gelu_tanh)
        if param.native == "op":
            values[param.name] = param.choices[act.native_op_names.index(op)]
    vec, key = _native_params(act, values)
    code = R.op_code(op)
    x = _bench.make_input(act, dtype, n)
    y = np.empty_like(x)
    no_bias = np.empty(0, x.dtype)
    forward = native.m.forward
    return lambda: forward(code, x, y, no_bias, vec, key, nthreads)


def measure_pair(native, op, dtype, n, nt, timing, retries):
    """(1-thread seconds, nt-thread seconds, CPUs other processes used meanwhile),
    measured again, after a pause, while other processes keep CPUs busy."""
    for attempt in range(retries + 1):
        others = _bench.others_cpu_meter()
        one = _bench.measure(kernel_call(native, op, dtype, n, 1), **timing)
        many = _bench.measure(kernel_call(native, op, dtype, n, nt), **timing)
        busy = others()
        if busy is None or busy <= _bench.BUSY_CPUS:
            break
        time.sleep(2.0)
    return one, many, busy


def crossover(sizes, one, many, valid):
    """Smallest size from which ``many`` beats ``one`` at it and every larger
    size, among the sizes marked ``valid`` (measured on a quiet machine)."""
    found = None
    for n, t1, tn, ok in zip(reversed(sizes), reversed(one), reversed(many), reversed(valid)):
        if not ok:
            continue
        if tn >= t1:
            break
        found = n
    return found


def _pow2(n):
    return f"2^{int(math.log2(n))}" if n and n & (n - 1) == 0 else str(n)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", nargs="+", metavar="OP", choices=R.NATIVE_OPS,
                        default=list(DEFAULT_OPS), help="element-wise activations "
                        f"(default: {' '.join(DEFAULT_OPS)})")
    parser.add_argument("--dtypes", nargs="+", choices=_bench.DTYPES,
                        default=list(_bench.DTYPES))
    parser.add_argument("--threads", type=int, default=2,
                        help="the thread count compared with one (default: 2)")
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=_bench.MIN_TIME)
    parser.add_argument("--retries", type=int, default=5,
                        help="measure a size again up to this many times while other "
                             "processes keep the CPUs busy (default: 5)")
    args = parser.parse_args(argv)

    native = fastact._BACKENDS.get("native")
    if native is None:
        print("the native backend is not available: nothing to measure", file=sys.stderr)
        return 1
    if not native.m.openmp_enabled():
        print("fastact was built without OpenMP: nothing to measure", file=sys.stderr)
        return 1
    timing = {"min_time": args.min_time, "samples": args.samples}
    nt = args.threads

    print(f"fastact {fastact.__version__}, SIMD {native.m.isa_in_use()}, "
          f"{_bench._cpu_model()}, {os.cpu_count()} CPUs; "
          f"median of {args.samples} samples of >= {args.min_time * 1e3:g} ms\n")
    header = (f"{'op':<8} {'dtype':<8} {'n':>10}  {'1 thread us':>12}  "
              f"{f'{nt} threads us':>13}  {'speedup':>7}")
    print(header)
    print("-" * len(header))
    crossings = []
    busy_rows = 0
    for op in args.ops:
        for dtype in args.dtypes:
            one, many, quiet = [], [], []
            for n in SIZES:
                t1, tn, busy = measure_pair(native, op, dtype, n, nt, timing, args.retries)
                one.append(t1)
                many.append(tn)
                flag = ""
                quiet.append(busy is None or busy <= _bench.BUSY_CPUS)
                if not quiet[-1]:
                    flag = f"  busy: other processes used {busy:.1f} CPUs"
                    busy_rows += 1
                print(f"{op:<8} {dtype:<8} {n:>10}  {t1 * 1e6:>12.2f}  "
                      f"{tn * 1e6:>13.2f}  {t1 / tn:>7.2f}{flag}", flush=True)
            crossings.append((op, dtype, crossover(SIZES, one, many, quiet)))
            print()

    print(f"crossover (1 -> {nt} threads), smallest size from which {nt} threads are "
          "faster at every larger size:")
    for op, dtype, n in crossings:
        shown = f"{n} ({_pow2(n)})" if n else f"none up to {SIZES[-1]} ({_pow2(SIZES[-1])})"
        print(f"  {op:<8} {dtype:<8} {shown}")
    if busy_rows:
        print(f"WARNING: {busy_rows} sizes were measured while other processes kept CPUs "
              "busy (marked 'busy'); their multi-threaded timings are unreliable and the "
              "crossovers skip them")
    found = [n for _, _, n in crossings if n]
    if found:
        suggested = 1 << math.ceil(math.log2(max(found)))
        print(f"largest crossover rounded up: {suggested} ({_pow2(suggested)}); "
              f"PARALLEL_MIN_ELEMENTS is {PARALLEL_MIN_ELEMENTS} "
              f"({_pow2(PARALLEL_MIN_ELEMENTS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
