"""The direct path (_native.FastOp, called first by the generated
element-wise functions): the same bits as the general path, used exactly for
the calls it is meant for, and nothing written when it declines a call."""

import numpy as np
import pytest

import fastact as fa
from fastact import _api, _threads
from fastact import _registry as R

pytestmark = pytest.mark.skipif(fa.get_backend() != "native",
                                reason="the small-call path belongs to the native backend")

ELEMENTWISE = [a for a in R.ACTIVATIONS if a.kind == R.ELEMENTWISE]
DTYPES = (np.float32, np.float64)


def _forms(act):
    """Keyword arguments of every form the fast path serves ({} or each choice)."""
    form = next((p for p in act.params if p.native == "op"), None)
    return [{}] if form is None else [{form.name: c} for c in form.choices]


def _inputs(dtype, shape=(3, 7)):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.flat[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, -1.2]
    g = rng.standard_normal(shape).astype(dtype)
    return g, x


def _strided(a):
    """A copy of `a` as a non-contiguous view: the general path."""
    big = np.empty(a.shape + (2,), a.dtype)
    view = big[..., 0]
    view[...] = a
    return view


def _fast_op(name):
    return getattr(fa, name).__globals__["_fast"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.name)
def test_same_bits_as_general_path(act, dtype):
    f, b = getattr(fa, act.name), getattr(fa, act.name + "_backward")
    g, x = _inputs(dtype)
    for kw in _forms(act):
        want = f(_strided(x), **kw)
        assert np.array_equal(f(x, **kw), want, equal_nan=True)
        out = np.full_like(x, 7)
        assert f(x, out=out, **kw) is out and np.array_equal(out, want, equal_nan=True)
        gwant = b(_strided(g), _strided(x), **kw)
        assert np.array_equal(b(g, x, **kw), gwant, equal_nan=True)
        inplace = x.copy()
        assert b(g, inplace, out=inplace, **kw) is inplace
        assert np.array_equal(inplace, gwant, equal_nan=True)


def _spy(monkeypatch, name):
    """Counts the calls that reach the general path of `name`'s driver."""
    driver = getattr(fa, name).__globals__["_driver"]
    calls = []
    for method in ("forward", "backward"):
        real = getattr(driver, method)
        monkeypatch.setattr(driver, method,
                            lambda *a, _real=real, **k: calls.append(1) or _real(*a, **k))
    return calls


def _threads_asked(monkeypatch):
    """The (size, smooth) of each call of _threads.threads_for from now on."""
    asked = []
    real = _threads.threads_for
    monkeypatch.setattr(_threads, "threads_for",
                        lambda n, smooth=False: asked.append((n, smooth)) or real(n, smooth))
    return asked


def _each_goes_general(calls, cases):
    """Each case (which may raise as documented) reaches the general path once."""
    for k, case in enumerate(cases):
        before = len(calls)
        try:
            case()
        except (TypeError, ValueError):
            pass
        assert len(calls) == before + 1, k


FROM_Y = [a for a in ELEMENTWISE if a.backward_from_y]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", FROM_Y, ids=lambda a: a.name)
def test_gradient_from_y_same_bits_as_general_path(act, dtype):
    f, b = getattr(fa, act.name), getattr(fa, act.name + "_backward")
    g, x = _inputs(dtype)
    y = f(x)
    want = b(_strided(g), y=_strided(y))
    assert np.array_equal(b(g, y=y), want, equal_nan=True)
    for keep in ("g", "y"):  # out is one of the inputs itself
        gg, yy = g.copy(), y.copy()
        dest = gg if keep == "g" else yy
        assert b(gg, y=yy, out=dest) is dest and np.array_equal(dest, want, equal_nan=True)


def test_gradient_from_y_fast_and_general_calls(monkeypatch):
    calls = _spy(monkeypatch, "sigmoid")
    g, x = _inputs(np.float32, (16,))
    y = fa.sigmoid(x)
    fa.sigmoid_backward(g, y=y), fa.sigmoid_backward(g, y=y, out=np.empty_like(y))
    fa.sigmoid_backward(g, x)
    assert calls == []
    _each_goes_general(calls, [
        lambda: fa.sigmoid_backward(g, x, y=y),                  # both: raises
        lambda: fa.sigmoid_backward(g),                          # neither: raises
        lambda: fa.sigmoid_backward(g, y=y, bias=np.zeros(16, np.float32)),  # raises
        lambda: fa.sigmoid_backward(g, y=y[::2]),
        lambda: fa.sigmoid_backward(g, y=y.astype(np.float64)),
    ])


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu", "elu"])
def test_small_default_calls_take_the_fast_path(monkeypatch, name):
    calls = _spy(monkeypatch, name)
    g, x = _inputs(np.float32, (16,))
    getattr(fa, name)(x)
    getattr(fa, name)(x, out=np.empty_like(x))
    getattr(fa, name + "_backward")(g, x)
    if name == "gelu":
        fa.gelu(x, approximate="tanh")
    assert calls == []


