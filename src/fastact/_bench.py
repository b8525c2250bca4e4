"""The speed table: fastact against the ways a user would compute the same thing.

One engine behind ``python -m fastact``, ``benchmarks/compare.py``,
``benchmarks/test_bench.py`` and ``benchmarks/threshold.py``.  The list of activations, their parameters,
input domains and the peer formulas all come from the registry
(``_registry.ACTIVATIONS``); nothing here names an activation.

What one row times, for one activation x dtype x size x direction, in
nanoseconds per element of ``x``:

``fastact``
    The public function with a preallocated ``out=`` -- the realistic fast
    call, argument checking included -- on the active backend (the row's
    ``backend``), with ``fastact.num_threads(threads)``.  The gradients of
    relu, sigmoid and tanh are timed from the forward result (``y=``), as
    PyTorch's autograd computes them; the row's notes say so.
``numpy``
    The registry's NumPy expression (``Activation.peers[0]``), compiled once
    into a lambda.  It allocates its result, as a user's formula does.
    ``erf`` in it is ``scipy.special.erf`` when SciPy imports, else
    ``np.vectorize(math.erf)`` (the row's notes say so).  Forward only: the
    registry has no backward formulas.
``scipy``
    The registry's SciPy expression (``peers[2]``), where it has one.
``torch``
    The registry's PyTorch expression (``peers[1]``) on ``torch.from_numpy``
    views of the same buffers, with ``torch.set_num_threads(threads)``.
    Backward: ``torch.autograd.grad`` through the graph of one forward call, so
    only the backward nodes are timed.
``numexpr``
    The registry's NumPy expression translated for ``numexpr.evaluate`` (see
    :func:`numexpr_expression`: ``np.`` dropped, ``np.clip`` spelled with
    ``minimum``/``maximum``, constants and parameters passed as scalars of
    ``x``'s dtype so float32 stays float32), writing into ``out=``, on
    ``threads`` numexpr threads.  Activations whose formula uses something
    numexpr lacks (``erf``, ``logaddexp``, reductions) have no numexpr entry.
``fallback``
    fastact's own NumPy backend, called like ``fastact``.

Reference rows (op ``copy`` and ``add``, fastact column empty) are the memory
limit that issue 3's targets are measured against, on buffers of the same
size and dtype: ``copy`` (forward reference) is a streaming copy x -> y,
``add`` (backward reference, timed when gradients are) is a + b -> c.  Their
``numpy`` column is the faster of one ``np.copyto``/``np.add(out=)`` call and
the same call on ``threads`` contiguous slices run by ``threads`` Python
threads at once (NumPy releases the GIL while it copies or adds); their
``torch`` column is ``Tensor.copy_``/``torch.add(out=)`` on ``threads`` torch
threads.  :func:`reference` is the fastest of those columns, and
:func:`targets` compares fastact with it (and with the peers).

Inputs are seeded uniform values in the activation's registry ``domain``;
softmax, log_softmax and maxout (pieces = the registry's ``sample``) get
rows of ROW_LENGTH elements along their last axis.

Each result is checked once against fastact's before it is timed; a peer that
computes something else (another dtype, other values) is reported in the row's
``notes``.  Timing: every sample repeats the call until it lasts at least
``min_time`` seconds (garbage collector off); the result is the median of
``samples`` samples, from ``time.perf_counter``.  A parallel region waits
for a free CPU, so a row measured while other processes keep CPUs busy is
measured again after a pause, and marked in its notes if it stays busy.

This module imports the standard library and NumPy only; SciPy and PyTorch
are imported when a run asks for them, and skipped when not installed.
"""

from __future__ import annotations

import csv
import ast
import concurrent.futures
import functools
import gc
import importlib
import inspect
import itertools
import json
import math
import os
import platform
import re
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from . import _registry as R

DTYPES = ("float32", "float64")
#: Sizes a run accepts: multiples of the row length of the axis ops, and 16.
ALLOWED_SIZES = (16, 10**3, 10**4, 10**5, 10**6, 10**7)
DEFAULT_SIZES = (10**3, 10**5, 10**6)
DIRECTIONS = ("forward", "backward")
#: Every peer a run can time, in table order; ``fastact`` is always timed.
PEERS = ("numpy", "scipy", "numexpr", "torch", "fallback")
DEFAULT_PEERS = ("numpy", "scipy", "numexpr", "torch")
#: Reference rows: op name -> (direction, what it times).
REFERENCES = {"copy": ("forward", "y = x (np.copyto / Tensor.copy_)"),
              "add": ("backward", "c = a + b (np.add / torch.add, out=)")}
