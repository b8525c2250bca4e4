"""Arrays in, arrays out (CONTRACT.md section 2), for every registry entry.

dtype rules, byte order, layouts, shapes (0-d, size 0), ``out=`` (identity,
strides, in place, partial overlap, read-only, wrong shape/dtype/type), input
immutability and every parameter check, forward and backward, on both
backends.  Each layout or ``out`` case is compared bit for bit with the same
backend on a C-contiguous copy: the driver promises one computation whatever
the layout.
"""

import math
import zlib

import numpy as np
import pytest
from numpy.exceptions import AxisError

import calls
from calls import DIRECTIONS, INPUT_DTYPES, RESULT_DTYPE, assert_same
from conftest import ACTIVATIONS, default_kwargs, ids
from fastact import _registry as R

BIAS_ACTS = tuple(a for a in ACTIVATIONS if calls.has_bias(a))
FROM_Y = tuple(a for a in ACTIVATIONS if a.backward_from_y)
PRELU = tuple(a for a in ACTIVATIONS if a.kind == R.PRELU)

#: x's shape in most tests: odd sizes (SIMD tails) and a last axis maxout accepts.
SHAPE = (5, 18)


def rng_for(*keys):
    """A generator seeded by the test's keys, the same in every run (no hash())."""
    return np.random.default_rng(zlib.crc32(repr(tuple(str(k) for k in keys)).encode()))


def prepared(act, direction, dtype, shape=SHAPE):
    shape = calls.fit_shape(act, shape)
    return shape, calls.inputs(rng_for(act.name, direction, dtype, shape), act, direction,
                               shape, dtype)


def sentinel_out(act, direction, shape, dtype):
    out = np.empty(calls.output_shape(act, direction, shape), RESULT_DTYPE[np.dtype(dtype)])
    out[...] = 12345.0
    return out


# ---------------------------------------------------------------------------
# dtypes

@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("in_dtype", INPUT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_result_dtype(fa, act, in_dtype, direction):
    shape, args = prepared(act, direction, in_dtype)
    y = calls.call(fa, act, direction, args)
    assert y.dtype == RESULT_DTYPE[in_dtype]
    assert y.shape == calls.output_shape(act, direction, shape)
    # The value is the one of the compute dtype: float16 is computed in float32,
    # bool and integers in float64.
    compute = np.float32 if in_dtype == np.float16 else RESULT_DTYPE[in_dtype]
    expected = calls.call(fa, act, direction, tuple(a.astype(compute) for a in args))
    assert_same(y, expected.astype(RESULT_DTYPE[in_dtype]), f"{act.name} {direction} {in_dtype}")


@pytest.mark.parametrize("act", PRELU, ids=ids(PRELU))
def test_prelu_grad_weight_dtype(fa, act, dtype):
    x = calls.values(rng_for("gw"), (3, 4, 5), dtype)
    w = np.array([0.25, -0.5, 1.0, 2.0], dtype)
    gi, gw = calls.backward_raw(fa, act, np.ones_like(x), x, weight=w)
    assert gi.dtype == dtype and gw.dtype == dtype and gw.shape == w.shape


BAD_DTYPES = [np.complex64, np.complex128, object, np.str_, np.bytes_, "datetime64[s]",
              "timedelta64[s]", np.longdouble]


def bad_array(dtype, shape):
    dtype = np.dtype(dtype)
    if dtype.kind in "SU":
        return np.full(shape, "1", dtype)
    if dtype.kind in "mM":
        return np.zeros(shape, dtype)
    return np.ones(shape, dtype)


@pytest.mark.parametrize("direction, position", [("forward", 0), ("backward", 0),
                                                  ("backward", 1)])
@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_unsupported_dtype_raises_type_error(fa, act, bad, direction, position):
    """complex, object, strings, datetimes and long double: TypeError naming the dtype."""
    bad = np.dtype(bad)
    if bad == np.longdouble and bad.itemsize == 8:
        pytest.skip("long double is double on this platform")
    shape, args = prepared(act, direction, np.float64)
    args = list(args)
    args[position] = bad_array(bad, args[position].shape)
    out = sentinel_out(act, direction, shape, np.float64)
    with pytest.raises(TypeError) as info:
        calls.call(fa, act, direction, args, out=out)
    shown = args[position].dtype
    assert str(shown) in str(info.value) or shown.name in str(info.value), str(info.value)
    assert (out == 12345.0).all()


# ---------------------------------------------------------------------------
# Byte order and layouts

def swapped(a):
    return a.astype(a.dtype.newbyteorder())


def fortran(a):
    return np.asfortranarray(a)


def sliced(a):
    big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
    view = big[(slice(1, None, 2),) * a.ndim]
    view[...] = a
    return view


def reversed_(a):
    return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[
        (slice(None, None, -1),) * a.ndim]


def misaligned(a):
    buf = np.zeros(a.nbytes + a.itemsize, np.uint8)
    view = buf[1:1 + a.nbytes].view(a.dtype).reshape(a.shape)
    view[...] = a
    return view


def transposed(a):
    return np.ascontiguousarray(a.T).T


LAYOUTS = {"swapped": swapped, "fortran": fortran, "sliced": sliced,
           "negative": reversed_, "misaligned": misaligned, "transposed": transposed}


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_layout_gives_contiguous_result(fa, act, dtype, layout, direction):
    shape, args = prepared(act, direction, dtype)
    expected = calls.call(fa, act, direction, args)
    views = tuple(LAYOUTS[layout](a) for a in args)
    before = [v.copy() for v in views]
    if layout == "misaligned" and dtype.itemsize > 1:
        assert not views[0].flags.aligned
    y = calls.call(fa, act, direction, views)
    assert_same(y, expected, f"{act.name} {direction} {layout}")
    for v, b in zip(views, before):
        assert_same(v, b, "input modified")


VARIANTS = [(a, v) for a in ACTIVATIONS for v in calls.variants(a) if v]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act, variant", VARIANTS,
                         ids=[f"{a.name}-{v}" for a, v in VARIANTS])