def test_other_calls_take_the_general_path(monkeypatch):
    calls = _spy(monkeypatch, "elu")
    g, x = _inputs(np.float32, (16,))
    cases = [
        lambda: fa.elu(x, alpha=2.0),                       # a parameter given
        lambda: fa.elu(x, alpha=1),                         # an int for a float: general path
        lambda: fa.elu(x, bias=np.zeros(16, np.float32)),
        lambda: fa.elu(x.astype(np.float16)),
        lambda: fa.elu(x.astype(">f4")),                    # byte-swapped
        lambda: fa.elu(x[::2]),                             # not contiguous
        lambda: fa.elu(np.array(1.0, np.float32)),          # 0-d
        lambda: fa.elu(x, out=np.empty(16, np.float64)),    # out of another dtype
        lambda: fa.elu(x.tolist()),
        lambda: fa.elu_backward(g, x.astype(np.float64)),   # mixed dtypes
        lambda: fa.elu_backward(g[:8], x[:8].reshape(2, 4)),  # shapes differ
    ]
    _each_goes_general(calls, cases)


@pytest.mark.parametrize("name", ["elu", "relu"])
def test_large_calls_take_the_fast_path_on_threads(monkeypatch, name):
    """From the thread threshold on, the fast path splits the call as the
    general path does (asking _threads.threads_for), with the same bits;
    below 2*CHUNK_ALIGN elements it does not ask."""
    calls = _spy(monkeypatch, name)
    asked = _threads_asked(monkeypatch)
    act = R.BY_NAME[name]
    n = 4 * (_threads.PARALLEL_MIN_ELEMENTS if act.exact else _threads.PARALLEL_MIN_ELEMENTS_SMOOTH)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    f, b = getattr(fa, name), getattr(fa, name + "_backward")
    with fa.num_threads(2):
        y, gx = f(x), b(g, x)
        f(x[:16]), b(g[:16], x[:16])
    assert calls == []
    assert asked == [(n, not act.exact)] * 2
    with fa.num_threads(1):
        assert np.array_equal(y, f(_strided(x)))
        assert np.array_equal(gx, b(_strided(g), _strided(x)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_declined_calls_write_nothing(dtype):
    g, x = _inputs(dtype, (16,))
    for out in (np.full(15, 3, dtype), np.full((16, 1), 3, dtype),
                np.full(16, 3, np.float16)):
        keep = out.copy()
        with pytest.raises((TypeError, ValueError)):
            fa.sigmoid(x, out=out)
        assert np.array_equal(out, keep)
    readonly = np.full(16, 3, dtype)
    readonly.flags.writeable = False
    with pytest.raises(ValueError):
        fa.sigmoid_backward(g, x, out=readonly)
    assert (readonly == 3).all()


def test_partial_overlap_goes_general_and_is_right():
    base = np.linspace(-3, 3, 33).astype(np.float32)
    want = fa.silu(base[:32].copy())
    buf = base.copy()
    got = fa.silu(buf[:32], out=buf[1:])       # out overlaps x shifted by one
    assert np.array_equal(got, want)
    g = np.ones(33, np.float32)
    gw = fa.silu_backward(g[:32].copy(), base[:32].copy())
    buf = base.copy()
    assert np.array_equal(fa.silu_backward(g[1:], buf[:32], out=buf[1:]), gw)


def test_fast_op_declines_without_writing():
    """FastOp itself: None for what it does not serve, and `out` untouched."""
    op = _fast_op("tanh")
    x = np.linspace(-1, 1, 8)
    out = np.full(8, 5.0)
    assert op.forward(x[::2], out[:4]) is None
    assert op.forward(x, out.reshape(2, 4)) is None
    assert op.forward(x, out[:7]) is None
    assert op.backward(x, x[:4], out) is None
    assert (out == 5.0).all()
    assert op.forward(x, out) is out and np.allclose(out, np.tanh(x), rtol=1e-15, atol=0)


def test_generated_source_names_the_defaults():
    """The fast test is derived from the registry: one clause per parameter."""
    for act in ELEMENTWISE:
        fwd, _ = _api._signatures(act, fast=True)
        for p in act.params:
            if p.native != "op":
                assert p.name in fwd.split("\n")[1] or p.name in fwd.split("\n")[2]


# ---------------------------------------------------------------------------
# softmax and log_softmax along the last axis (_native.FastSoftmax)

SOFTMAX = [a.name for a in R.ACTIVATIONS if a.kind == R.SOFTMAX]


def _rows(dtype, shape):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * 6).astype(dtype)
    x.flat[:4] = [np.inf, -np.inf, np.nan, 0.0]
    return rng.standard_normal(shape).astype(dtype), x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 3, 1000), (4, 1)])
