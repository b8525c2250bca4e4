"""Property tests (hypothesis): any shape, layout, dtype and ``out`` give the result
of a plain C-contiguous call (CONTRACT.md section 2).

For every registry entry and call form (forward, backward, backward from y),
hypothesis draws a shape (0-d to 4-d, sizes 0 to 5), parameters that depend on
the shape (axis, prelu's per-channel weight, a bias), an input dtype of section
2, a layout for each input (transposed, Fortran, sliced with positive or
negative steps, broadcast with zero strides, byte-swapped, misaligned,
read-only) and an ``out`` (absent, C, Fortran, a strided view, an input itself,
or a shifted view overlapping an input).  The result must be bit-identical to
the same backend on C-contiguous native copies taken before the call, and
close to the NumPy backend; ``out`` must be returned; inputs that are not
``out`` must be unchanged.
"""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import calls
from calls import INPUT_DTYPES, RESULT_DTYPE, assert_same
from conftest import ACTIVATIONS, functions_for
from fastact import _registry as R

#: Examples per test: modest for CI; raise it for a deeper run, e.g.
#: FASTACT_HYPOTHESIS_EXAMPLES=500 pytest tests/test_properties.py
SETTINGS = settings(max_examples=int(os.environ.get("FASTACT_HYPOTHESIS_EXAMPLES", 25)),
                    deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])

CASES = [(a, d) for a in ACTIVATIONS for d in calls.directions(a)]
#: The NumPy backend, the reference the native one is compared with.
REFERENCE = functions_for("numpy")


# ---------------------------------------------------------------------------
# Strategies

@st.composite
def layouts(draw, ndim, allow_broadcast=True, allow_swap=True, allow_readonly=True):
    """A recipe for building an array of a given shape in some memory layout."""
    perm = draw(st.permutations(range(ndim))) if ndim else []
    steps = draw(st.lists(st.sampled_from([1, 1, 2, -1, -2, 3]), min_size=ndim, max_size=ndim))
    bcast = (draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
             if allow_broadcast and draw(st.integers(0, 3)) == 0 else [False] * ndim)
    return {
        "perm": list(perm),
        "steps": steps,
        "bcast": bcast,
        "order": draw(st.sampled_from("CF")),
        "swap": allow_swap and draw(st.integers(0, 3)) == 0,
        "misalign": draw(st.integers(0, 3)) == 0,
        "readonly": allow_readonly and draw(st.integers(0, 4)) == 0,
    }


def build(recipe, shape, dtype, rng, transform=None):
    """An array of ``shape`` and ``dtype`` laid out as ``recipe`` says, holding random
    values (mapped element-wise by ``transform`` if given)."""
    dtype = np.dtype(dtype)
    ndim = len(shape)
    perm = recipe["perm"]
    inner = [shape[p] for p in perm]  # the shape before transposing back
    base_shape = [1 if b else n * abs(s) for n, s, b in
                  zip(inner, recipe["steps"], recipe["bcast"])]
    stored = dtype.newbyteorder() if recipe["swap"] and dtype.itemsize > 1 else dtype
    count = math.prod(base_shape)
    if recipe["misalign"]:
        buf = np.zeros(count * stored.itemsize + 1, np.uint8)
        base = buf[1:].view(stored).reshape(base_shape, order=recipe["order"])
    else:
        base = np.empty(base_shape, stored, order=recipe["order"])
    v = calls.values(rng, base_shape, dtype)
    base[...] = v if transform is None else transform(v).astype(dtype)
    view = base[tuple(slice(None) if b else slice(None, None, s)
                      for s, b in zip(recipe["steps"], recipe["bcast"])) + (Ellipsis,)]
    assert view.shape == tuple(1 if b else n for n, b in zip(inner, recipe["bcast"]))
    if any(recipe["bcast"]):
        view = np.broadcast_to(view, inner)
    view = view.transpose(np.argsort(perm)) if ndim else view
    assert view.shape == tuple(shape)
    if recipe["readonly"] and view.flags.writeable:
        view.flags.writeable = False
    return view


OUT_MODES = ("none", "c", "fortran", "view", "alias", "overlap")


