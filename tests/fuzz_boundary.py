"""Fuzz fastact's public boundary: arbitrary bytes become buffers, shapes,
strides, dtypes, parameters and ``out``, fed to every public function and
backward (issue 4).

Each case is decoded from one byte string (:class:`Bytes`), so a case is
reproducible from its bytes alone; the built-in driver draws the bytes of
case ``i`` from ``numpy.random.default_rng([seed, i])``.

What a case builds, from the bytes:

- an arena (one ``bytearray``, read-only ``bytes`` sometimes) in which the
  inputs, the bias, prelu's weight and ``out`` are laid out with
  ``np.ndarray(buffer=..., offset=..., strides=...)`` (NumPy checks that every
  element lies inside the buffer): any shape 0-d to 5-d, strides negative,
  zero, overlapping or not a multiple of the item size (misaligned),
  byte-swapped, read-only; now and then an array above the parallel threshold;
- values: the raw bytes (every bit pattern: NaN payloads, infinities,
  subnormals) or a table of special values;
- dtypes: every dtype of CONTRACT.md section 2, and invalid ones (complex,
  long double, datetime, object, str);
- parameters: the registry's parameters with valid, boundary and invalid
  values of every type; ``x`` / ``y`` forms; bias of every shape and dtype;
- ``out``: absent, fresh, a strided view, the input itself, a view of the
  arena that partly overlaps the inputs (or the bias, or the weight), wrong
  shape, wrong dtype, read-only, not an ndarray.

What is checked (a failure is a finding; a crash or a sanitizer report stops
the process):

- a call raises only TypeError or ValueError (AxisError is a ValueError), and
  then it writes nothing: the arena and every buffer are unchanged;
- a call with valid arguments but a bad ``out`` raises, a call with valid
  arguments and a good ``out`` succeeds;
- on success: ``result is out``; the result is bit-identical to the same
  backend on C-contiguous copies taken before the call; nothing outside
  ``out``'s own bytes changed; the native backend agrees with the NumPy
  backend within the property tests' tolerance.

Run (from the repository root, on a built tree):

    PYTHONPATH=src python3 tests/fuzz_boundary.py --cases 100000 --seed 1
    bash tests/sanitize.sh --exec python3 tests/fuzz_boundary.py --cases 1000000
    bash tests/sanitize.sh --exec python3 tests/fuzz_boundary.py --backend native \
        --no-compare --cases 500000 --seed 101        # memory safety only, faster
    python3 tests/fuzz_boundary.py --replay SEED:INDEX   # one case, verbosely
    python3 tests/fuzz_boundary.py --atheris [libFuzzer options]   # needs atheris

The last line of a run says how many cases ran and how many findings there
were; the exit status is 1 if there was any.  tests/test_fuzz_boundary.py
runs a short fixed-seed smoke version in CI.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import calls  # noqa: E402
import fastact  # noqa: E402
from conftest import BACKEND_NAMES, functions_for  # noqa: E402
from fastact import _registry as R  # noqa: E402
from test_properties import tolerance  # noqa: E402

NAMESPACES = {name: functions_for(name) for name in BACKEND_NAMES}
#: Set by --backend and --no-compare (a faster run under the sanitizers).
ONLY_BACKEND = None
COMPARE = True
NUMPY = NAMESPACES["numpy"]
CASES = [(a, d) for a in R.ACTIVATIONS for d in calls.directions(a)]

VALID_DTYPES = tuple(np.dtype(d) for d in (
    np.float16, np.float32, np.float64, np.bool_, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64))
INVALID_DTYPES = tuple(np.dtype(d) for d in (
    np.complex64, np.complex128, np.longdouble, "datetime64[s]", "timedelta64[ms]",
    object, "U2", "S3"))


def result_dtype(*dtypes):
    """CONTRACT.md section 2's result dtype of a call whose array inputs have ``dtypes``."""
    rts = [np.dtype(np.float16) if d.kind == "f" and d.itemsize == 2
           else np.dtype(np.float32) if d.kind == "f" and d.itemsize == 4
           else np.dtype(np.float64) for d in dtypes]
    if all(r == np.float16 for r in rts):
        return rts[0]
    return np.dtype(np.float64) if np.dtype(np.float64) in rts else np.dtype(np.float32)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 6.0, 2.0, -2.0, 20.0, -20.0,
                    40.0, -40.0, 88.7, -88.7, 709.8, -745.2, 1e4, -1e4, 1e30, -1e30, 1e300,
                    -1.2784645427610737, -0.7517916243, 1e-40, -1e-40, 5e-324, 1e-310,
                    2.2250738585072014e-308, 1.1754943508222875e-38, 65504.0, 1e-7,
                    np.inf, -np.inf, np.nan, -np.nan, 0.01, 0.125, 1 / 3, 1.702])