@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_same_bits_as_general_path(name, shape, dtype):
    f, b = getattr(fa, name), getattr(fa, name + "_backward")
    g, x = _rows(dtype, shape)
    general = np.int64(-1)  # not an int: the general path, same kernels
    want = f(x, general)
    for axis in (-1, len(shape) - 1):
        assert np.array_equal(f(x, axis), want, equal_nan=True)
    out = np.full_like(x, 7)
    assert f(x, out=out) is out and np.array_equal(out, want, equal_nan=True)
    inplace = x.copy()
    assert f(inplace, out=inplace) is inplace and np.array_equal(inplace, want, equal_nan=True)
    y = f(x)
    gwant = b(g, y, general)
    assert np.array_equal(b(g, y), gwant, equal_nan=True)
    for keep in ("g", "y"):  # out is one of the inputs itself
        gg, yy = g.copy(), y.copy()
        dest = gg if keep == "g" else yy
        assert b(gg, yy, out=dest) is dest and np.array_equal(dest, gwant, equal_nan=True)


@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_fast_and_general_calls(monkeypatch, name):
    calls = _spy(monkeypatch, name)
    f, b = getattr(fa, name), getattr(fa, name + "_backward")
    g, x = _rows(np.float32, (3, 16))
    f(x), f(x, -1), f(x, 1), f(x, out=np.empty_like(x)), b(g, x), b(g, x, 1)
    assert calls == []
    cases = [
        lambda: f(x, 0),                                   # another axis
        lambda: f(x, np.int64(-1)),                        # not an int
        lambda: f(x, True),                                # a bool is no axis
        lambda: f(x.T),                                    # not contiguous
        lambda: f(x.astype(np.float16)),
        lambda: f(x.astype(">f4")),
        lambda: f(x, out=np.empty((3, 16), np.float64)),
        lambda: f(x.tolist()),
        lambda: f(np.empty((3, 0), np.float32)),           # no elements
        lambda: b(g, x.astype(np.float64)),
        lambda: b(g[:2], x),                               # shapes differ
    ]
    _each_goes_general(calls, cases)


@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_large_calls_split_as_the_general_path(monkeypatch, name):
    calls = _spy(monkeypatch, name)
    asked = _threads_asked(monkeypatch)
    rows = 4 * _threads.PARALLEL_MIN_ELEMENTS_SMOOTH // 64
    g, x = _rows(np.float64, (rows, 64))
    f, b = getattr(fa, name), getattr(fa, name + "_backward")
    with fa.num_threads(2):
        y = f(x)
        gx = b(g, y)
        f(x[:1])  # one row: one thread, threads_for not asked
    assert calls == [] and asked == [(x.size, True)] * 2
    with fa.num_threads(1):
        assert np.array_equal(y, f(x, np.int64(-1)), equal_nan=True)
        assert np.array_equal(gx, b(g, y, np.int64(-1)), equal_nan=True)


def test_softmax_partial_overlap_goes_general_and_is_right():
    base = np.linspace(-3, 3, 33)
    want = fa.softmax(base[:32].copy())
    buf = base.copy()
    assert np.array_equal(fa.softmax(buf[:32], out=buf[1:]), want)
    g = np.linspace(1, 2, 33)
    gw = fa.softmax_backward(g[:32].copy(), want)
    buf = g.copy()
    assert np.array_equal(fa.softmax_backward(buf[:32], want, out=buf[1:]), gw)