def test_layouts_with_parameter_variants(fa, act, variant, dtype, direction):
    """Other code paths (gelu's tanh form, rrelu's training slopes keyed by the flat
    index in C order) are layout-independent too."""
    shape, args = prepared(act, direction, dtype)
    expected = calls.call(fa, act, direction, args, **variant)
    assert not same_as_default(fa, act, direction, args, expected), "variant changes nothing"
    for layout, make in LAYOUTS.items():
        y = calls.call(fa, act, direction, tuple(make(a) for a in args), **variant)
        assert_same(y, expected, f"{act.name} {variant} {direction} {layout}")
    out = np.empty(expected.shape, dtype, order="F")
    assert calls.call(fa, act, direction, args, out=out, **variant) is out
    assert_same(out, expected, f"{act.name} {variant} {direction} F-order out")


def same_as_default(fa, act, direction, args, result):
    return np.array_equal(calls.call(fa, act, direction, args), result)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_zero_strides(fa, act, dtype, direction):
    """np.broadcast_to views: read-only, stride 0 along broadcast axes."""
    shape = calls.fit_shape(act, SHAPE)
    rng = rng_for(act.name, "zero", direction)
    for keep in range(len(shape)):
        small_shapes = [tuple(n if i == keep else 1 for i, n in enumerate(s))
                        for s in calls.input_shapes(act, direction, shape)]
        smalls = [calls.values(rng, s, dtype) for s in small_shapes]
        views = tuple(np.broadcast_to(s, full)
                      for s, full in zip(smalls, calls.input_shapes(act, direction, shape)))
        assert 0 in views[0].strides and not views[0].flags.writeable
        y = calls.call(fa, act, direction, views)
        expected = calls.call(fa, act, direction, tuple(np.array(v) for v in views))
        assert_same(y, expected, f"{act.name} {direction} broadcast keeping axis {keep}")


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_read_only_inputs(fa, act, dtype, direction):
    shape, args = prepared(act, direction, dtype)
    expected = calls.call(fa, act, direction, args)
    frozen = tuple(a.copy() for a in args)
    for a in frozen:
        a.flags.writeable = False
    y = calls.call(fa, act, direction, frozen)
    assert_same(y, expected, act.name)
    for a, b in zip(frozen, args):
        assert_same(a, b, "read-only input modified")