class Bytes:
    """Draws decisions from a byte string, like atheris' FuzzedDataProvider: every
    draw consumes bytes, and past the end every draw reads zeros."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def int(self, lo, hi):
        """An integer in [lo, hi]."""
        span = hi - lo + 1
        v = 0
        for _ in range(((span - 1).bit_length() + 7) // 8):
            v = (v << 8) | (self.data[self.pos] if self.pos < len(self.data) else 0)
            self.pos += 1
        return lo + v % span

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def one_in(self, k):
        return self.int(0, k - 1) == 0

    def fill(self, n):
        """``n`` bytes: the rest of the data, repeated (zeros if there is none)."""
        rest = self.data[self.pos:] or self.data or b"\0"
        return (rest * (n // len(rest) + 1))[:n]


# ---------------------------------------------------------------------------
# Arrays

class Arena:
    """One buffer in which a case lays out most of its arrays, so that ``out`` can
    overlap the inputs, the bias and the weight in arbitrary ways."""

    def __init__(self, b: Bytes):
        self.size = b.pick((64, 512, 4096, 32768))
        self.buf = bytearray(b.fill(self.size))
        self.readonly = b.one_in(8)

    def snapshot(self):
        return bytes(self.buf)


def extent(shape, strides, itemsize):
    """(lowest, highest + itemsize) byte offsets an array touches, relative to its start."""
    lo = sum((n - 1) * s for n, s in zip(shape, strides) if n and s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, strides) if n and s > 0)
    return lo, hi + itemsize


def addresses(a):
    """Byte offsets of every element of ``a`` from its first element's address."""
    offs = np.zeros((), np.int64)
    for n, s in zip(a.shape, a.strides):
        offs = np.add.outer(offs, np.arange(n, dtype=np.int64) * s)
    return offs.reshape(-1)


def self_overlapping(a):
    """Whether two elements of ``a`` share a byte (zero or too small strides)."""
    return a.size > 1 and bool((np.diff(np.sort(addresses(a))) < a.itemsize).any())


