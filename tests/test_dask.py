"""fastact on Dask arrays (``fastact._dask``): every function and gradient of
the registry, lazy and blockwise, computed by process workers of a
``dask.distributed`` LocalCluster, equals the NumPy computation."""

import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastact  # noqa: E402
from fastact import _dask  # noqa: E402
from fastact import _registry as R  # noqa: E402

from conftest import default_kwargs, ids  # noqa: E402

SHAPE, CHUNKS = (6, 8), (3, 4)   # 2 x 2 blocks; axis 1 has 8 = 2 x 4 channels/pieces


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _inputs(act, dtype, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = max(act.domain[0], -6.0), min(act.domain[1], 6.0)
    x = rng.uniform(lo, hi, SHAPE).astype(dtype)
    return x


def _kwargs(act, dtype, **extra):
    kw = default_kwargs(act, **extra)
    if act.kind == R.PRELU:  # a weight per channel, along axis 1
        kw["weight"] = np.linspace(0.1, 0.8, SHAPE[1]).astype(dtype)
    if act.kind in (R.SOFTMAX, R.MAXOUT):
        kw.setdefault("axis", -1)
    return kw


def _tol(dtype):
    return dict(rtol=8 * np.finfo(dtype).eps, atol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", R.ACTIVATIONS, ids=ids(R.ACTIVATIONS))
def test_forward_and_backward_equal_numpy(client, act, dtype):
    x = _inputs(act, dtype)
    kw = _kwargs(act, dtype)
    f, b = getattr(fastact, act.name), getattr(fastact, act.name + "_backward")
    xd = da.from_array(x, chunks=CHUNKS)
    if act.kind == R.PRELU:  # the weight as a Dask array too
        kw_d = dict(kw, weight=da.from_array(kw["weight"], chunks=4))
    else:
        kw_d = kw
    y = f(x, **kw)
    yd = f(xd, **kw_d)
    assert isinstance(yd, da.Array) and yd.dtype == y.dtype and yd.shape == y.shape
    np.testing.assert_allclose(yd.compute(), y, **_tol(dtype))

    g = np.random.default_rng(1).uniform(-1, 1, y.shape).astype(dtype)
    gd = da.from_array(g, chunks=tuple(min(c, s) for c, s in zip(CHUNKS, g.shape)))
    second, second_d = (y, yd) if act.kind == R.SOFTMAX else (x, xd)
    want = b(g, second, **kw)
    got = b(gd, second_d, **kw_d)
    if act.kind == R.PRELU:
        np.testing.assert_allclose(got[0].compute(), want[0], **_tol(dtype))
        assert got[1].shape == want[1].shape
        np.testing.assert_allclose(got[1].compute(), want[1], rtol=1e-5 if dtype == np.float32
                                   else 1e-12)
    else:
        np.testing.assert_allclose(got.compute(), want, **_tol(dtype))


ELEMENTWISE = tuple(a for a in R.ACTIVATIONS if a.kind == R.ELEMENTWISE)


@pytest.mark.parametrize("act", ELEMENTWISE, ids=ids(ELEMENTWISE))
def test_fused_bias_chunked_like_the_last_axis(client, act):
    if any(p.name == "training" for p in act.params):
        kw = default_kwargs(act, training=False)
    else:
        kw = default_kwargs(act)
    x = _inputs(act, np.float64)
    bias = np.linspace(-1, 1, SHAPE[1])
    f = getattr(fastact, act.name)
    got = f(da.from_array(x, chunks=CHUNKS), bias=da.from_array(bias, chunks=3), **kw)
    np.testing.assert_allclose(got.compute(), f(x, bias=bias, **kw), **_tol(np.float64))


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "maxout"])
@pytest.mark.parametrize("axis", [0, 1])
def test_axis_functions_rechunk_the_reduced_axis(client, name, axis):
    act = R.BY_NAME[name]
    x = _inputs(act, np.float64)
    kw = default_kwargs(act, axis=axis)
    xd = da.from_array(x, chunks=(2, 2))  # the reduced axis split in several chunks
    got = getattr(fastact, name)(xd, **kw)
    assert got.numblocks[1 - axis] > 1  # the other axis keeps its chunks
    np.testing.assert_allclose(got.compute(), getattr(fastact, name)(x, **kw), rtol=1e-14)


def test_results_are_lazy_until_computed(client):
    x = da.from_array(np.linspace(-3, 3, 48).reshape(SHAPE), chunks=CHUNKS)
    y = fastact.gelu(fastact.relu(x, bias=0.5))
    assert isinstance(y, da.Array)
    assert y.numblocks == (2, 2)
    np.testing.assert_allclose(y.compute(), fastact.gelu(fastact.relu(x.compute(), bias=0.5)))


def test_errors_are_raised_when_building_not_computing():
    x = da.ones(SHAPE, chunks=CHUNKS)
    with pytest.raises(ValueError, match="beta"):
        fastact.softplus(x, beta=-1.0)
    with pytest.raises(ValueError, match="out="):
        fastact.relu(x, out=np.empty(SHAPE))
    with pytest.raises(ValueError, match="training=True"):
        fastact.rrelu(x, training=True)
    with pytest.raises(ValueError, match="divisible"):
        fastact.maxout(x, 3)
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(x, np.ones(3))


def test_numpy_input_still_gives_numpy_with_dask_imported():
    y = fastact.relu(np.array([-1.0, 2.0]))
    assert type(y) is np.ndarray


def test_threads_per_task_do_not_oversubscribe(client):
    hosts = _dask._host_threads()
    assert sum(hosts.values()) == 2  # two workers of one thread
    per_task = client.run(lambda: _dask.task_threads(hosts))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for threads in per_task.values():
        assert threads == max(1, cpus // 2)
        assert threads * 2 <= max(cpus, 2)


def test_one_thread_per_task_outside_distributed():
    assert _dask.task_threads({}) == 1