@pytest.mark.parametrize("act", FROM_Y, ids=ids(FROM_Y))
def test_backward_from_y_layouts(fa, act, dtype):
    rng = rng_for(act.name, "y")
    y = getattr(fa, act.name)(calls.values(rng, SHAPE, dtype))
    g = calls.values(rng, SHAPE, dtype)
    bwd = getattr(fa, act.name + "_backward")
    expected = bwd(g, y=y)
    for layout, make in LAYOUTS.items():
        gv, yv = make(g), make(y)
        before = yv.copy()
        assert_same(bwd(gv, y=yv), expected, f"{act.name} y= {layout}")
        assert_same(yv, before, "y modified")


# ---------------------------------------------------------------------------
# Shapes: 0-d, scalars, size 0

SCALAR_ACTS = tuple(a for a in ACTIVATIONS if calls.min_ndim(a) == 0)
AXIS_ACTS = tuple(a for a in ACTIVATIONS if calls.min_ndim(a) > 0)


@pytest.mark.parametrize("act", SCALAR_ACTS, ids=ids(SCALAR_ACTS))
def test_zero_d_and_python_scalars(fa, act, dtype):
    for value in (-1.5, 0.0, 0.75, 3.5):
        one = np.array([value], dtype)
        expected_f = calls.forward(fa, act, one)[0]
        expected_b = calls.backward(fa, act, np.array([0.5], dtype), one)[0]
        for x in (np.array(value, dtype), dtype.type(value)):
            y = calls.forward(fa, act, x)
            assert isinstance(y, (np.ndarray, np.generic)) and np.ndim(y) == 0
            assert y.dtype == dtype
            assert_same(y, expected_f, f"{act.name}({x!r})")
            gi = calls.backward(fa, act, np.array(0.5, dtype), x)
            assert isinstance(gi, (np.ndarray, np.generic)) and np.ndim(gi) == 0
            assert_same(gi, expected_b, f"{act.name}_backward at {x!r}")
        if dtype == np.float64:
            # A Python scalar (float or int) computes in float64.
            for x in (value, int(value)):
                ref = calls.forward(fa, act, np.array([x], np.float64))[0]
                y = calls.forward(fa, act, x)
                assert np.ndim(y) == 0 and y.dtype == np.float64
                assert_same(y, ref, f"{act.name}({x!r})")
                gref = calls.backward(fa, act, np.array([0.5]), np.array([x], np.float64))[0]
                assert_same(calls.backward(fa, act, 0.5, x), gref, f"{act.name}_backward({x!r})")


@pytest.mark.parametrize("act", SCALAR_ACTS, ids=ids(SCALAR_ACTS))
def test_zero_d_out(fa, act, dtype):
    out = np.zeros((), dtype)
    y = calls.forward(fa, act, np.array(-0.5, dtype), out=out)
    assert y is out
    assert_same(out, calls.forward(fa, act, np.array([-0.5], dtype))[0], act.name)


@pytest.mark.parametrize("act", AXIS_ACTS, ids=ids(AXIS_ACTS))
def test_zero_d_along_an_axis_raises_axis_error(fa, act):
    with pytest.raises(AxisError):
        calls.forward(fa, act, np.array(1.0))
    with pytest.raises(AxisError):
        calls.backward(fa, act, np.array(1.0), np.array(1.0))


EMPTY_SHAPES = [(0,), (3, 0), (0, 4), (2, 0, 4), (0, 0)]


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_size_zero(fa, act, dtype, direction, shape):
    if not calls.valid_shape(act, shape):
        pytest.skip("not a valid shape for this activation")
    args = tuple(np.empty(s, dtype) for s in calls.input_shapes(act, direction, shape))
    y = calls.call(fa, act, direction, args)
    assert isinstance(y, np.ndarray)
    assert y.shape == calls.output_shape(act, direction, shape) and y.dtype == dtype
    out = np.empty(y.shape, dtype)
    assert calls.call(fa, act, direction, args, out=out) is out