#: Axis ops (softmax, log_softmax, maxout) run on rows of this many elements.
ROW_LENGTH = 1000
MIN_TIME = 0.02
SAMPLES = 5
SEED = 0
#: A row measured while other processes kept more than this many CPUs busy is
#: measured again (up to RETRIES times, RETRY_PAUSE seconds apart), then marked.
BUSY_CPUS = 0.25
RETRIES = 2
RETRY_PAUSE = 1.0

#: Kinds of activation that act along an axis and get a 2-D input.
_AXIS_KINDS = (R.SOFTMAX, R.MAXOUT)


# ---------------------------------------------------------------------------
# Timing

def _time(call: Callable[[], object], number: int) -> float:
    loop = itertools.repeat(None, number)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in loop:
            call()
        return time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def measure(call: Callable[[], object], *, min_time: float = MIN_TIME,
            samples: int = SAMPLES) -> float:
    """Median seconds per call of ``call()``.

    One warm-up call (page faults, lazy initialisation, thread pools), then
    ``samples`` samples, each repeating the call often enough to last at least
    ``min_time`` seconds.
    """
    call()
    number = 1
    while True:
        elapsed = _time(call, number)
        if elapsed >= min_time / 10:
            break
        number *= 10
    number = max(1, math.ceil(number * min_time / elapsed))
    return statistics.median(_time(call, number) / number for _ in range(samples))


# ---------------------------------------------------------------------------
# Inputs

def op_names() -> tuple:
    """Names of every activation, in registry order."""
    return tuple(a.name for a in R.ACTIVATIONS)


def param_values(act: R.Activation) -> dict:
    """{name: value} of ``act``'s parameters: the defaults, and ``sample`` for required ones."""
    return {p.name: p.sample if p.default is R.REQUIRED else p.default for p in act.params}


def input_shape(act: R.Activation, n: int) -> tuple:
    """Shape of the benchmark input of ``n`` elements: rows of ROW_LENGTH for axis ops."""
    if act.kind in _AXIS_KINDS:
        row = min(ROW_LENGTH, n)
        return (n // row, row)
    return (n,)


def make_input(act: R.Activation, dtype, n: int, seed: int = SEED) -> np.ndarray:
    """Seeded uniform random values in the activation's registry ``domain``."""
    lo, hi = act.domain
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, input_shape(act, n)).astype(dtype)


def make_grad(shape, dtype, seed: int = SEED) -> np.ndarray:
    """A seeded upstream gradient in [-1, 1)."""
    return np.random.default_rng(seed + 1).uniform(-1.0, 1.0, shape).astype(dtype)


# ---------------------------------------------------------------------------
# The calls: each builder returns (zero-argument callable, note or "")

@functools.lru_cache(maxsize=None)
def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _erf():
    """(erf function, note): SciPy's, else math.erf vectorised (slow; said in the notes)."""
    special = _optional("scipy.special")
    if special is not None:
        return special.erf, ""
    return np.vectorize(math.erf, otypes=[np.float64]), "erf = np.vectorize(math.erf)"


def _peer_lambda(act: R.Activation, which: int):
    """``lambda x: <peers[which]>`` with the names a registry peer expression may
    use: the registry's constants, the parameters, np and erf (NumPy), torch
    and F (PyTorch) or special (SciPy)."""
    expr = act.peers[which] if which < len(act.peers) else ""
    if not expr:
        return None
    ns = {k: v for k, v in vars(R).items() if k.isupper() and isinstance(v, float)}
    ns.update(param_values(act))
    if which == 0:
        ns["np"] = np
        ns["erf"] = _erf()[0]
    elif which == 1:
        ns["torch"] = _optional("torch")
        ns["F"] = ns["torch"].nn.functional
    else:
        ns["special"] = _optional("scipy.special")
    return eval("lambda x: " + expr, ns)  # noqa: S307 - registry text


class _NumexprForm(ast.NodeTransformer):
    """The registry's NumPy expression as numexpr text (see numexpr_expression)."""

    def __init__(self):
        self.constants = []

    def visit_Attribute(self, node):  # np.exp -> exp
        if isinstance(node.value, ast.Name) and node.value.id == "np":
            return ast.Name(node.attr, ast.Load())
        raise ValueError("attribute access")

    def visit_Call(self, node):
        node = self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "clip" and len(node.args) == 3:
            a, lo, hi = node.args  # np.clip(a, lo, hi) = minimum(maximum(a, lo), hi)
            inner = ast.Call(ast.Name("maximum", ast.Load()), [a, lo], [])
            return ast.Call(ast.Name("minimum", ast.Load()), [inner, hi], [])
        return node

    def visit_Constant(self, node):  # literals become scalars of x's dtype
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError("non-numeric constant")
        self.constants.append(float(node.value))
        return ast.Name(f"_c{len(self.constants) - 1}", ast.Load())


