"""fastact on Dask arrays: lazy, blockwise, on every worker.

Every public function, given a ``dask.array.Array`` for any of its array
arguments, returns a lazy Dask array whose blocks are computed by fastact
itself on the workers (``_api`` routes such calls here; nothing is computed
until ``.compute()``).  One generic rule per kind of activation, read from
the registry:

- element-wise functions and their gradients: block by block, ``bias``
  chunked like the last axis;
- ``prelu``: ``weight`` chunked like the channel axis; ``prelu_backward``'s
  ``grad_weight`` is the sum of the blocks' (its reduction order then
  depends on the chunking, unlike fastact's fixed order on one array);
- ``softmax``, ``log_softmax`` and ``maxout`` need a whole slice along
  ``axis``: their inputs are rechunked so that axis is one chunk (other axes
  keep their chunks), and maxout's result has ``x.shape[axis] // pieces``
  along it.

Threads: a block runs on ``cpus // (Dask threads on this host)`` fastact
threads (at least 1), so workers x threads per worker x fastact threads
never exceeds the cores; the count of Dask threads per host is read from
the ``distributed`` client when the graph is built (a local Dask scheduler
runs one task per core, so one thread each).

Not supported: ``out=`` (Dask arrays are immutable; ``fastact.f(x, out=o)``
with a Dask ``x`` raises ValueError), and ``rrelu(training=True)``, whose
random slopes are keyed by the flat index in the whole array (a block would
draw other slopes than the NumPy call).
"""

from __future__ import annotations

import functools
import string

import numpy as np

from . import _api
from . import _registry as R

#: Arguments that are arrays of the forward's shape (``grad_output`` of
#: maxout_backward has the reduced shape), in the order they are passed.
_MAIN = ("grad_output", "x", "y")


_ARRAY_TYPE = None


def any_dask(*arrays) -> bool:
    """Whether any argument is a Dask array (only asked once dask.array is imported)."""
    global _ARRAY_TYPE
    if _ARRAY_TYPE is None:
        import dask.array as da
        _ARRAY_TYPE = da.Array
    return any(isinstance(a, _ARRAY_TYPE) for a in arrays)


def _host(address: str) -> str:
    """'tcp://10.0.0.1:4000' -> '10.0.0.1'."""
    return address.split("://")[-1].rsplit(":", 1)[0]


def _host_threads() -> dict:
    """{host: Dask threads of all workers there} from the current distributed
    client, or {} without one."""
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        return {}
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # distributed before 2025: every worker is listed
        workers = client.scheduler_info()["workers"]
    threads = {}
    for address, info in workers.items():
        host = info.get("host") or _host(address)
        threads[host] = threads.get(host, 0) + int(info.get("nthreads", 1))
    return threads