# ---------------------------------------------------------------------------
# prelu and maxout (_native.FastPrelu, _native.FastMaxout)

def _prelu_cases(dtype):
    """(x, weight, axis) of each layout: a float weight, channels first,
    channels last, a middle axis, 1-D x with a length-1 weight."""
    rng = np.random.default_rng(5)
    g, x = _inputs(dtype, (4, 6, 5))
    w6 = rng.standard_normal(6).astype(dtype)
    w5 = rng.standard_normal(5).astype(dtype)
    w4 = rng.standard_normal(4).astype(dtype)
    return g, [(x, 0.25, 1), (x, -1e40, 1), (x, w6, 1), (x, w5, -1), (x, w4, 0),
               (x.reshape(-1), 0.1, 1), (x.reshape(-1), w6[:1], "ignored for 1-D x")]


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_same_bits_as_general_path(dtype):
    g, cases = _prelu_cases(dtype)
    for x, w, axis in cases:
        gx = g.reshape(x.shape)
        general = dict(weight=np.asarray(w), axis=np.int64(axis if type(axis) is int else 0))
        want = fa.prelu(_strided(x), **general)
        assert np.array_equal(fa.prelu(x, w, axis=axis), want, equal_nan=True)
        inplace = x.copy()
        assert fa.prelu(inplace, w, axis=axis, out=inplace) is inplace
        assert np.array_equal(inplace, want, equal_nan=True)
        gwant, gwwant = fa.prelu_backward(_strided(gx), _strided(x), **general)
        for out in (None, "g", "x"):
            gg, xx = gx.copy(), x.copy()
            dest = {None: None, "g": gg, "x": xx}[out]
            got, gw = fa.prelu_backward(gg, xx, w, axis=axis, out=dest)
            assert dest is None or got is dest
            assert np.array_equal(got, gwant, equal_nan=True)
            assert gw.shape == np.shape(w) and gw.dtype == dtype
            assert np.array_equal(gw, gwwant, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, pieces, axis",
                         [((4, 6), 2, -1), ((4, 6), 3, 1), ((6, 5), 3, 0),
                          ((2, 6, 3), 2, 1), ((7,), 7, 0), ((4, 6), 1, -1)])
def test_maxout_same_bits_as_general_path(shape, pieces, axis, dtype):
    _, x = _inputs(dtype, shape)
    want = fa.maxout(x, np.int64(pieces), np.int64(axis))
    assert np.array_equal(fa.maxout(x, pieces, axis), want, equal_nan=True)
    out = np.full_like(want, 7)
    assert fa.maxout(x, pieces, axis, out=out) is out
    assert np.array_equal(out, want, equal_nan=True)
    g = np.random.default_rng(2).standard_normal(want.shape).astype(dtype)
    gwant = fa.maxout_backward(g, x, np.int64(pieces), np.int64(axis))
    assert np.array_equal(fa.maxout_backward(g, x, pieces, axis), gwant, equal_nan=True)
    inplace = x.copy()
    assert fa.maxout_backward(g, inplace, pieces, axis, out=inplace) is inplace
    assert np.array_equal(inplace, gwant, equal_nan=True)