def numexpr_expression(act: R.Activation):
    """(numexpr text, {name: float} of its scalars) derived from the registry's
    NumPy expression, or None where it has none.  Whether numexpr supports
    every function the text calls is found out by compiling it (_Case.numexpr)."""
    expr = act.peers[0] if act.peers else ""
    if not expr:
        return None
    form = _NumexprForm()
    try:
        tree = form.visit(ast.parse(expr, mode="eval"))
    except ValueError:
        return None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    scalars = {f"_c{i}": v for i, v in enumerate(form.constants)}
    registry_constants = {k: v for k, v in vars(R).items() if k.isupper() and isinstance(v, float)}
    for name in names:
        value = param_values(act).get(name, registry_constants.get(name))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            scalars[name] = float(value)
    return ast.unparse(tree), scalars


class _Case:
    """The buffers of one activation x dtype x size, shared by every library."""

    def __init__(self, act, dtype, n, seed, functions):
        self.act = act
        self.dtype = np.dtype(dtype)
        self.values = param_values(act)
        self.x = make_input(act, self.dtype, n, seed)
        self.functions = functions
        forward = functions[act.name]
        self.y = forward(self.x, **self.values)
        self.g = make_grad(self.y.shape, self.dtype, seed)

    def fastact(self, direction, functions=None):
        """The public function of ``functions`` (default: the active backend) with out=."""
        fns = self.functions if functions is None else functions
        values = self.values
        if direction == "forward":
            f, x, out = fns[self.act.name], self.x, np.empty_like(self.y)
            return (lambda: f(x, out=out, **values)), ""
        f, g, out = fns[self.act.name + "_backward"], self.g, np.empty_like(self.x)
        if self.act.backward_from_y:
            # relu, sigmoid, tanh: from the forward result, as PyTorch's
            # autograd node computes them (y*(1 - y), 1 - y^2), so that the
            # row compares the same work; their form from x (accurate where
            # 1 - y^2 cancels) is fastact's default and costs more
            y = self.y
            return (lambda: f(g, y=y, out=out, **values)), "fastact from y= (as autograd)"
        # softmax/log_softmax gradients take the forward result, the others x
        second = self.y if list(inspect.signature(f).parameters)[1] == "y" else self.x
        return (lambda: f(g, second, out=out, **values)), ""

    def numpy(self, direction):
        f = _peer_lambda(self.act, 0)
        if f is None or direction != "forward":
            return None, ""
        x = self.x
        note = _erf()[1] if re.search(r"\berf\(", self.act.peers[0]) else ""
        return (lambda: f(x)), note

    def scipy(self, direction):
        if _optional("scipy.special") is None or direction != "forward":
            return None, ""
        f = _peer_lambda(self.act, 2)
        if f is None:
            return None, ""
        x = self.x
        return (lambda: f(x)), ""

    def torch(self, direction):
        torch = _optional("torch")
        if torch is None or not self.act.peers[1]:
            return None, ""
        f = _peer_lambda(self.act, 1)
        if direction == "forward":
            xt = torch.from_numpy(self.x)
            return (lambda: f(xt)), ""
        xt = torch.from_numpy(self.x.copy()).requires_grad_(True)
        yt = f(xt)
        gt = torch.from_numpy(self.g)
        grad = torch.autograd.grad
        return (lambda: grad(yt, xt, gt, retain_graph=True)), ""

    def numexpr(self, direction):
        ne = _optional("numexpr")
        form = numexpr_expression(self.act)
        if ne is None or form is None or direction != "forward":
            return None, ""
        text, scalars = form
        local = {name: self.dtype.type(v) for name, v in scalars.items()}
        local["x"] = self.x
        out = np.empty_like(self.y)
        try:
            natural = ne.evaluate(text, local_dict=local).dtype
        except Exception:  # a function numexpr lacks (erf, logaddexp, ...)
            return None, ""
        # numexpr's maximum/minimum exist for float64 only: float32 is then
        # computed in float64 and cast into out=, which the notes say.
        note = "" if natural == out.dtype else f"numexpr computes in {natural}"
        evaluate = ne.evaluate
        return (lambda: evaluate(text, local_dict=local, out=out, casting="same_kind")), note

    def fallback(self, direction):
        return self.fastact(direction, _fallback_functions())


def call(library: str, op: str, dtype, n: int, direction: str = "forward",
         seed: int = SEED):
    """The zero-argument call that a row times for ``library`` ("fastact" or a
    peer), or None where that library has no such call.  For pytest-benchmark."""
    import fastact
    _check_choices("library", [library], ("fastact",) + PEERS)
    _check_choices("direction", [direction], DIRECTIONS)
    functions = {name: getattr(fastact, name) for name in fastact._FUNCTIONS}
    case = _Case(R.BY_NAME[op], dtype, _sizes([n])[0], seed, functions)
    return getattr(case, library)(direction)[0]