@pytest.mark.parametrize("act", PRELU, ids=ids(PRELU))
def test_prelu_size_zero_grad_weight(fa, act, dtype):
    x = np.empty((0, 3, 2), dtype)
    w = np.array([0.1, 0.2, 0.3], dtype)
    gi, gw = calls.backward_raw(fa, act, x, x, weight=w)
    assert gi.shape == x.shape
    assert_same(gw, np.zeros(3, dtype), "grad_weight of an empty batch")


# ---------------------------------------------------------------------------
# out=

def out_variants(shape, dtype):
    yield "c", np.empty(shape, dtype)
    yield "fortran", np.empty(shape, dtype, order="F")
    every_other = (slice(None, None, 2),) * len(shape)
    yield "sliced", np.empty(tuple(2 * n for n in shape), dtype)[every_other]
    yield "negative", np.empty(shape, dtype)[(slice(None, None, -1),) * len(shape)]
    buf = np.empty(math.prod(shape) * dtype.itemsize + 1, np.uint8)
    yield "misaligned", buf[1:].view(dtype).reshape(shape)
    # Byte-swapped: still the result's dtype (float32 or float64), as NumPy's ufuncs take.
    yield "swapped", np.empty(shape, dtype.newbyteorder())


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_out_identity_and_strides(fa, act, dtype, direction):
    shape, args = prepared(act, direction, dtype)
    expected = calls.call(fa, act, direction, args)
    for name, out in out_variants(expected.shape, dtype):
        out[...] = 12345.0
        y = calls.call(fa, act, direction, args, out=out)
        assert y is out, name
        assert np.shares_memory(y, out)
        assert_same(np.asarray(out, dtype), expected, f"{act.name} {direction} out={name}")


@pytest.mark.parametrize("act", PRELU, ids=ids(PRELU))
def test_prelu_out_is_grad_input(fa, act, dtype):
    x = calls.values(rng_for("po"), (3, 4, 5), dtype)
    w = np.array([0.25, -0.5, 1.0, 2.0], dtype)
    g = calls.values(rng_for("pg"), (3, 4, 5), dtype)
    gi_ref, gw_ref = calls.backward_raw(fa, act, g, x, weight=w)
    out = np.empty_like(x)
    gi, gw = calls.backward_raw(fa, act, g, x, weight=w, out=out)
    assert gi is out
    assert_same(gi, gi_ref, "grad_input")
    assert_same(gw, gw_ref, "grad_weight")
    gi, gw = calls.backward_raw(fa, act, g, x, weight=w, out=g)
    assert gi is g
    assert_same(g, gi_ref, "grad_input in place")
    assert_same(gw, gw_ref, "grad_weight with out=grad_output")


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_in_place(fa, act, dtype, direction):
    """out=x (forward), out=grad_output or out=x (backward): every input of the result's shape."""
    shape, args = prepared(act, direction, dtype)
    expected = calls.call(fa, act, direction, args)
    aliased = [i for i, a in enumerate(args) if a.shape == expected.shape]
    if not aliased:
        pytest.skip("no input has the result's shape")
    for i in aliased:
        for make in (np.ascontiguousarray, np.asfortranarray, sliced):
            work = [make(a.copy()) for a in args]
            y = calls.call(fa, act, direction, work, out=work[i])
            assert y is work[i]
            assert_same(work[i], expected,
                        f"{act.name} {direction} out=input {i} ({make.__name__})")


@pytest.mark.parametrize("act", FROM_Y, ids=ids(FROM_Y))
def test_in_place_from_y(fa, act, dtype):
    rng = rng_for(act.name, "yin")
    y = getattr(fa, act.name)(calls.values(rng, SHAPE, dtype))
    g = calls.values(rng, SHAPE, dtype)
    bwd = getattr(fa, act.name + "_backward")
    expected = bwd(g, y=y)
    g2, y2 = g.copy(), y.copy()
    assert bwd(g2, y=y2, out=g2) is g2
    assert_same(g2, expected, "out=grad_output")
    g2, y2 = g.copy(), y.copy()
    assert bwd(g2, y=y2, out=y2) is y2
    assert_same(y2, expected, "out=y")


