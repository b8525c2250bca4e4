"""Bit-identical results at every chunk boundary and memory alignment
(CONTRACT.md section 5; issue 4).

The native loops (src/fastact/_native.pyx) cut [0, n) into one contiguous chunk
per thread, each starting at a multiple of CHUNK_ALIGN (16) elements
(``_bound``), and the kernels work in SIMD blocks with a scalar tail.  Results
must not depend on where a chunk or a block starts.  With the size threshold
lowered to 1, small arrays run on 2, 3, 4 and 7 threads, so every chunk cut
and every tail length is reached cheaply: sizes 16k + d (d in -1, 0, 1) and
64k + d, and each array starts 0..15 elements into a larger buffer, so the
kernels also see every alignment of their pointers.

Each result must equal, bit for bit, the one-thread call on an aligned copy.
The CI version gives each (size, thread count, offset) combination to one
function in turn, so that each function meets every thread count and offset;
FASTACT_DETERMINISM_FULL=1 runs every combination for every function.
"""

import itertools
import os

import numpy as np
import pytest

import calls
import fastact
from calls import assert_same
from conftest import ACTIVATIONS, BACKEND_NAMES, functions_for
from fastact import _registry as R
from fastact import _threads

pytestmark = pytest.mark.skipif("native" not in BACKEND_NAMES,
                                reason="the native backend is not built")

THREAD_COUNTS = (2, 3, 4, 7)
ALIGN = 16  # _native.CHUNK_ALIGN
SIZES = sorted({k * ALIGN + d for k in (1, 2, 3, 7, 17) for d in (-1, 0, 1)}
               | {k * 64 + d for k in (3, 5) for d in (-1, 0, 1)})
OFFSETS = tuple(range(16))
FULL = os.environ.get("FASTACT_DETERMINISM_FULL") == "1"

#: (activation, call form, parameter variant) for every registry entry.
FORMS = [(a, d, v) for a in ACTIVATIONS for d in calls.directions(a) for v in calls.variants(a)
         if not (d == "backward_y" and v)]


@pytest.fixture
def every_size_parallel(monkeypatch):
    monkeypatch.setattr(_threads, "PARALLEL_MIN_ELEMENTS", 1)
    monkeypatch.setattr(_threads, "_cpu_limit", lambda: 64)


def shape_of(act, n):
    if act.kind == R.ELEMENTWISE:
        return (n,)
    if act.kind == R.PRELU:
        return (n, 3)  # outer = n: chunked over outer; grad_weight over 3 channels
    return calls.fit_shape(act, (n, 4))  # softmax and maxout: chunked over the rows


def overrides_for(act, dtype):
    if act.kind == R.PRELU:
        return {"weight": np.array([0.25, -1.5, 2.0], dtype), "axis": 1}
    return {}


def placed(values, offset):
    """``values`` copied into a buffer ``offset`` elements from its start."""
    buf = np.empty(values.size + offset, values.dtype)
    a = buf[offset:].reshape(values.shape)
    a[...] = values
    return a


def run(fa, act, direction, inputs, ov, variant):
    if direction == "backward" and act.kind == R.PRELU:
        return calls.backward_raw(fa, act, *inputs, **ov, **variant)
    return calls.call(fa, act, direction, inputs, **ov, **variant)


def combos():
    """(size, threads, offset) triples: all of them, or for CI a rotation."""
    return list(itertools.product(SIZES, THREAD_COUNTS, OFFSETS))


@pytest.mark.parametrize("act, direction, variant", FORMS,
                         ids=[f"{a.name}-{d}-{v}" for a, d, v in FORMS])
def test_every_chunk_boundary_and_offset(act, direction, variant, dtype,
                                         every_size_parallel):
    fa = functions_for("native")
    ov = overrides_for(act, dtype)
    everything = combos()
    if FULL:
        chosen = everything
    else:  # each size once, thread count and offset rotating with the form
        k = FORMS.index((act, direction, variant))
        chosen = [(n, THREAD_COUNTS[(i + k) % len(THREAD_COUNTS)], (3 * i + k) % 16)
                  for i, n in enumerate(SIZES)]
    rng = np.random.default_rng([len(act.name), len(direction)])
    for i, (n, threads, offset) in enumerate(chosen):
        shape = shape_of(act, n)
        forward_input = calls.values(rng, shape, dtype, -8, 8)
        if direction == "forward":
            inputs = (forward_input,)
        else:
            g = calls.values(rng, calls.result_shape(act, shape), dtype, -2, 2)
            if direction == "backward_y" or act.kind == R.SOFTMAX:
                with fastact.num_threads(1):
                    forward_input = calls.forward(fa, act, forward_input, **ov)
            inputs = (g, forward_input)
        with fastact.num_threads(1):
            expected = run(fa, act, direction, inputs, ov, variant)
        moved = tuple(placed(a, offset) for a in inputs)
        with fastact.num_threads(threads):
            got = run(fa, act, direction, moved, ov, variant)
        what = f"{act.name} {direction} {variant} n={n} threads={threads} offset={offset}"
        if isinstance(expected, tuple):
            assert_same(got[0], expected[0], what + " grad_input")
            assert_same(got[1], expected[1], what + " grad_weight")
        else:
            assert_same(got, expected, what)
        if (calls.has_bias(act) and direction != "backward_y" and act.kind == R.ELEMENTWISE
                and (FULL or i % 3 == 0)):
            # a bias row of 7 across the chunk cuts
            rows = placed(calls.values(rng, (n, 7), dtype), offset)
            bias = calls.values(rng, (7,), dtype)
            first = (rows,) if direction == "forward" else (rows, rows)
            with fastact.num_threads(1):
                expected = run(fa, act, direction, first, ov, dict(variant, bias=bias))
            with fastact.num_threads(threads):
                got = run(fa, act, direction, first, ov, dict(variant, bias=bias))
            assert_same(got, expected, what + " with bias")


def test_chunks_really_cut(every_size_parallel):
    """The lowered threshold really runs small arrays on several threads."""
    with fastact.num_threads(3):
        assert _threads.threads_for(SIZES[0]) == 3
    with fastact.num_threads(4):
        functions_for("native").relu(np.ones(5 * ALIGN))
    assert fastact._BACKENDS["native"].m.parallel_used()