@functools.lru_cache(maxsize=None)
def _fallback_functions():
    import fastact
    from ._api import build_functions
    return build_functions(fastact._BACKENDS["numpy"])


def _as_array(result):
    """A NumPy copy of what a call returned (first element of a tuple)."""
    if isinstance(result, tuple):
        result = result[0]
    if hasattr(result, "detach"):
        result = result.detach().numpy()
    return np.array(result, copy=True)


def _disagreement(name, got, ref):
    """A note when ``got`` is not what fastact computes (``ref``), else ""."""
    if got.shape != ref.shape:
        return f"{name} has shape {got.shape}"
    notes = []
    if got.dtype != ref.dtype:
        notes.append(f"{name} in {got.dtype}")
    tol = 1e3 * float(np.finfo(ref.dtype).eps)
    a, b = got.astype(np.float64), ref.astype(np.float64)
    finite = np.isfinite(b)
    scale = float(np.max(np.abs(b[finite]))) if finite.any() else 1.0
    with np.errstate(all="ignore"):
        if not np.allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True):
            err = np.abs(a - b) / np.maximum(np.abs(b), tol * scale)
            notes.append(f"{name} differs from fastact (max rel err {np.nanmax(err):.1e})")
    return "; ".join(notes)


# ---------------------------------------------------------------------------
# A run

def _sizes(sizes):
    out = []
    for s in sizes:
        n = int(float(s))
        if n != float(s) or n not in ALLOWED_SIZES:
            raise ValueError(f"size {s!r} not allowed; expected one of "
                             f"{', '.join(format_size(a) for a in ALLOWED_SIZES)}")
        out.append(n)
    return out


def _check_choices(what, given, allowed):
    unknown = [g for g in given if g not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}; expected some of "
                         f"{', '.join(allowed)}")
    return list(given)


def available_peers(peers: Sequence[str] = PEERS) -> tuple:
    """Those of ``peers`` whose library imports here."""
    need = {"scipy": "scipy.special", "torch": "torch", "numexpr": "numexpr"}
    return tuple(p for p in peers if p not in need or _optional(need[p]) is not None)


def _blank_row(op, direction, dtype, n, shape, threads, backend, peers):
    row = {"op": op, "direction": direction, "dtype": str(dtype), "n": n,
           "shape": "x".join(map(str, shape)), "threads": threads, "backend": backend,
           "fastact": None}
    row.update({p: None for p in peers})
    row.update({f"{p}/fastact": None for p in peers})
    row["others_cpus"] = None
    row["notes"] = ""
    return row


def run(ops: Optional[Sequence[str]] = None, dtypes: Sequence[str] = DTYPES,
        sizes: Sequence = DEFAULT_SIZES, backward: bool = False,
        threads: Optional[int] = None, peers: Sequence[str] = DEFAULT_PEERS,
        progress: Optional[Callable[[int, int, str], None]] = None, *,
        min_time: float = MIN_TIME, samples: int = SAMPLES, seed: int = SEED,
        retries: int = RETRIES, directions: Optional[Sequence[str]] = None) -> List[dict]:
    """Time fastact and its peers; one dict per op x direction x dtype x size.

    Parameters
    ----------
    ops : names of activations (default: all, in registry order).
    dtypes : "float32" and/or "float64".
    sizes : numbers of elements, from :data:`ALLOWED_SIZES` (``1e5`` is accepted).
    backward : also time the gradients.
    directions : "forward" and/or "backward"; overrides ``backward``.
    threads : fastact's and PyTorch's thread count (default:
        ``fastact.get_num_threads()``).
    peers : libraries to compare with, from :data:`PEERS`; those not installed
        are skipped.
    progress : called as ``progress(done, total, label)`` before each row.
    min_time, samples : see :func:`measure`.
    retries : a row measured while other processes kept more than
        :data:`BUSY_CPUS` CPUs busy is measured again, after a pause, up to
        this many times; if it stays busy its notes say so.

    Each row has ``op``, ``direction``, ``dtype``, ``n``, ``shape``,
    ``threads``, ``backend``, the nanoseconds per element of ``fastact`` and of
    each peer (None where it has no such call), the ratio ``<peer>/fastact``
    of each peer (> 1: fastact is faster), and ``notes``.  The reference rows
    (op ``"copy"``, and ``"add"`` when gradients are timed; see the module
    docstring) come first and hold the memory limit under ``numpy`` and
    ``torch``.
    """
    import fastact

    ops = _check_choices("op", op_names() if ops is None else ops, op_names())
    dtypes = _check_choices("dtype", [str(np.dtype(d)) for d in dtypes], DTYPES)
    sizes = _sizes(sizes)
    peers = [p for p in available_peers(PEERS) if p in _check_choices("peer", peers, PEERS)]
    if directions is None:
        directions = DIRECTIONS if backward else DIRECTIONS[:1]
    directions = [d for d in DIRECTIONS if d in _check_choices("direction", directions,
                                                               DIRECTIONS)]
    if threads is not None:  # as fastact will use it: capped by the CPUs available
        with fastact.num_threads(threads):
            threads = fastact.get_num_threads()
    else:
        threads = fastact.get_num_threads()
    backend = fastact.get_backend()
    functions = {name: getattr(fastact, name) for name in fastact._FUNCTIONS}
    timing = {"min_time": min_time, "samples": samples}

    torch = _optional("torch") if "torch" in peers else None
    torch_threads = torch.get_num_threads() if torch is not None else None
    ne = _optional("numexpr") if "numexpr" in peers else None
    ne_threads = ne.get_num_threads() if ne is not None else None
    references = [op for op, (d, _) in REFERENCES.items() if d in directions]
    total = len(dtypes) * len(sizes) * (len(references) + len(ops) * len(directions))
    done = 0
    rows = []
    try:
        if torch is not None:
            torch.set_num_threads(threads)
        if ne is not None:
            ne.set_num_threads(threads)
        # errstate: the NumPy formulas overflow harmlessly (exp(-x) in sigmoid)
        with fastact.num_threads(threads), np.errstate(all="ignore"):
            for op, dtype, n in itertools.product(references, dtypes, sizes):
                if progress is not None:
                    progress(done, total, f"{op} {dtype} {format_size(n)}")
                done += 1
                rows.append(_quiet(retries, _reference_row, op, dtype, n, threads, backend,
                                   peers, torch, timing))
            for op, direction, dtype, n in itertools.product(ops, directions, dtypes, sizes):
                if progress is not None:
                    progress(done, total, f"{op} {direction} {dtype} {format_size(n)}")
                done += 1
                case = _Case(R.BY_NAME[op], dtype, n, seed, functions)
                rows.append(_quiet(retries, _row, case, direction, threads, backend, peers,
                                   timing))
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)
        if ne is not None:
            ne.set_num_threads(ne_threads)
    if progress is not None:
        progress(done, total, "done")
    return rows