@pytest.mark.parametrize("shift", [0, 1, -1, 3, -7])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_partial_overlap(fa, act, dtype, direction, shift):
    """out a shifted view of an input: the result is as if the inputs were copied first.
    (Shift 0 with a different shape: maxout, whose out starts where x starts.)"""
    shape, args = prepared(act, direction, dtype)
    expected = calls.call(fa, act, direction, args)
    n_out = expected.size
    for i, a in enumerate(args):
        n = max(a.size, n_out)
        buf = np.zeros(n + abs(shift), dtype)
        a_at, out_at = (0, shift) if shift > 0 else (-shift, 0)
        work = list(args)
        work[i] = buf[a_at:a_at + a.size].reshape(a.shape)
        work[i][...] = a
        out = buf[out_at:out_at + n_out].reshape(expected.shape)
        assert out.size == 0 or np.shares_memory(out, work[i])
        y = calls.call(fa, act, direction, work, out=out)
        assert y is out
        assert_same(out, expected, f"{act.name} {direction} out overlaps input {i} shifted {shift}")


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_bad_out(fa, act, dtype, direction):
    shape, args = prepared(act, direction, dtype)
    before = [a.copy() for a in args]
    rshape = calls.output_shape(act, direction, shape)
    other = np.float64 if dtype == np.float32 else np.float32

    def check(exc, out, what):
        with pytest.raises(exc) as info:
            calls.call(fa, act, direction, args, out=out)
        if isinstance(out, np.ndarray):
            assert (out == 12345.0).all(), f"{what}: out written before raising"
        return str(info.value)

    ro = np.full(rshape, 12345.0, dtype)
    ro.flags.writeable = False
    check(ValueError, ro, "read-only out")
    wrong = rshape[:-1] + (rshape[-1] + 1,)
    check(ValueError, np.full(wrong, 12345.0, dtype), "wrong shape")
    check(ValueError, np.full(rshape[::-1] + (1,), 12345.0, dtype), "extra axis")
    check(ValueError, np.full(rshape, 12345.0, dtype)[..., None], "trailing axis")
    check(TypeError, np.full(rshape, 12345.0, other), "wrong dtype")
    check(TypeError, np.full(rshape, 12345.0, np.float16), "float16")
    check(TypeError, np.full(rshape, 12345, np.int64), "integer out")
    check(TypeError, np.full(rshape, 12345.0).tolist(), "list")
    check(TypeError, memoryview(np.full(rshape, 12345.0, dtype)), "memoryview")
    check(TypeError, 12345.0, "float")
    for a, b in zip(args, before):
        assert_same(a, b, "input modified by a raising call")


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_out_for_float16_and_integers(fa, act):
    """out must have the result's dtype: float16 for float16, float64 for integers."""
    shape, args = prepared(act, "forward", np.float16)
    out = np.empty(calls.result_shape(act, shape), np.float16)
    assert calls.forward(fa, act, *args, out=out) is out
    assert_same(out, calls.forward(fa, act, *args), "float16 out")
    with pytest.raises(TypeError):
        calls.forward(fa, act, *args, out=np.empty(out.shape, np.float32))
    xi = args[0].astype(np.int32)
    out = np.empty(calls.result_shape(act, shape), np.float64)
    assert calls.forward(fa, act, xi, out=out) is out
    with pytest.raises(TypeError):
        calls.forward(fa, act, xi, out=np.empty(out.shape, np.int32))


# ---------------------------------------------------------------------------
# Inputs are never modified

@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_inputs_not_modified(fa, act, dtype, direction):
    shape, args = prepared(act, direction, dtype)
    before = [a.copy() for a in args]
    calls.call(fa, act, direction, args)
    calls.call(fa, act, direction, args, out=np.empty(calls.output_shape(act, direction, shape),
                                                      dtype, order="F"))
    if calls.has_bias(act):
        calls.call(fa, act, direction, args, bias=np.full(shape[-1], 0.5, dtype))
    for a, b in zip(args, before):
        assert_same(a, b, f"{act.name} {direction} modified an input")


# ---------------------------------------------------------------------------
# Parameter checks (CONTRACT.md section 2), generated from the registry