def test_prelu_and_maxout_fast_and_general_calls(monkeypatch):
    prelu_calls, maxout_calls = _spy(monkeypatch, "prelu"), _spy(monkeypatch, "maxout")
    g, x = _inputs(np.float32, (3, 8))
    w = np.full(8, 0.25, np.float32)
    fa.prelu(x, 0.25), fa.prelu(x, w, axis=-1), fa.prelu(x.reshape(-1), 0.5, axis="any")
    fa.prelu(x, 0.25, out=np.empty_like(x)), fa.prelu_backward(g, x, w, axis=1)
    g4 = g[:, :4].copy()
    fa.maxout(x, 2), fa.maxout(x, 4, 1), fa.maxout(x, 3, 0), fa.maxout_backward(g4, x, 2)
    assert prelu_calls == [] and maxout_calls == []
    out = np.empty_like(x)
    buf = np.zeros(24, np.float32)
    held = buf[:12].reshape(3, 4)
    held[...] = g4
    _each_goes_general(prelu_calls, [
        lambda: fa.prelu(x, 0.25, bias=np.zeros(8, np.float32)),
        lambda: fa.prelu(x, 1),                                  # an int weight
        lambda: fa.prelu(x, np.float32(0.25)),                   # a NumPy scalar
        lambda: fa.prelu(x, np.array(0.25, np.float32)),         # a 0-d array
        lambda: fa.prelu(x, w.astype(np.float64), axis=1),       # another dtype
        lambda: fa.prelu(x, w[:3], axis=1),                      # a wrong length: raises
        lambda: fa.prelu(x, np.full(16, 0.25, np.float32)[::2], axis=1),  # not contiguous
        lambda: fa.prelu(x, 0.25, axis=np.int64(1)),             # not an int
        lambda: fa.prelu(x, 0.25, axis=True),
        lambda: fa.prelu(x, 0.25, axis=2),                       # out of range: raises
        lambda: fa.prelu(x.T, 0.25),
        lambda: fa.prelu(x, 0.25, out=np.empty((3, 8))),         # out of another dtype
        lambda: fa.prelu(x, out.reshape(-1)[:8], axis=1, out=out),  # weight inside out
        lambda: fa.prelu_backward(g, x.astype(np.float64), 0.25),
    ])
    _each_goes_general(maxout_calls, [
        lambda: fa.maxout(x, np.int64(2)),                       # not an int
        lambda: fa.maxout(x, True),
        lambda: fa.maxout(x, 3),                                 # 8 % 3: raises
        lambda: fa.maxout(x, 0),                                 # raises
        lambda: fa.maxout(x, 2, axis=-3),                        # raises
        lambda: fa.maxout(x.T, 2),
        lambda: fa.maxout(x, 2, out=np.empty((3, 4))),           # out of another dtype
        lambda: fa.maxout(x, 2, out=np.empty((3, 8), np.float32)),  # wrong shape: raises
        lambda: fa.maxout(x, 2, out=x.reshape(-1)[:12].reshape(3, 4)),  # out inside x
        lambda: fa.maxout_backward(held, x, 2, out=buf.reshape(3, 8)),  # out holds g
        lambda: fa.maxout_backward(g[:, :4], x, 2),              # g not contiguous
        lambda: fa.maxout_backward(g4.astype(np.float64), x, 2),
        lambda: fa.maxout_backward(g, x, 2),                     # g of x's shape: raises
    ])


def test_prelu_and_maxout_overlaps_are_right():
    """Declined overlaps: the general path's result, as if inputs were copied first."""
    x = np.linspace(-3, 3, 24).reshape(3, 8)
    out = np.full_like(x, 0.5)
    w = out[0]                       # the weight is the first row of the result
    want = np.where(x > 0, x, 0.5 * x)
    assert np.array_equal(fa.prelu(x, w, axis=1, out=out), want)
    buf = x.copy()
    packed = buf.reshape(-1)[:12].reshape(3, 4)   # maxout's result over x's first half
    assert np.array_equal(fa.maxout(buf, 2, out=packed), x.reshape(3, 4, 2).max(-1))


@pytest.mark.parametrize("name", ["prelu", "maxout"])
def test_prelu_and_maxout_large_calls_split_as_the_general_path(monkeypatch, name):
    calls = _spy(monkeypatch, name)
    asked = _threads_asked(monkeypatch)
    rows = 4 * _threads.PARALLEL_MIN_ELEMENTS // 64
    g, x = _rows(np.float64, (rows, 64))
    w = np.linspace(-1, 1, 64)
    if name == "prelu":
        f, general = (lambda a: fa.prelu(a, w, axis=-1)), (lambda a: fa.prelu(a, w, axis=np.int64(1)))
        b = lambda a: fa.prelu_backward(g, a, w, axis=-1)
        bgeneral = lambda a: fa.prelu_backward(g, a, w, axis=np.int64(1))
    else:
        f, general = (lambda a: fa.maxout(a, 2)), (lambda a: fa.maxout(a, np.int64(2)))
        g = g[:, :32].copy()
        b = lambda a: fa.maxout_backward(g, a, 2)
        bgeneral = lambda a: fa.maxout_backward(g, a, np.int64(2))
    with fa.num_threads(2):
        y, gx = f(x), b(x)
        f(x[:1])  # below the threshold: threads_for not asked
    assert calls == [] and asked == [(x.size, False)] * 2
    with fa.num_threads(1):
        assert np.array_equal(y, general(x), equal_nan=True)
        for got, want in zip(np.atleast_1d(gx) if name == "maxout" else gx, bgeneral(x)):
            assert np.array_equal(got, want, equal_nan=True)