def draw_shape(b: Bytes, min_ndim=0):
    if b.one_in(150):  # above the parallel threshold: the OpenMP path
        n = fastact.PARALLEL_MIN_ELEMENTS + b.int(0, 40000)
        return (n,) if b.one_in(2) else (b.pick((16, 101, 256)), n // 97)
    ndim = b.int(min_ndim, 5)
    dims = [b.pick((0, 1, 1, 2, 2, 3, 4, 5, 7, 8, 16, 17, 33)) for _ in range(ndim)]
    while math.prod(dims) > 20000:
        dims[dims.index(max(dims))] //= 2
    return tuple(dims)


def fill_values(b: Bytes, a):
    """Writes values into a writeable array of a valid dtype."""
    kind = a.dtype.kind
    if kind == "f" and b.one_in(2):
        idx = np.frombuffer(b.fill(a.size), np.uint8) % len(SPECIAL)
        with np.errstate(all="ignore"):
            a[...] = SPECIAL[idx].reshape(a.shape)
    elif kind == "b":
        a[...] = (np.frombuffer(b.fill(a.size), np.uint8) & 1).reshape(a.shape).astype(bool)
    # else: the arena's own bytes are the values (every bit pattern)


def invalid_array(b: Bytes, shape, dtype):
    """An array of an unsupported dtype, built safely (no raw bytes as pointers)."""
    if dtype.kind == "O":
        return np.full(shape, 1.5, dtype=object)
    if dtype.kind in "US":
        return np.full(shape, "1", dtype=dtype)
    raw = np.frombuffer(b.fill(max(1, math.prod(shape)) * dtype.itemsize), np.uint8)
    return raw[: math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape).copy()


def draw_array(b: Bytes, arena: Arena, shape, dtype):
    """An array of ``shape`` and ``dtype`` in some layout, often inside the arena."""
    if dtype.kind not in "biuf" or (dtype.kind == "f" and dtype.itemsize > 8):
        return invalid_array(b, shape, dtype)
    if dtype.itemsize > 1 and b.one_in(5):
        dtype = dtype.newbyteorder()
    item = dtype.itemsize
    ndim = len(shape)
    layout = b.int(0, 4)
    if layout == 0:  # plain C / Fortran
        strides = np.empty(shape, dtype, order=b.pick("CF")).strides
    elif layout == 1:  # any element strides, zero and negative included
        strides = tuple(b.int(-3, 3) * item for _ in range(ndim))
    elif layout == 2:  # misaligned: strides not a multiple of the item size
        strides = tuple(b.int(-3 * item, 3 * item) for _ in range(ndim))
    else:  # a permuted, stepped, possibly reversed C layout (no self-overlap)
        strides = packed_strides(b, shape, item)
    lo, hi = extent(shape, strides, item)
    span = hi - lo
    in_arena = b.int(0, 2) and span + 8 <= arena.size and (math.prod(shape) < 40000)
    if in_arena:
        start = b.int(0, arena.size - span) - lo
        a = np.ndarray(shape, dtype, buffer=arena.buf, offset=start, strides=strides)
        if not self_overlapping(a) or b.one_in(4):
            fill_values(b, a)
    else:
        pad = b.int(0, item)
        raw = bytearray(b.fill(span + pad))
        a = np.ndarray(shape, dtype, buffer=raw, offset=pad - lo, strides=strides)
        if not self_overlapping(a) or b.one_in(4):
            fill_values(b, a)
        if b.one_in(6):  # a truly read-only buffer
            a = np.ndarray(shape, dtype, buffer=bytes(raw), offset=pad - lo, strides=strides)
    if (arena.readonly and in_arena) or b.one_in(6):
        a.flags.writeable = False
    return a


def packed_strides(b: Bytes, shape, item):
    ndim = len(shape)
    order = list(range(ndim))
    for i in range(ndim - 1, 0, -1):
        j = b.int(0, i)
        order[i], order[j] = order[j], order[i]
    strides = [0] * ndim
    step = item * b.pick((1, 1, 2, 3))
    for d in reversed(order):
        strides[d] = step * (-1 if b.one_in(3) else 1)
        step *= max(shape[d], 1) * b.pick((1, 1, 2))
    return tuple(strides)


# ---------------------------------------------------------------------------
# Parameters

#: (mostly valid, often invalid) values of each kind of parameter.
FLOATS = ((0.5, 2.0, -0.5, 0.0, -0.0, 1e-300, 1e300, 5e-324, -3.0, 40.0, 1.0, 6.0, 1.702,
           np.float32(0.25), np.float16(2), np.float64(-1.5), 3),
          (math.nan, math.inf, -math.inf, True, "1.0", None, 1j, np.array(0.5)))
INTS = ((1, 2, 3, 4, 5, 2**63, 2**64 - 1, np.int64(2), np.uint64(2**64 - 1), np.int8(3)),
        (0, -1, 2**64, -(2**63), True, 2.0, "2", None))
BOOLS = ((True, False, np.bool_(True)), (0, 1, None, "yes"))
CHOICES = (("none", "tanh"), ("exact", "", None, 0, b"tanh", "TANH"))
AXES = ((-3, -2, -1, 0, 1, 2, np.int32(1), np.uint8(0)),
        (-6, -5, -4, 3, 4, 5, 1.0, None, "0"))
POOLS = {"float": FLOATS, "int": INTS, "bool": BOOLS, "choice": CHOICES, "axis": AXES}


def draw_param(b: Bytes, param, x_shape, x_dtype, arena):
    """(value, present): a value for ``param``, or absent (its default)."""
    if b.one_in(3) and param.default is not R.REQUIRED:
        return None, False
    if param.kind in POOLS:
        good, bad = POOLS[param.kind]
        return b.pick(bad if b.one_in(10) else good), True
    if param.kind == "array":  # prelu's weight
        return draw_weight(b, x_shape, x_dtype, arena), True
    raise AssertionError(param.kind)


def channels(x_shape, axis):
    try:
        return x_shape[int(axis)] if len(x_shape) >= 2 else 1
    except (IndexError, TypeError, ValueError):
        return 3


def draw_weight(b: Bytes, x_shape, x_dtype, arena):
    what = b.int(0, 7)
    n = channels(x_shape, 1)
    if what == 0:
        return b.pick((0.25, -1.0, 0.0, math.nan, 2))
    if what == 1:
        return np.array(b.pick((0.25, -2.0)))
    dtype = x_dtype if b.int(0, 2) and x_dtype.kind in "biuf" else b.pick(
        VALID_DTYPES + INVALID_DTYPES[:2])
    length = n if b.int(0, 3) else b.pick((0, 1, 2, n + 1, max(n - 1, 0)))
    shape = (length,) if what != 7 else (length, 1)
    return draw_array(b, arena, shape, dtype)


def draw_bias(b: Bytes, x_shape, x_dtype, arena):
    what = b.int(0, 19)
    if what <= 8:
        return None
    if what <= 10:
        return b.pick((0.5, -1.0, 0, np.float32(0.25), math.inf, math.nan, 1j, "x"))
    n = x_shape[-1] if x_shape else 1
    dtype = x_dtype if b.int(0, 2) and x_dtype.kind in "biuf" else b.pick(
        VALID_DTYPES + INVALID_DTYPES[:3])
    length = n if b.int(0, 7) else b.pick((0, 1, n + 1, max(n - 1, 0)))
    shape = (length,) if what != 19 else (1, length)
    if not x_shape and what != 19:
        shape = ()  # a 0-d x takes a scalar bias (a 0-d array here)
    return draw_array(b, arena, shape, dtype)


# ---------------------------------------------------------------------------
# A case

class Case:
    """A decoded case: the function, its arguments, and what to expect of ``out``."""

    def __init__(self, data: bytes):
        b = self.b = Bytes(data)
        self.backend = b.pick(BACKEND_NAMES) if b.int(0, 3) == 0 else BACKEND_NAMES[0]
        if ONLY_BACKEND:
            self.backend = ONLY_BACKEND
        self.act, self.direction = b.pick(CASES)
        act = self.act
        self.arena = arena = Arena(b)
        shape = draw_shape(b, 0 if b.one_in(4) else calls.min_ndim(act))
        xdt = b.pick(VALID_DTYPES) if not b.one_in(12) else b.pick(INVALID_DTYPES)
        kwargs = {}
        present = {}
        for param in act.params:
            value, there = draw_param(b, param, shape, xdt, arena)
            if there:
                kwargs[param.name] = value
            present[param.name] = there
        if act.kind == R.MAXOUT and b.int(0, 2):  # mostly a divisible length
            try:
                ax = int(kwargs.get("axis", -1))
                k = int(kwargs.get("pieces", 2))
                if shape and 1 <= k <= 8:
                    shape = list(shape)
                    shape[ax] = k * b.int(0, 4)
                    shape = tuple(shape)
            except (IndexError, TypeError, ValueError, OverflowError):
                pass
        if calls.has_bias(act):
            bias = draw_bias(b, shape, xdt, arena)
            if bias is not None:
                kwargs["bias"] = bias
        x = draw_array(b, arena, shape, xdt)
        self.args = [x]
        if self.direction != "forward":
            rshape = self.result_shape(shape, kwargs)
            if rshape is None or b.one_in(30):
                rshape = draw_shape(b)
            gdt = xdt if b.int(0, 5) else b.pick(VALID_DTYPES)
            g = draw_array(b, arena, rshape, gdt)
            self.args = [g, x]
        if self.direction == "backward_y":
            form = b.int(0, 9)
            if form < 8:  # the documented form: y= instead of x
                kwargs["y"] = self.args.pop()
            elif form == 8:  # both: TypeError
                kwargs["y"] = x
        if b.one_in(40):  # not an ndarray: a Python scalar or a nested list
            try:
                self.args[0] = self.args[0].tolist()
            except Exception:
                pass
        self.kwargs = kwargs
        self.out_mode, self.out = self.draw_out(b)

    def result_shape(self, shape, kwargs):
        """The forward result's shape, or None when the arguments are invalid."""
        act = self.act
        if act.kind != R.MAXOUT:
            return shape
        try:
            ax = int(kwargs.get("axis", -1))
            k = int(kwargs.get("pieces", 2))
            return calls.result_shape(act, shape, axis=ax, pieces=k) if k >= 1 else None
        except (IndexError, TypeError, ValueError, OverflowError, ZeroDivisionError):
            return None

    def expected_out(self):
        """(shape, dtype) a good ``out`` must have, from a call with contiguous copies."""
        r = self.reference
        if isinstance(r, BaseException):
            return None
        r = r[0] if self.act.kind == R.PRELU and self.direction != "forward" else r
        return np.shape(r), np.asarray(r).dtype

    def draw_out(self, b: Bytes):
        # The oracle's inputs: contiguous copies taken before the call.
        self.copied_args, self.copied_kwargs = copies(self.args), copies(self.kwargs)
        self.reference = self.call(NAMESPACES[self.backend], self.copied_args,
                                   self.copied_kwargs, None)
        target = self.expected_out()
        mode = b.pick(("none", "none", "fresh", "view", "alias", "overlap", "overlap",
                       "shape", "dtype", "readonly", "list"))
        if target is None:
            shape, dtype = draw_shape(b), b.pick(VALID_DTYPES[:3])
        else:
            shape, dtype = target
        if mode == "none":
            return mode, None
        if mode == "fresh":
            return mode, np.full(shape, 7, dtype, order=b.pick("CF"))
        if mode == "view":
            big = np.full(tuple(2 * n for n in shape), 7, dtype)
            return mode, big[tuple(slice(None, None, b.pick((2, -2))) for _ in shape)
                             + (Ellipsis,)]
        if mode == "alias":
            arrays = [a for a in list(self.args) + list(self.kwargs.values())
                      if isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dtype
                      and a.flags.writeable and not self_overlapping(a)]
            if arrays:
                return mode, b.pick(arrays)
            mode = "overlap"
        if mode == "overlap":
            item = dtype.itemsize
            if dtype.kind not in "f" or self.arena.readonly:
                return "fresh", np.full(shape, 7, dtype)
            strides = packed_strides(b, shape, item)
            lo, hi = extent(shape, strides, item)
            if hi - lo > self.arena.size:
                return "fresh", np.full(shape, 7, dtype)
            start = b.int(0, self.arena.size - (hi - lo)) - lo
            if b.one_in(4):
                dtype = dtype.newbyteorder()
            return mode, np.ndarray(shape, dtype, buffer=self.arena.buf, offset=start,
                                    strides=strides)
        if mode == "shape":
            bad = tuple(shape) + (1,) if b.int(0, 1) or not shape else tuple(shape)[:-1]
            return mode, np.empty(bad, dtype)
        if mode == "dtype":
            other = b.pick([d for d in VALID_DTYPES[:3] + (np.dtype(np.int32),) if d != dtype])
            return mode, np.empty(shape, other)
        if mode == "readonly":
            o = np.empty(shape, dtype)
            o.flags.writeable = False
            return mode, o
        return mode, np.zeros(shape).tolist()  # "list"

    def call(self, fa, args, kwargs, out):
        """The public function's result, or the exception it raised."""
        name = self.act.name if self.direction == "forward" else self.act.name + "_backward"
        kw = dict(kwargs)
        if out is not None:
            kw["out"] = out
        try:
            with np.errstate(all="ignore"):
                return getattr(fa, name)(*args, **kw)
        except Exception as exc:  # noqa: BLE001 - which exceptions is what is checked
            return exc

    def describe(self):
        def show(a):
            if isinstance(a, np.ndarray):
                return (f"ndarray{a.shape} {a.dtype.str} strides={a.strides} "
                        f"writeable={a.flags.writeable} aligned={a.flags.aligned}")
            return repr(a)[:60]
        parts = [f"{self.backend} {self.act.name} {self.direction} out={self.out_mode}"]
        parts += [f"  arg: {show(a)}" for a in self.args]
        parts += [f"  {k}={show(v)}" for k, v in self.kwargs.items()]
        parts.append(f"  out: {show(self.out)}")
        return "\n".join(parts)


def copies(obj):
    """Contiguous native-endian copies of the arrays in a list or dict (the oracle's
    inputs, taken before the call)."""
    def cp(a):
        if isinstance(a, np.ndarray) and a.dtype.kind in "biuf":
            return np.array(a, dtype=a.dtype.newbyteorder("="), order="C")
        return a
    if isinstance(obj, dict):
        return {k: cp(v) for k, v in obj.items()}
    return [cp(a) for a in obj]


def primary(result, act, direction):
    return result[0] if act.kind == R.PRELU and direction != "forward" else result


def check(case: Case):
    """Runs one case; raises AssertionError on a finding."""
    fa = NAMESPACES[case.backend]
    arena_before = case.arena.snapshot()
    others = [a for a in list(case.args) + list(case.kwargs.values())
              if isinstance(a, np.ndarray)]
    before = [np.array(a, copy=True) for a in others]
    out = case.out
    out_before = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
    result = case.call(fa, case.args, case.kwargs, out)
    reference = case.reference
    bad_out = case.out_mode in ("shape", "dtype", "readonly", "list")

    if isinstance(result, BaseException):
        if not isinstance(result, (TypeError, ValueError)):
            raise AssertionError(f"raised {type(result).__name__}: {result}") from result
        if not isinstance(reference, BaseException) and not bad_out:
            raise AssertionError(f"valid call raised {type(result).__name__}: {result}")
        if case.arena.snapshot() != arena_before:
            raise AssertionError("a call that raised wrote into the arena")
        for a, c in zip(others, before):
            if not same(a, c):
                raise AssertionError("a call that raised modified an argument")
        if out_before is not None and not same(out, out_before):
            raise AssertionError("a call that raised wrote into out")
        return "raised"

    if isinstance(reference, BaseException):
        raise AssertionError(f"succeeded where the contiguous call raised "
                             f"{type(reference).__name__}: {reference}")
    if bad_out:
        raise AssertionError("a bad out was accepted")
    act, direction = case.act, case.direction
    got, ref = primary(result, act, direction), primary(reference, act, direction)
    if out is not None and got is not out:
        raise AssertionError("the result is not out")
    if not same(got, ref):
        raise AssertionError("differs from the call on contiguous copies")
    if act.kind == R.PRELU and direction != "forward" and not same(result[1], reference[1]):
        raise AssertionError("grad_weight differs from the call on contiguous copies")
    # Nothing outside out's own bytes changed.
    for a, c in zip(others, before):
        if not (isinstance(out, np.ndarray) and np.shares_memory(a, out)) and not same(a, c):
            raise AssertionError("an argument that is not out was modified")
    if case.arena.snapshot() != arena_before:
        mask = np.zeros(case.arena.size, bool)
        if isinstance(out, np.ndarray) and np.shares_memory(out, np.frombuffer(case.arena.buf,
                                                                                np.uint8)):
            start = (out.__array_interface__["data"][0]
                     - np.frombuffer(case.arena.buf, np.uint8).__array_interface__["data"][0])
            for k in range(out.itemsize):
                mask[start + addresses(out) + k] = True
        changed = np.frombuffer(case.arena.buf, np.uint8) != np.frombuffer(arena_before,
                                                                            np.uint8)
        if (changed & ~mask).any():
            raise AssertionError(f"bytes outside out changed: {np.flatnonzero(changed & ~mask)[:8]}")
    if COMPARE and case.backend != "numpy" and np.size(got) and case.act.kind != R.SOFTMAX and (
            case.direction != "backward_y"):
        agree_with_numpy(case, got)
    return case.out_mode


class Disagreement(AssertionError):
    """The native and the NumPy backend differ by more than the tolerance."""


def agree_with_numpy(case: Case, got):
    args, kwargs = case.copied_args, case.copied_kwargs
    expected = primary(case.call(NUMPY, args, kwargs, None), case.act, case.direction)
    if isinstance(expected, BaseException):
        raise AssertionError(f"the NumPy backend raised {expected!r}")
    arrays = [np.asarray(a) for a in list(args) + list(kwargs.values())
              if isinstance(a, (np.ndarray, list)) or np.isscalar(a)]
    with np.errstate(all="ignore"):
        values = [np.abs(a.astype(np.float64)) for a in arrays if a.dtype.kind in "biuf" and a.size]
    with np.errstate(all="ignore"):
        scale = max((float(np.max(v[np.isfinite(v)], initial=0.0)) for v in values), default=0)
    with np.errstate(all="ignore"):
        got, expected = np.array(got, np.float64), np.array(expected, np.float64)
    if case.direction != "forward":
        # Where grad_output is infinite and f'(x) underflows, the native kernels
        # (f' in long double for float64) give inf*tiny = inf and the NumPy backend
        # (f' in float64, 0) gives 0: a known difference, not checked here.
        with np.errstate(all="ignore"):
            g = np.asarray(args[0], np.float64)
        if g.shape == got.shape:
            got[np.isinf(g)] = expected[np.isinf(g)]
    rt = np.asarray(primary(case.reference, case.act, case.direction)).dtype
    rtol, atol = (0, 0) if case.act.exact else tolerance(rt, scale)
    if "bias" in kwargs and not case.act.exact:
        atol = max(atol, 64 * float(np.finfo(rt).eps) * scale)
    with np.errstate(all="ignore"):
        close = (np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
                 & (np.isinf(got) == np.isinf(expected)))
    if not close.all():
        where = [np.unravel_index(i, got.shape) for i in np.flatnonzero(~close)[:3]]
        shown = "; ".join(
            f"at {i}: inputs {[np.asarray(a)[i] for a in args if np.shape(a) == got.shape]} "
            f"native {got[i]!r} numpy {expected[i]!r}" for i in where)
        raise Disagreement(f"native vs NumPy backend ({np.count_nonzero(~close)} of "
                             f"{got.size} elements; kwargs {kwargs}): {shown}")


def same(a, b):
    """Same shape, dtype and bytes (b a native copy or another array)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind not in "biuf":
        return bool(np.all(a == b)) if a.dtype.kind in "OUS" else a.tobytes() == b.tobytes()
    return (np.ascontiguousarray(a).astype(a.dtype.newbyteorder("=")).tobytes()
            == np.ascontiguousarray(b).astype(b.dtype.newbyteorder("=")).tobytes())


# ---------------------------------------------------------------------------
# Drivers

def case_bytes(seed, index, n=2048):
    return np.random.default_rng([seed, index]).bytes(n)


def run_one(data: bytes):
    """Decode and check one case: (kind, None) or (kind, message)."""
    try:
        case = Case(data)
    except Exception:  # the decoder itself must not fail
        return "decoder", traceback.format_exc()
    try:
        return check(case), None
    except Disagreement as exc:
        return "disagreement", f"{case.describe()}\n  -> {exc}"
    except AssertionError as exc:
        return "finding", f"{case.describe()}\n  -> {exc}"


def run(seed, cases, start=0, report_every=50000, max_shown=25, status=None):
    """Runs cases ``start`` .. ``start + cases - 1``; prints the first ``max_shown``
    findings of each kind; returns the number of findings."""
    counts = {}
    findings = 0
    t0 = time.time()
    fastact.set_num_threads(2)
    for i in range(start, start + cases):
        if status is not None:
            os.pwrite(status, f"{seed}:{i:<12d}\n".encode(), 0)
        kind, message = run_one(case_bytes(seed, i))
        counts[kind] = counts.get(kind, 0) + 1
        if message is not None:
            findings += 1
            if counts[kind] <= max_shown:
                print(f"FINDING {seed}:{i} ({kind})\n{message}\n", flush=True)
        done = i - start + 1
        if report_every and done % report_every == 0:
            print(f"{done} cases, {findings} findings, {time.time() - t0:.0f} s, {counts}",
                  flush=True)
    done = sum(counts.values())
    print(f"fuzz_boundary: seed {seed}, cases {start}..{start + done - 1}: {done} cases, "
          f"{findings} findings, {time.time() - t0:.0f} s; outcomes {counts}", flush=True)
    return findings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first case index")
    ap.add_argument("--replay", help="SEED:INDEX: run one case and describe it")
    ap.add_argument("--status-file", help="file holding the case being run (for crashes)")
    ap.add_argument("--backend", choices=BACKEND_NAMES, help="fuzz this backend only")
    ap.add_argument("--no-compare", action="store_true",
                    help="skip the native-vs-NumPy agreement check (memory safety only)")
    ap.add_argument("--atheris", action="store_true",
                    help="coverage-guided with atheris; remaining args go to libFuzzer")
    args, rest = ap.parse_known_args(argv)
    global ONLY_BACKEND, COMPARE
    ONLY_BACKEND, COMPARE = args.backend, not args.no_compare
    if args.atheris:
        import atheris

        def one_input(data):
            kind, message = run_one(data)
            if message is not None:
                raise AssertionError(message)

        atheris.Setup([sys.argv[0]] + rest, one_input)
        fastact.set_num_threads(2)
        atheris.Fuzz()
        return 0
    if args.replay:
        seed, index = map(int, args.replay.split(":"))
        case = Case(case_bytes(seed, index))
        print(case.describe())
        print(run_one(case_bytes(seed, index)))
        return 0
    status = os.open(args.status_file, os.O_WRONLY | os.O_CREAT, 0o644) if args.status_file else None
    return 1 if run(args.seed, args.cases, args.start, status=status) else 0


if __name__ == "__main__":
    sys.exit(main())