@st.composite
def cases(draw, act, direction):
    ndim = draw(st.integers(calls.min_ndim(act), 4))
    shape = draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))
    overrides = {}
    ax = calls.axis_param(act)
    if ax is not None and ndim and (act.kind != R.PRELU or ndim >= 2):
        overrides["axis"] = draw(st.integers(-ndim, ndim - 1))
    if act.kind == R.MAXOUT:
        overrides["pieces"] = draw(st.integers(1, 3))
    overrides.update(draw(st.sampled_from(calls.variants(act))))
    shape = calls.fit_shape(act, shape, **overrides)
    dtype = np.dtype(draw(st.sampled_from(INPUT_DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if act.kind == R.PRELU and draw(st.booleans()):
        channels = shape[overrides["axis"]] if "axis" in overrides else 1
        overrides["weight"] = rng.uniform(-2, 2, channels).astype(
            dtype if dtype.kind == "f" else np.float64)
    ct = np.dtype(np.float64) if dtype.kind != "f" or dtype.itemsize == 8 else np.dtype(np.float32)
    if calls.has_bias(act) and direction != "backward_y" and draw(st.booleans()):
        bias_dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        overrides["bias"] = (bias_dtype.type(rng.uniform(-1, 1)) if not shape or draw(st.booleans())
                             else rng.uniform(-1, 1, shape[-1]).astype(bias_dtype))
    in_shapes = calls.input_shapes(act, direction, shape, **overrides)
    args = []
    for i, s in enumerate(in_shapes):
        # backward_y gets y of a real forward call (element-wise), as a user would.
        transform = ((lambda v: calls.forward(REFERENCE, act, v))
                     if direction == "backward_y" and i == 1 else None)
        args.append(build(draw(layouts(len(s))), s, dtype, rng, transform))
    rshape = calls.output_shape(act, direction, shape, **overrides)
    rt = RESULT_DTYPE[dtype]
    mode = draw(st.sampled_from(OUT_MODES))
    out = None
    if mode == "c":
        out = np.empty(rshape, rt)
    elif mode == "fortran":
        out = np.empty(rshape, rt, order="F")
    elif mode == "view":
        out = build(draw(layouts(len(rshape), False, False, False)), rshape, rt, rng)
    elif mode in ("alias", "overlap"):
        candidates = [i for i, a in enumerate(args) if a.dtype == rt]
        if mode == "alias":
            candidates = [i for i in candidates if args[i].shape == rshape]
        if not candidates:
            mode, out = "c", np.empty(rshape, rt)
        else:
            i = draw(st.sampled_from(candidates))
            if mode == "alias":
                args[i] = np.array(args[i], order=draw(st.sampled_from("CF")))
                out = args[i]
            else:
                n_in, n_out = args[i].size, math.prod(rshape)
                shift = draw(st.integers(-3, 3).filter(bool))
                buf = np.zeros(max(n_in, n_out) + abs(shift), rt)
                a0, o0 = (0, shift) if shift > 0 else (-shift, 0)
                moved = buf[a0:a0 + n_in].reshape(args[i].shape)
                moved[...] = args[i]
                args[i] = moved
                out = buf[o0:o0 + n_out].reshape(rshape)
                if draw(st.booleans()):
                    out = out[(slice(None, None, -1),) * len(rshape) + (Ellipsis,)]
    return {"args": tuple(args), "overrides": overrides, "out": out, "mode": mode,
            "dtype": dtype, "ct": ct, "rt": rt, "shape": tuple(shape)}


# ---------------------------------------------------------------------------
# The property

def contiguous(a):
    return np.array(a, dtype=a.dtype.newbyteorder("="), order="C")


def tolerance(rt, scale):
    """Cross-backend tolerance: both backends meet the accuracy bounds of section 4
    (a few ULP); float16 results round the float32 ones, so may differ by 1 ULP."""
    eps = float(np.finfo(rt).eps)
    k = 2 if rt == np.float16 else 64
    return k * eps, k * eps * max(1.0, scale)


@pytest.mark.parametrize("act, direction", CASES, ids=[f"{a.name}-{d}" for a, d in CASES])
@SETTINGS
@given(data=st.data())
def test_any_layout_equals_contiguous_call(fa, act, direction, data):
    case = data.draw(cases(act, direction))
    args, overrides, out = case["args"], case["overrides"], case["out"]
    copies = tuple(contiguous(a) for a in args)
    with np.errstate(all="ignore"):
        expected = calls.call(fa, act, direction, copies, **overrides)
        reference = calls.call(REFERENCE, act, direction, copies, **overrides)
    untouched = [(a, c) for a, c in zip(args, copies)
                 if out is None or not np.shares_memory(a, out)]

    result = calls.call(fa, act, direction, args, out=out, **overrides)

    if out is not None:
        assert result is out
        assert out.size == 0 or np.shares_memory(result, out)
    else:
        assert isinstance(result, (np.ndarray, np.generic))
    assert result.dtype == case["rt"]
    assert np.shape(result) == calls.output_shape(act, direction, case["shape"], **overrides)
    assert_same(result, expected, f"{act.name} {direction} mode={case['mode']}")
    for a, c in untouched:
        assert_same(contiguous(a), c, "an input that is not out was modified")
    if fa.relu is not REFERENCE.relu and np.size(result):
        scale = max(float(np.max(np.abs(c.astype(np.float64)))) if c.size else 0.0
                    for c in copies)
        rtol, atol = tolerance(case["rt"], scale)
        if act.exact:
            rtol = atol = 0
        np.testing.assert_allclose(np.asarray(result, np.float64),
                                   np.asarray(reference, np.float64), rtol=rtol, atol=atol,
                                   err_msg=f"{act.name} {direction}: native vs numpy backend")


@SETTINGS
@given(data=st.data())
def test_prelu_grad_weight_any_layout(fa, data):
    """prelu's grad_weight, too, is independent of layouts and out."""
    for act in (a for a in ACTIVATIONS if a.kind == R.PRELU):
        ndim = data.draw(st.integers(2, 4))
        shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
        axis = data.draw(st.integers(-ndim, ndim - 1))
        dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.float64])))
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        w = rng.uniform(-2, 2, shape[axis]).astype(dtype)
        g = build(data.draw(layouts(ndim)), shape, dtype, rng)
        x = build(data.draw(layouts(ndim)), shape, dtype, rng)
        gi0, gw0 = calls.backward_raw(fa, act, contiguous(g), contiguous(x), weight=w, axis=axis)
        out = np.empty(shape, dtype, order=data.draw(st.sampled_from("CF")))
        gi, gw = calls.backward_raw(fa, act, g, x, weight=w, axis=axis, out=out)
        assert gi is out
        assert_same(gi, gi0, "grad_input")
        assert_same(gw, gw0, "grad_weight")
        assert gw.shape == w.shape