def invalid_cases():
    """(act, overrides, exception, words the message must contain)."""
    for act in ACTIVATIONS:
        for p in act.params:
            for v in calls.invalid_values(p):
                yield act, {p.name: v}, ValueError, (p.name,) + ((p.expect,) if p.expect else ())
            if p.kind == "axis":
                for v in (2, -3, 7):
                    yield act, {p.name: v}, AxisError, ("axis",)
            if p.kind == "array":
                yield act, {p.name: np.full(SHAPE[1] + 1, 0.25)}, ValueError, (p.name,)
                yield act, {p.name: np.full(SHAPE[1] - 1, 0.25)}, ValueError, (p.name,)
                yield act, {p.name: np.full((SHAPE[1], 1), 0.25)}, ValueError, (p.name,)
        for values, message in calls.constraint_violations(act):
            yield act, values, ValueError, (message,)
        if act.kind == R.MAXOUT:
            yield act, {"pieces": 4}, ValueError, ("pieces",)
            yield act, {"pieces": 2, "axis": 0}, ValueError, ("pieces",)
        if calls.has_bias(act):
            yield act, {"bias": np.zeros(SHAPE[-1] + 1)}, ValueError, ("bias",)
            yield act, {"bias": np.zeros(SHAPE[-1] - 1)}, ValueError, ("bias",)
            yield act, {"bias": np.zeros((2, SHAPE[-1]))}, ValueError, ("bias",)


INVALID = list(invalid_cases())


def _case_id(case):
    act, values, exc, _ = case
    shown = ",".join(f"{k}={v if not isinstance(v, np.ndarray) else v.shape}"
                     for k, v in values.items())
    return f"{act.name}-{shown}"


def test_every_checked_param_has_an_invalid_case():
    """The generator above covers every checked parameter and constraint of the registry."""
    covered = {(act.name, k) for act, values, _, _ in INVALID for k in values}
    for act in ACTIVATIONS:
        for p in act.params:
            if p.check is not None or p.kind in ("choice", "axis", "array"):
                assert (act.name, p.name) in covered, (act.name, p.name)
    # The checks CONTRACT.md section 2 names one by one: the registry must keep them.
    for name, param in [("softplus", "beta"), ("rrelu", "lower"), ("celu", "alpha"),
                        ("gelu", "approximate"), ("maxout", "pieces"), ("prelu", "weight")]:
        assert (name, param) in covered


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", INVALID, ids=[_case_id(c) for c in INVALID])
def test_invalid_parameter_raises_and_writes_nothing(fa, case, direction, dtype):
    act, overrides, exc, words = case
    overrides = {k: v.astype(dtype) if isinstance(v, np.ndarray) else v
                 for k, v in overrides.items()}
    shape = SHAPE
    xs = calls.inputs(rng_for(act.name, "bad"), act, direction, shape, dtype)
    before = [a.copy() for a in xs]
    out = sentinel_out(act, direction, shape, dtype)
    with pytest.raises(exc) as info:
        calls.call(fa, act, direction, xs, out=out, **overrides)
    message = str(info.value)
    for w in words:
        assert w in message, f"{message!r} does not say {w!r}"
    assert (out == 12345.0).all(), "out written by a raising call"
    for a, b in zip(xs, before):
        assert_same(a, b, "input modified by a raising call")


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_valid_parameter_edges_accepted(fa, act, direction):
    """Values at the edge of each check are accepted (the checks are not too strict)."""
    for p in act.params:
        if p.kind != "float" or p.check is None:
            continue
        for v in (p.default, 1e-300, -1e-300, 1e300, -1e300, 0.0):
            if not p.check(v):
                continue
            trial = default_kwargs(act, **{p.name: v})
            if not all(pred(trial) for pred, _ in act.constraints):
                continue
            shape, args = prepared(act, direction, np.float64)
            with np.errstate(all="ignore"):
                y = calls.call(fa, act, direction, args, **{p.name: v})
            assert y.shape == calls.output_shape(act, direction, shape)


