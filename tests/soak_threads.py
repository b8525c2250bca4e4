"""Thread soak (issue 4): many Python threads call random functions on their own
arrays for a while; every result must be bit-identical to the serial one.

Meanwhile another thread keeps changing the process-wide thread count with
``set_num_threads`` (and the workers use ``with num_threads(k)`` now and then),
and a pure-Python thread keeps counting: it must make progress while the
kernels run (the GIL is released).  Every thread must finish: a thread still
alive 60 s after the deadline is a deadlock (its stack is printed).

    PYTHONPATH=src python3 tests/soak_threads.py --threads 16 --seconds 10

tests/test_threads.py runs a short version in CI.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import calls  # noqa: E402
import fastact  # noqa: E402
from conftest import BACKEND_NAMES, functions_for  # noqa: E402
from fastact import _registry as R  # noqa: E402


def jobs(fa, seed=0):
    """(name, call(x_copies) -> result, inputs, serial result) for every registry entry
    and call form, on sizes below and above the parallel threshold."""
    rng = np.random.default_rng(seed)
    found = []
    for act in R.ACTIVATIONS:
        for direction in calls.directions(act):
            for size in (257, fastact.PARALLEL_MIN_ELEMENTS + 2 * 16 + 5):
                dtype = np.dtype(rng.choice([np.float32, np.float64]))
                shape = calls.fit_shape(act, (size // 7, 7) if act.kind != R.ELEMENTWISE
                                        else (size,))
                kw = {"weight": np.linspace(-1, 1, 7).astype(dtype)} if act.kind == R.PRELU else {}
                x = calls.values(rng, shape, dtype, -6, 6)
                g = calls.values(rng, calls.result_shape(act, shape, **kw), dtype)
                if direction == "forward":
                    inputs = (x,)
                elif direction == "backward_y" or act.kind == R.SOFTMAX:
                    inputs = (g, calls.forward(fa, act, x, **kw))
                else:
                    inputs = (g, x)

                def run(inputs, out=None, act=act, direction=direction, kw=kw):
                    return calls.call(fa, act, direction, inputs, out=out, **kw)

                with fastact.num_threads(1):
                    serial = run(inputs)
                found.append((f"{act.name} {direction} {dtype.name} {size}", run, inputs,
                              serial))
    return found


def soak(seconds=10.0, n_threads=16, backend=None, seed=0):
    """Returns a dict of figures; raises AssertionError on a mismatch or deadlock."""
    fa = functions_for(backend or BACKEND_NAMES[0])
    work = jobs(fa, seed)
    deadline = time.monotonic() + seconds
    stop = threading.Event()
    counts = [0] * n_threads
    errors = []
    flips = [0]
    progress = [0]

    def worker(k):
        rnd = random.Random(k)
        # at least one call per thread, even one that first runs after the
        # deadline (16 threads and a spinning counter on 2 loaded cores: a
        # thread could start late and call nothing, failing the short soak)
        while counts[k] == 0 or (time.monotonic() < deadline and not errors):
            name, run, inputs, serial = rnd.choice(work)
            mine = tuple(a.copy() for a in inputs)  # this thread's own arrays
            form = rnd.randrange(3)
            try:
                if form == 0:
                    got = run(mine)
                elif form == 1 and mine[0].shape == serial.shape:
                    got = run(mine, out=mine[0])  # in place
                else:
                    with fastact.num_threads(rnd.randint(1, 4)):
                        got = run(mine, out=np.empty_like(serial))
                if not calls.same_bits(got, serial):
                    errors.append(f"thread {k}: {name} differs from the serial result")
            except Exception as exc:  # noqa: BLE001
                errors.append(f"thread {k}: {name} raised {exc!r}")
            counts[k] += 1

    def flipper():
        rnd = random.Random(-1)
        while not stop.is_set():
            fastact.set_num_threads(rnd.randint(1, 4))
            flips[0] += 1
            time.sleep(0.002)

    def counter():
        while not stop.is_set():
            progress[0] += 1

    before = fastact._threads._process_default
    threads = [threading.Thread(target=worker, args=(k,), daemon=True)
               for k in range(n_threads)]
    helpers = [threading.Thread(target=flipper, daemon=True),
               threading.Thread(target=counter, daemon=True)]
    t0 = time.monotonic()
    try:
        for t in helpers + threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 60)
        stuck = [t for t in threads if t.is_alive()]
        if stuck:
            faulthandler.dump_traceback(all_threads=True)
            raise AssertionError(f"{len(stuck)} threads still running 60 s after the "
                                 "deadline: deadlock")
    finally:
        stop.set()
        for t in helpers:
            t.join(10)
        fastact._threads._process_default = before
    held = time.monotonic() - t0
    assert not errors, errors[:5]
    assert progress[0] > 0
    return {"threads": n_threads, "seconds": held, "calls": sum(counts),
            "min_calls_per_thread": min(counts), "set_num_threads_flips": flips[0],
            "counter_progress": progress[0], "jobs": len(work)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--backend", choices=BACKEND_NAMES, default=BACKEND_NAMES[0])
    args = ap.parse_args(argv)
    r = soak(args.seconds, args.threads, args.backend)
    print(f"soak_threads: backend {args.backend}: {r['threads']} threads x "
          f"{r['seconds']:.1f} s held, {r['calls']} calls (each thread >= "
          f"{r['min_calls_per_thread']}), all bit-identical to serial; set_num_threads "
          f"changed {r['set_num_threads_flips']} times; pure-Python counter "
          f"{r['counter_progress']}; no deadlock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