def _quiet(retries, measure_row, *args):
    """``measure_row(*args)``, again after a pause while the machine was busy."""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(RETRY_PAUSE)
        row = measure_row(*args)
        if row["others_cpus"] is None or row["others_cpus"] <= BUSY_CPUS:
            break
    return row


class _Split:
    """Run ``f(lo, hi)`` on ``threads`` contiguous slices of [0, n) at once, in
    persistent Python threads (the caller runs the last slice).  NumPy releases
    the GIL while it copies or adds, so the slices run in parallel."""

    def __init__(self, threads):
        self.threads = threads
        self.pool = concurrent.futures.ThreadPoolExecutor(max(1, threads - 1))

    def __call__(self, f, n):
        bounds = [n * i // self.threads for i in range(self.threads + 1)]
        futures = [self.pool.submit(f, bounds[i], bounds[i + 1])
                   for i in range(self.threads - 1)]
        f(bounds[-2], bounds[-1])
        for future in futures:
            future.result()

    def close(self):
        self.pool.shutdown()


def _reference_row(op, dtype, n, threads, backend, peers, torch, timing):
    """A reference row (:data:`REFERENCES`): the memory-bound floor of an op."""
    direction, what = REFERENCES[op]
    rng = np.random.default_rng(SEED)
    a = rng.uniform(-1, 1, n).astype(dtype)
    b = rng.uniform(-1, 1, n).astype(dtype)
    c = np.empty_like(a)
    row = _blank_row(op, direction, dtype, n, a.shape, threads, backend, peers)
    others = others_cpu_meter()
    if op == "copy":
        def numpy_slice(lo, hi):
            np.copyto(c[lo:hi], a[lo:hi])
    else:
        def numpy_slice(lo, hi):
            np.add(a[lo:hi], b[lo:hi], out=c[lo:hi])
    notes = [f"reference: {what}"]
    if "numpy" in row:
        one = measure(lambda: numpy_slice(0, n), **timing)
        if threads > 1:
            split = _Split(threads)
            try:
                many = measure(lambda: split(numpy_slice, n), **timing)
            finally:
                split.close()
        else:
            many = math.inf
        row["numpy"] = min(one, many) * 1e9 / n
        notes.append(f"numpy on {threads if many < one else 1} thread(s)")
    if torch is not None:
        at, bt, ct = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        if op == "copy":
            row["torch"] = measure(lambda: ct.copy_(at), **timing) * 1e9 / n
        else:
            add = torch.add
            row["torch"] = measure(lambda: add(at, bt, out=ct), **timing) * 1e9 / n
    _busy(row, others(), notes)
    row["notes"] = "; ".join(notes)
    return row


def reference(rows: Sequence[dict], op: str, dtype: str, n: int) -> Optional[float]:
    """ns per element of the fastest library in the reference row ``op``
    ("copy" or "add") at ``dtype`` and ``n``; None if the run has no such row."""
    for r in rows:
        if r["op"] == op and r["dtype"] == str(dtype) and r["n"] == n:
            times = [r[p] for p in PEERS if r.get(p) is not None]
            return min(times) if times else None
    return None


def _row(case, direction, threads, backend, peers, timing):
    n = case.x.size
    row = _blank_row(case.act.name, direction, case.dtype, n, case.x.shape, threads,
                     backend, peers)
    notes = []
    call, _ = case.fastact(direction)
    reference = _as_array(call())
    others = others_cpu_meter()
    row["fastact"] = measure(call, **timing) * 1e9 / n
    for peer in peers:
        call, note = getattr(case, peer)(direction)
        if call is None:
            continue
        disagreement = _disagreement(peer, _as_array(call()), reference)
        notes += [s for s in (note, disagreement) if s]
        row[peer] = measure(call, **timing) * 1e9 / n
        row[f"{peer}/fastact"] = row[peer] / row["fastact"]
    _busy(row, others(), notes)
    row["notes"] = "; ".join(notes)
    return row


def _busy(row, others, notes):
    row["others_cpus"] = others
    if others is not None and others > BUSY_CPUS:
        notes.append(f"machine busy ({others:.1f} CPUs used by other processes)")


# ---------------------------------------------------------------------------
# Issue 3's targets, computed from a run's rows

#: Target 1: at this size, fastact within TARGET_MEMORY_RATIO of the reference.
TARGET_LARGE_N = 10**7
TARGET_MEMORY_RATIO = 1.2
#: Target 2: from this size on, never slower than PyTorch; geometric means.
TARGET_MIN_N = 10**3
TARGET_GEOMEAN = {"torch": 2.0, "numpy": 10.0}
#: Target 3: transcendental ops, float32, cache-resident size, vs the copy.
TARGET_CACHE_N = 10**5
TARGET_CACHE_RATIO = 2.5
_TRANSCENDENTAL = re.compile(r"\b(exp|expm1|log|log1p|logaddexp|tanh|erf)\(")


def transcendental_ops() -> tuple:
    """Element-wise activations whose NumPy formula (registry ``peers[0]``)
    calls a transcendental function: target 3's ops."""
    return tuple(a.name for a in R.ACTIVATIONS if a.kind == R.ELEMENTWISE and a.peers
                 and _TRANSCENDENTAL.search(a.peers[0]))


def _cell(r):
    return f"{r['op']} {_SHORT[r['direction']]} {r['dtype']} {format_size(r['n'])}"


def targets(rows: Sequence[dict]) -> List[dict]:
    """Issue 3's targets checked against ``rows`` (a :func:`run` result).

    One dict per target: ``target`` (its text), ``met`` (True, False, or None
    when the rows do not measure it), ``cells`` (how many cells it covers),
    ``failed`` (the cells that miss it, with their ratio and the evidence of
    :func:`_why`), ``value`` (the geometric mean, for those targets),
    ``parts`` (that mean over the piecewise-linear and the smooth ops) and
    ``torch_fails`` ((k, m): PyTorch misses the same limit in k of the m
    failing cells where it was timed; targets 1 and 3).
    """
    measured = [r for r in rows if r["op"] not in REFERENCES and r.get("fastact") is not None]
    out = []

    def result(text, cells, failed, value=None, parts=None, peer_fails=None):
        out.append({"target": text, "met": (not failed) if cells else None,
                    "cells": cells, "failed": failed, "value": value, "parts": parts,
                    "torch_fails": (sum(peer_fails), len(peer_fails)) if peer_fails else None})

    cells, failed, peer_fails = 0, [], []
    for r in measured:
        if r["n"] != TARGET_LARGE_N:
            continue
        ref_op = "copy" if r["direction"] == "forward" else "add"
        ref = reference(rows, ref_op, r["dtype"], r["n"])
        if ref is None:
            continue
        cells += 1
        ratio = r["fastact"] / ref
        if ratio > TARGET_MEMORY_RATIO:
            # why: the same cell's time where memory is no limit (cache-resident),
            # against the same reference, and PyTorch's time against it
            small = _same_cell(rows, r, TARGET_CACHE_N)
            why = _why(r, ref, ref_op, TARGET_MEMORY_RATIO,
                       cache=small["fastact"] / ref if small else None)
            peer_fails += why[1]
            failed.append(f"{_cell(r)}: {ratio:.2f}x {ref_op}{why[0]}")
    result(f"1. n = {format_size(TARGET_LARGE_N)}: forward <= {TARGET_MEMORY_RATIO}x copy, "
           f"backward <= {TARGET_MEMORY_RATIO}x add (2-thread references)", cells, failed,
           peer_fails=peer_fails)

    cells, failed = 0, []
    for r in measured:
        if r["n"] >= TARGET_MIN_N and r.get("torch/fastact") is not None:
            cells += 1
            if r["torch/fastact"] < 1:
                failed.append(f"{_cell(r)}: torch {1 / r['torch/fastact']:.2f}x faster")
    result(f"2a. n >= {format_size(TARGET_MIN_N)}: never slower than torch", cells, failed)

    exact = {a.name for a in R.ACTIVATIONS if a.exact}
    for peer, goal in TARGET_GEOMEAN.items():
        chosen = [r for r in measured
                  if r["n"] >= TARGET_MIN_N and r.get(f"{peer}/fastact") is not None]
        mean = _geomean([r[f"{peer}/fastact"] for r in chosen])
        # the mean over each kind of op too: where the total comes from
        # (fastact's piecewise-linear loops run at about copy speed, its
        # smooth ones at the cost of their arithmetic)
        parts = {kind: _geomean([r[f"{peer}/fastact"] for r in chosen
                                 if (r["op"] in exact) == is_exact])
                 for kind, is_exact in (("piecewise-linear", True), ("smooth", False))}
        result(f"2b. geometric mean of {peer}/fastact over n >= {format_size(TARGET_MIN_N)} "
               f">= {goal}", len(chosen),
               [] if mean is None or mean >= goal else [f"geomean {mean:.2f}"], mean,
               parts=parts)

    cells, failed, peer_fails = 0, [], []
    trans = transcendental_ops()
    for r in measured:
        if (r["op"] in trans and r["dtype"] == "float32" and r["n"] == TARGET_CACHE_N
                and r["direction"] == "forward"):
            ref = reference(rows, "copy", "float32", TARGET_CACHE_N)
            if ref is None:
                continue
            cells += 1
            ratio = r["fastact"] / ref
            if ratio > TARGET_CACHE_RATIO:
                why = _why(r, ref, "copy", TARGET_CACHE_RATIO)
                peer_fails += why[1]
                failed.append(f"{_cell(r)}: {ratio:.2f}x copy{why[0]}")
    result(f"3. n = {format_size(TARGET_CACHE_N)} float32, transcendental forward "
           f"({', '.join(trans)}) <= {TARGET_CACHE_RATIO}x copy", cells, failed,
           peer_fails=peer_fails)
    return out


def _geomean(values):
    return math.exp(statistics.fmean(map(math.log, values))) if values else None


def _same_cell(rows, r, n):
    """The row of ``r``'s op, direction and dtype at size ``n``, if measured."""
    for o in rows:
        if (o["op"], o["direction"], o["dtype"], o["n"]) == (r["op"], r["direction"],
                                                             r["dtype"], n):
            return o if o.get("fastact") is not None else None
    return None


def _why(r, ref, ref_op, limit, cache=None):
    """The evidence printed after a cell that misses a limit of ``limit`` times
    the reference ``ref``: fastact's cache-resident time against the same
    reference (``cache``: above the limit, the arithmetic alone exceeds it),
    and PyTorch's time in the same cell.  Returns (text, [whether PyTorch
    misses the limit too], or [] when PyTorch was not timed)."""
    parts = []
    if cache is not None:
        parts.append(f"at {format_size(TARGET_CACHE_N)}, cache-resident: {cache:.2f}x")
    t = r.get("torch")
    if t is not None:
        parts.append(f"torch {t / ref:.2f}x {ref_op}")
    return (f" ({'; '.join(parts)})" if parts else "",
            [t / ref > limit] if t is not None else [])


def format_targets(rows: Sequence[dict]) -> str:
    """:func:`targets` as text, for the closing note of issue 3."""
    lines = ["Targets (issue 3), from this run:"]
    for t in targets(rows):
        status = {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]
        value = f", {t['value']:.2f}" if t["value"] is not None else ""
        value += "".join(f"; {k} ops {v:.2f}" for k, v in (t["parts"] or {}).items()
                         if v is not None)
        lines.append(f"  {t['target']}: {status} ({t['cells']} cells{value})")
        if t["torch_fails"] is not None:
            k, of = t["torch_fails"]
            lines.append(f"      (torch misses the same limit in {k} of the {of} failing "
                         f"cells where it was timed)")
        lines += [f"      {f}" for f in t["failed"]]
    missing = [t for t in targets(rows) if t["met"] is None]
    if missing:
        lines.append("  (not measured: the run lacks the sizes, peers or reference rows "
                     "those targets need; benchmarks/compare.py --targets times them all)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Output

def format_size(n: int) -> str:
    """1000 -> "1e3"; other numbers as they are."""
    k = round(math.log10(n)) if n > 0 else 0
    return f"1e{k}" if n >= 1000 and 10**k == n else str(n)


def _ns(v):
    """Three significant digits (at most 3 decimals)."""
    if v is None:
        return "-"
    decimals = 0 if v >= 100 else 1 if v >= 10 else 2 if v >= 1 else 3
    return f"{v:.{decimals}f}"


def _ratio(v):
    return "-" if v is None else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


_SHORT = {"forward": "fwd", "backward": "bwd"}


def format_table(rows: Sequence[dict]) -> str:
    """The rows as an aligned text table, with a legend."""
    libs = [c for c in ("fastact",) + PEERS if any(r.get(c) is not None for r in rows)]
    ratios = [f"{p}/fastact" for p in PEERS
              if any(r.get(f"{p}/fastact") is not None for r in rows)]
    header = (["op", "dir", "dtype", "n"] + libs
              + [c.replace("/fastact", "/fa") for c in ratios] + ["notes"])
    body = [[r["op"], _SHORT[r["direction"]], r["dtype"], format_size(r["n"])]
            + [_ns(r.get(c)) for c in libs] + [_ratio(r.get(c)) for c in ratios]
            + [r.get("notes", "")] for r in rows]
    numeric = set(range(3, len(header) - 1))
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]

    def fmt(line):
        cells = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])]
    previous = None
    for r, line in zip(rows, body):
        if previous is not None and r["op"] != previous:
            lines.append("")
        previous = r["op"]
        lines.append(fmt(line))
    threads = sorted({r["threads"] for r in rows})
    backends = sorted({r["backend"] for r in rows})
    lines += ["", f"ns per element, median of timed samples; threads: "
              f"{', '.join(map(str, threads))}; fastact backend: {', '.join(backends)}.",
              "fastact writes into a preallocated out=; numpy is the registry's formula "
              "(allocating); torch runs on the same buffers (backward: autograd, "
              "backward nodes only).",
              "<peer>/fa = peer time / fastact time: above 1, fastact is faster."]
    busy = [r["others_cpus"] for r in rows if r.get("others_cpus") is not None]
    if busy and max(busy) > BUSY_CPUS:
        lines.append(f"WARNING: other processes used up to {max(busy):.1f} CPUs during this "
                     "run (rows marked 'machine busy'); those timings, multi-threaded ones "
                     "most of all, are unreliable.")
    return "\n".join(lines)