@pytest.mark.parametrize("act", PRELU, ids=ids(PRELU))
def test_prelu_weight_forms(fa, act, dtype):
    """Scalar or per-channel weight along axis; 1-D x takes a scalar or length-1 weight."""
    rng = rng_for("weights")
    x = calls.values(rng, (3, 4, 5), dtype)
    for axis in (0, 1, 2, -1, -3):
        n = x.shape[axis]
        w = np.linspace(-1, 2, n).astype(dtype)
        y = calls.forward(fa, act, x, weight=w, axis=axis)
        shape = [1, 1, 1]
        shape[axis] = n
        expected = np.where(x > 0, x, w.reshape(shape) * x).astype(dtype)
        np.testing.assert_array_equal(y, expected, f"prelu axis={axis}")
        assert y.dtype == dtype
    x1 = calls.values(rng, (7,), dtype)
    for w in (0.25, np.array([0.25], dtype), np.array(0.25, dtype)):
        np.testing.assert_array_equal(calls.forward(fa, act, x1, weight=w),
                                      np.where(x1 > 0, x1, dtype.type(0.25) * x1), "prelu 1-D")
    with pytest.raises(ValueError, match="weight"):
        calls.forward(fa, act, x1, weight=np.array([0.25, 0.5], dtype))


# ---------------------------------------------------------------------------
# Backward call forms

@pytest.mark.parametrize("act", FROM_Y, ids=ids(FROM_Y))
def test_backward_needs_exactly_one_of_x_and_y(fa, act, dtype):
    rng = rng_for(act.name, "xy")
    x = calls.values(rng, SHAPE, dtype)
    g = calls.values(rng, SHAPE, dtype)
    y = getattr(fa, act.name)(x)
    bwd = getattr(fa, act.name + "_backward")
    out = np.full(SHAPE, 12345.0, dtype)
    with pytest.raises((TypeError, ValueError)):
        bwd(g, x, y=y, out=out)
    with pytest.raises((TypeError, ValueError)):
        bwd(g, x=x, y=y, out=out)
    with pytest.raises((TypeError, ValueError)):
        bwd(g, out=out)
    assert (out == 12345.0).all()
    # Both forms agree within what y allows (tight: these are cheap functions).
    from_x, from_y = bwd(g, x), bwd(g, y=y)
    np.testing.assert_allclose(from_y, from_x, rtol=8 * np.finfo(dtype).eps,
                               atol=8 * np.finfo(dtype).eps * np.abs(g).max())


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_grad_output_of_wrong_shape_raises(fa, act, dtype):
    shape = calls.fit_shape(act, SHAPE)
    x = calls.values(rng_for(act.name, "gs"), shape, dtype)
    rshape = calls.result_shape(act, shape)
    out = np.full(shape, 12345.0, dtype)
    for gshape in (rshape[:-1] + (rshape[-1] + 1,), rshape[::-1], rshape + (1,), rshape[1:],
                   (1,) * len(rshape)):
        if gshape == rshape:
            continue
        with pytest.raises(ValueError):
            calls.backward(fa, act, np.ones(gshape, dtype), x, out=out)
        assert (out == 12345.0).all()


@pytest.mark.parametrize("act", FROM_Y, ids=ids(FROM_Y))
def test_grad_output_of_wrong_shape_raises_from_y(fa, act, dtype):
    y = np.full(SHAPE, 0.5, dtype)
    with pytest.raises(ValueError):
        getattr(fa, act.name + "_backward")(np.ones(SHAPE[::-1], dtype), y=y)


# ---------------------------------------------------------------------------
# Fused bias (section 1) under the rules of section 2

@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("act", BIAS_ACTS, ids=ids(BIAS_ACTS))
def test_bias_equals_adding_first(fa, act, dtype, direction):
    """f(x, bias=b) computes f(x + b) in the compute dtype, for any layout of x."""
    shape, args = prepared(act, direction, dtype)
    rng = rng_for(act.name, "bias")
    for b in (calls.values(rng, shape[-1:], dtype), dtype.type(0.375), 0.375):
        xb = (args[-1] + np.asarray(b, dtype)).astype(dtype)
        expected = calls.call(fa, act, direction, args[:-1] + (xb,))
        for make in (np.ascontiguousarray, np.asfortranarray, sliced, reversed_):
            y = calls.call(fa, act, direction, tuple(make(a) for a in args), bias=b)
            np.testing.assert_array_max_ulp(y, expected, maxulp=0 if act.exact else 1)
            if make is np.ascontiguousarray:
                assert_same(y, calls.call(fa, act, direction, tuple(make(a) for a in args),
                                          bias=b), "bias call is deterministic")