def task_threads(host_threads: dict) -> int:
    """fastact threads for one block running in this process: the CPUs here
    shared among the Dask threads on this host (1 outside a distributed worker)."""
    from ._threads import _cpu_limit
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return 1
    busy = host_threads.get(_host(worker.address)) or getattr(worker, "nthreads", 1)
    return max(1, _cpu_limit() // max(1, busy))


def _block(fname, names, static, host_threads, pick, reshape, *blocks):
    """One block: the public fastact function on NumPy blocks."""
    import fastact
    kwargs = dict(zip(names, blocks))
    kwargs.update(static)
    with fastact.num_threads(task_threads(host_threads)):
        result = getattr(fastact, fname)(**kwargs)
    if pick is not None:
        result = result[pick]
    result = np.asarray(result)
    return result.reshape(reshape(result)) if reshape is not None else result


def call(fname: str, arguments: dict):
    """``fastact.<fname>(**arguments)`` with Dask arrays among the arguments."""
    import dask.array as da

    backward = fname.endswith("_backward")
    act = R.BY_NAME[fname[:-len("_backward")] if backward else fname]
    args = dict(arguments)
    if args.pop("out", None) is not None:
        raise ValueError(f"{fname}: out= is not supported with Dask arrays (they are "
                         "immutable); use the returned array")
    if args.get("training"):
        raise ValueError(f"{fname}: training=True is not supported with Dask arrays: its "
                         "slopes are keyed by the flat index in the whole array; compute "
                         "on a NumPy array, or use training=False")
    # parameters are checked now, as for NumPy input, not when computing
    _api._check_params(act, fname, tuple(args.get(p.name, p.default) for p in act.params))
    main = {k: da.asarray(args.pop(k)) for k in _MAIN if args.get(k) is not None}
    for k in _MAIN:
        args.pop(k, None)
    ref = main["x"] if "x" in main else main["y"]
    ndim = ref.ndim
    ind = tuple(string.ascii_letters[:ndim]) if ndim <= 52 else tuple(range(ndim))
    axis = None
    if act.kind in (R.SOFTMAX, R.MAXOUT, R.PRELU) and "axis" in args and ndim:
        if act.kind != R.PRELU or ndim >= 2:
            axis = _api._axis(fname, args["axis"], ndim)
    rechunk = {axis: -1} if act.kind in (R.SOFTMAX, R.MAXOUT) and axis is not None else {}
    ct, rt = _api._dtypes(*[np.empty(0, a.dtype) for a in main.values()])

    pairs, names = [], []
    out_ind = ind
    adjust = {}
    for k, a in main.items():
        a = a.rechunk(rechunk) if rechunk else a
        a_ind = ind
        if k == "grad_output" and act.kind == R.MAXOUT:  # reduced along axis
            a_ind = ind[:axis] + ("_reduced",) + ind[axis + 1:]
        pairs += [a, a_ind]
        names.append(k)
    if act.kind == R.MAXOUT and not backward:
        pieces = args["pieces"]
        adjust[ind[axis]] = lambda c: c // pieces
        if ref.shape[axis] % pieces:
            raise ValueError(f"{fname}: x.shape[{axis}] = {ref.shape[axis]} is not divisible "
                             f"by pieces = {pieces}")

    bias = args.pop("bias", None)
    if bias is not None and np.ndim(bias) == 1 and ndim >= 1:
        b = da.asarray(bias)
        if b.shape[0] != ref.shape[-1]:
            raise ValueError(f"{fname}: bias must be a scalar or a 1-D array of length "
                             f"x.shape[-1] = {ref.shape[-1]}, got shape {b.shape}")
        pairs += [b, ind[-1:]]
        names.append("bias")
    elif bias is not None:
        args["bias"] = np.asarray(bias) if not any_dask(bias) else bias.compute()

    weight = args.pop("weight", None)
    gw_shape = None
    if act.kind == R.PRELU:
        gw_shape = np.shape(weight)
        if np.ndim(weight) == 1 and axis is not None:
            w = da.asarray(weight)
            if w.shape[0] != ref.shape[axis]:
                raise ValueError(f"{fname}: weight must be a scalar or a 1-D array of length "
                                 f"x.shape[{axis}] = {ref.shape[axis]}, got shape {w.shape}")
            pairs += [w, ind[axis:axis + 1]]
            names.append("weight")
        else:
            args["weight"] = weight.compute() if any_dask(weight) else weight

    host_threads = _host_threads()
    meta = np.empty((0,) * ndim, rt)
    task = functools.partial(_block, fname, tuple(names), args, host_threads)
    if act.kind == R.PRELU and backward:
        grad_input = da.blockwise(functools.partial(task, 0, None), out_ind, *pairs,
                                  dtype=rt, meta=meta, concatenate=True, token=fname)
        keep = {axis} if "weight" in names else set()
        shape_of = functools.partial(_keep_shape, ndim, tuple(keep))
        parts = da.blockwise(functools.partial(task, 1, shape_of), out_ind, *pairs,
                             dtype=rt, meta=meta, concatenate=True, token=fname + "-weight",
                             adjust_chunks={ind[k]: 1 for k in range(ndim) if k not in keep})
        other = tuple(k for k in range(ndim) if k not in keep)
        grad_weight = parts.sum(axis=other, dtype=rt).reshape(gw_shape).astype(rt)
        return grad_input, grad_weight
    return da.blockwise(functools.partial(task, None, None), out_ind, *pairs, dtype=rt,
                        meta=meta, adjust_chunks=adjust or None, concatenate=True,
                        token=fname)


def _keep_shape(ndim, keep, gw):
    """A block's grad_weight as an array of ``ndim`` dimensions, 1 except along ``keep``."""
    return tuple(gw.size if k in keep else 1 for k in range(ndim))