_CSV_FIXED = ("op", "direction", "dtype", "n", "shape", "threads", "backend", "fastact")


def _columns(rows):
    extra = [k for r in rows for k in r if k not in _CSV_FIXED and k != "notes"]
    ordered = list(dict.fromkeys(extra))
    return list(_CSV_FIXED) + ordered + ["notes"]


def _open(file, mode):
    if hasattr(file, "write"):
        return _NoClose(file)
    return open(os.fspath(file), mode, newline="" if mode == "w" else None)


class _NoClose:
    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self.f

    def __exit__(self, *exc):
        return False


def to_csv(rows: Sequence[dict], file) -> None:
    """Write the rows as CSV to a path or an open text file."""
    with _open(file, "w") as f:
        writer = csv.DictWriter(f, fieldnames=_columns(rows), restval="",
                                lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if v is None else v for k, v in r.items()})


def to_json(rows: Sequence[dict], file, env: Optional[dict] = None) -> None:
    """Write ``{"environment": ..., "rows": [...]}`` to a path or an open text file."""
    with _open(file, "w") as f:
        json.dump({"environment": environment() if env is None else env,
                   "rows": list(rows)}, f, indent=1, default=str)
        f.write("\n")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def others_cpu_meter() -> Callable[[], Optional[float]]:
    """Start measuring other processes' CPU use; the returned function gives the
    average number of CPUs they kept busy since this call (from /proc/stat,
    less this process's own CPU time; None where /proc/stat is unreadable).

    Timings taken while it is well above 0 are unreliable, those on several
    threads most of all: a parallel region waits for a CPU to come free.
    """
    def read():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
        own = os.times()
        return busy - own.user - own.system, time.perf_counter()

    try:
        busy0, wall0 = read()
    except (OSError, ValueError, IndexError, AttributeError):
        return lambda: None

    def since():
        busy1, wall1 = read()
        return max(0.0, (busy1 - busy0) / (wall1 - wall0)) if wall1 > wall0 else 0.0
    return since


def environment() -> Dict[str, object]:
    """What a result depends on: fastact's configuration, library versions, the CPU."""
    import fastact
    versions = {}
    for name in ("scipy", "numexpr", "torch"):
        module = _optional(name)
        versions[name] = getattr(module, "__version__", None) if module else None
    return {"fastact": fastact.config(), "python": platform.python_version(),
            "numpy": np.__version__, **versions, "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(), "platform": platform.platform()}
