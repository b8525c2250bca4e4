"""Exhaustive float32 and swept float64 accuracy of fastact and its peers.

    python benchmarks/exhaustive_accuracy.py [--quick] [--only NAME ...]
        [--dtype float32 float64] [--isa baseline x86-64-v3] [--workers N]
        [--impls native numpy torch fallback] [--variants] [--no-grad]
        [--json FILE]

What it measures (CONTRACT.md section 4), for every element-wise activation of
the registry (``src/fastact/_registry.py``; nothing here names one), with the
default parameters (``--variants``: also tests/reference.py's ``param_cases``):

1. **float32 forward, exhaustive**: all 2**32 bit patterns, in chunks of
   2**24 (blocks of 2**16 inside a worker, so every array stays in cache).
   A NaN pattern is only checked for a NaN result.
2. **float64 forward, swept**: ``--f64-points`` (default 1.2e7) points per
   function: 40% log-uniform over every finite binade of both signs, 40%
   log-uniform magnitudes inside the registry ``domain``, 20% dense around
   the registry's special points (0, kinks of tests/reference.py, roots of
   f', the domain's ends): the 4096 nearest doubles on each side and
   log-uniform relative offsets from 2**-52 to 1/2.
3. **gradients** (``f_backward(g=1, x)``): the float64 sweep and a float32
   sweep of ``--grad32-points`` (default 1.2e7) points built the same way.
   As in tests/test_accuracy.py the ULP maximum is taken away from the roots
   of f' (more than 4 ULP of x from them); there the absolute error in eps
   is reported instead (bound: 4).

Implementations, side by side: fastact's native backend at each ISA level
(``fastact._native.set_isa``; ``--isa``), the registry's NumPy formula
(``peers[0]``, as ``fastact._bench`` evaluates it) and PyTorch expression
(``peers[1]``, on float32/float64 tensors, one thread; backward by
autograd), and with ``--impls ... fallback`` fastact's own NumPy backend.

The error of a result is |got - f(x)| in ULP of the correctly rounded f(x)
(tests/reference.py's ``ulp_error``); a result equal to the correctly
rounded value has error <= 0.5 and is counted as correctly rounded (``cr``
in the table when every result is); only the other results have their
error computed.  Piecewise-linear functions (registry ``exact``) must be
bit-exact: the table gives the count of inexact results.

The reference (``_accuracy_ref.py``): cancellation-free NumPy formulas,
independent of both backends, in float64 for float32 results (error
~2**-26 float32 ULP) and in x87 long double with error-free products for
float64 results (error ~2**-10 float64 ULP); its error is measured against
tests/reference.py's mpmath references at the start of every run and printed.
Every reported maximum is then recomputed with mpmath at the worst inputs
(the worst one for the exhaustive float32 run, the worst ``TOP_K`` for the
sweeps) and the table shows the mpmath value.  Counts of results above 0.5
ULP are from the fast reference (exact for float32; for float64 a result
within the reference's error of 0.5 ULP may be counted on either side).

Not element-wise: ``prelu`` is run like the others with the registry's
sample weight (it is leaky_relu with that slope); ``maxout`` is run over the
same float32 patterns in groups of ``pieces`` consecutive patterns and must
equal the NaN-propagating maximum exactly (every value is seen, not every
pair); softmax and log_softmax are skipped (they need vectors: see
tests/test_accuracy.py's test_softmax_ulp).

Time: ``--quick`` (2**24 random float32 patterns, 1e5 float64 points, 2**20
gradient points) takes about a minute on 2 cores; the full run prints its
own projection after the first chunks.  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _accuracy_ref as A  # noqa: E402

from fastact import _registry as R  # noqa: E402

FORWARD_ULP = 2
GRADIENT_ULP = 4
ROOT_NEIGHBOURHOOD_ULP = 4
ROOT_ABS_EPS = 4
CHUNK = 1 << 24
BLOCK = 1 << 16
TOP_K = 4
NAN_FREE = "float32 exhaustive"

KINDS = ("f32", "f64", "g32", "g64")
KIND_TITLE = {"f32": "float32 forward, exhaustive", "f64": "float64 forward, swept",
              "g32": "float32 gradient, swept", "g64": "float64 gradient, swept"}
KIND_DTYPE = {"f32": np.dtype(np.float32), "f64": np.dtype(np.float64),
              "g32": np.dtype(np.float32), "g64": np.dtype(np.float64)}


# ---------------------------------------------------------------------------
# Cases: (activation, parameters)

def default_kwargs(act):
    return {p.name: (p.sample if p.default is R.REQUIRED else p.default)
            for p in act.params if p.kind != "axis"}


def cases(only=(), variants=False):
    """[(label, name, params)] for the element-wise activations, prelu and maxout."""
    out = []
    for act in R.ACTIVATIONS:
        if only and act.name not in only:
            continue
        if act.kind not in (R.ELEMENTWISE, R.PRELU, R.MAXOUT):
            continue
        base = default_kwargs(act)
        extra = [{}]
        if act.kind == R.ELEMENTWISE:
            choice = [{p.name: c} for p in act.params if p.kind == "choice"
                      for c in p.choices if c != p.default]
            extra += choice
            if variants:
                extra += [dict(v) for v in A.mpref.PARAM_VARIANTS.get(act.name, ())]
        for e in extra:
            label = act.name + ("" if not e else "[" + ",".join(f"{k}={v}" for k, v in e.items()) + "]")
            out.append((label, act.name, dict(base, **e)))
    return out


def skipped(only=()):
    return [(a.name, "needs vectors (normalised along an axis); covered by "
             "tests/test_accuracy.py::test_softmax_ulp on random slices")
            for a in R.ACTIVATIONS if a.kind == R.SOFTMAX and (not only or a.name in only)]


# ---------------------------------------------------------------------------
# Implementations: name -> object with forward(name, x, p) / backward(...)

class _Fastact:
    def __init__(self, backend, isa=None):
        import fastact
        from fastact import _api
        self.isa = isa
        self.fns = _api.build_functions(fastact._BACKENDS[backend])
        self.native = fastact._BACKENDS.get("native")

    def _use(self):
        if self.isa is not None:
            from fastact import _native
            _native.set_isa(self.isa)

    def forward(self, name, x, p):
        self._use()
        return self.fns[name](x, **p)

    def backward(self, name, x, p):
        self._use()
        out = self.fns[name + "_backward"](np.ones_like(x), x, **p)
        return out[0] if isinstance(out, tuple) else out


def _peer(name, which, p):
    act = R.BY_NAME[name]
    expr = act.peers[which] if which < len(act.peers) else ""
    if not expr:
        return None
    ns = {k: v for k, v in vars(R).items() if k.isupper() and isinstance(v, float)}
    ns.update(p)
    if which == 0:
        from fastact import _bench
        ns["np"] = np
        ns["erf"] = _bench._erf()[0]
    else:
        import torch
        ns["torch"] = torch
        ns["F"] = torch.nn.functional
    return eval("lambda x: " + expr, ns)  # noqa: S307 - registry text


class _NumpyFormula:
    def forward(self, name, x, p):
        f = _peer(name, 0, p)
        if f is None:
            return None
        with np.errstate(all="ignore"):
            y = np.asarray(f(x))
        return y.astype(x.dtype, copy=False)

    def backward(self, name, x, p):
        return None  # the registry has no backward formulas


class _Torch:
    def __init__(self):
        import torch
        torch.set_num_threads(1)
        self.torch = torch

    def forward(self, name, x, p):
        f = _peer(name, 1, p)
        if f is None:
            return None
        with self.torch.no_grad():
            return f(self.torch.from_numpy(x)).numpy()

    def backward(self, name, x, p):
        f = _peer(name, 1, p)
        if f is None:
            return None
        xt = self.torch.from_numpy(x.copy()).requires_grad_(True)
        y = f(xt)
        (g,) = self.torch.autograd.grad(y, xt, self.torch.ones_like(y))
        return g.numpy()


def isa_levels():
    """ISA levels compiled and runnable here, best first."""
    try:
        from fastact import _native
    except ImportError:
        return ()
    names = _native.ISA_NAMES
    best = names.index(_native.isa_best())
    return tuple(reversed([n for n in _native.isa_compiled() if names.index(n) <= best]))


def _torch_available():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


#: impl-group -> function(isas) returning {column name: factory}.  Tests may add
#: entries (e.g. a deliberately wrong implementation).
IMPLEMENTATIONS = {
    "native": lambda isas: {f"native[{i}]": (lambda i=i: _Fastact("native", i)) for i in isas},
    "numpy": lambda isas: {"numpy formula": _NumpyFormula},
    "torch": lambda isas: ({"torch": _Torch} if _torch_available() else {}),
    "fallback": lambda isas: {"fastact numpy backend": (lambda: _Fastact("numpy"))},
}
DEFAULT_IMPLS = ("native", "numpy", "torch")


def columns(opts):
    cols = {}
    for group in opts["impls"]:
        cols.update(IMPLEMENTATIONS[group](opts["isa"]))
    return cols


# ---------------------------------------------------------------------------
# Worker state

_W = {}


def _init(opts):
    import fastact
    fastact.set_num_threads(1)
    _W["opts"] = opts
    _W["impls"] = {name: make() for name, make in columns(opts).items()}


def _impls():
    return _W["impls"]


# ---------------------------------------------------------------------------
# Inputs

def f32_patterns(task, opts):
    """The float32 inputs of a task: a 2**24 chunk of bit patterns, or (quick)
    random patterns, with the special values in task 0."""
    if opts["f32_samples"] is None:
        start = task * CHUNK
        return np.arange(start, start + CHUNK, dtype=np.uint64).astype(np.uint32).view(np.float32)
    n = opts["f32_task_size"]
    rng = np.random.default_rng([opts["seed"], task])
    bits = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    if task == 0:
        x[:len(SPECIAL32)] = SPECIAL32
    return x


def _specials(t):
    fi = np.finfo(t)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, float(fi.max), -float(fi.max),
         float(fi.tiny), -float(fi.tiny), float(fi.smallest_subnormal),
         -float(fi.smallest_subnormal), 1.0, -1.0]
    return np.array(v, dtype=t)


SPECIAL32 = _specials(np.float32)


def special_points(name, p):
    """Registry points a sweep is dense around: 0, kinks, roots of f', domain ends."""
    act = R.BY_NAME[name]
    pts = [0.0, float(act.domain[0]), float(act.domain[1])]
    kink = A.mpref.KINKS.get(name)
    if kink is not None:
        pts += [float(k) for k in kink(p)]
    pts += [float(r) for r in A.grad_roots(name, p)] + list(act.grad_roots)
    return sorted(set(pts))


def sweep_points(name, p, target, block, size, seed):
    """Block ``block`` of a sweep for one case (see the module docstring)."""
    target = np.dtype(target)
    fi = np.finfo(target)
    rng = np.random.default_rng([seed, zlib.crc32(repr((name, sorted(p.items()))).encode()),
                                 block, fi.bits])
    lo_e = math.log2(float(fi.smallest_subnormal))
    hi_e = math.log2(float(fi.max))
    n1 = size * 4 // 10
    n2 = size * 4 // 10
    n3 = size - n1 - n2
    parts = [np.exp2(rng.uniform(lo_e, hi_e, n1)) * rng.choice([-1.0, 1.0], n1)]
    dlo, dhi = R.BY_NAME[name].domain
    sides = [(s, e) for s, e in ((1.0, dhi), (-1.0, -dlo)) if e > 0]
    side = rng.integers(0, len(sides), n2)
    m = np.empty(n2)
    for k, (s, e) in enumerate(sides):
        sel = side == k
        m[sel] = s * np.exp2(rng.uniform(lo_e, math.log2(e), sel.sum()))
    parts.append(m)
    pts = special_points(name, p)
    which = rng.integers(0, len(pts), n3)
    near = np.empty(n3, dtype=target)
    for k, s in enumerate(pts):
        sel = np.flatnonzero(which == k)
        if not sel.size:
            continue
        half = sel.size // 2
        s_t = target.type(s)
        steps = rng.integers(-4096, 4097, half)
        ulp = float(np.spacing(np.abs(s_t))) if s != 0 else float(fi.smallest_subnormal)
        near[sel[:half]] = (s + steps * ulp) if s != 0 else steps * ulp
        rel = np.exp2(rng.uniform(-52, -1, sel.size - half)) * rng.choice([-1.0, 1.0], sel.size - half)
        if s == 0:
            near[sel[half:]] = rel * np.exp2(rng.uniform(lo_e + 52, 0, sel.size - half))
        else:
            near[sel[half:]] = s * (1 + rel)
    with np.errstate(over="ignore"):
        x = np.concatenate([np.concatenate(parts).astype(target), near])
    if block == 0:
        x[:len(SPECIAL32)] = _specials(target)
    return x


# ---------------------------------------------------------------------------
# Statistics

def _new_stats():
    return {"n": 0, "mismatch": 0, "over_half": 0, "over_bound": 0, "nan_fail": 0,
            "max": 0.0, "worst": [], "near_n": 0, "near_abs_max": 0.0, "near_worst": None,
            "inf_fail": 0, "inf_worst": None, "seconds": 0.0, "unavailable": None}


def _merge(a, b, k=TOP_K):
    a["inf_worst"] = a["inf_worst"] or b["inf_worst"]
    for key in ("n", "mismatch", "over_half", "over_bound", "nan_fail", "near_n", "seconds",
                "inf_fail"):
        a[key] += b[key]
    a["max"] = max(a["max"], b["max"])
    a["worst"] = sorted(a["worst"] + b["worst"], key=lambda w: -w[0])[:k]
    if b["near_abs_max"] > a["near_abs_max"] or a["near_worst"] is None:
        if b["near_worst"] is not None:
            a["near_abs_max"], a["near_worst"] = b["near_abs_max"], b["near_worst"]
    a["unavailable"] = a["unavailable"] or b["unavailable"]
    return a


def _ulp(r):
    """ULP of correctly rounded values ``r`` (tests/reference.py's ulp_of)."""
    a = np.abs(r)
    sp = np.spacing(a)
    big = ~np.isfinite(sp)
    if big.any():
        sp[big] = a[big] - np.nextafter(a[big], 0)
    return sp


def measure(st, x, got, hi, lo, r, bound, nan_in=None, near=None, k=TOP_K):
    """Add one block's errors to ``st``: only results other than the correctly
    rounded one ``r`` get their error computed.  ``nan_in``: mask of NaN
    inputs (None: there are none), which need a NaN result and nothing else."""
    n_nan = 0
    bad = got != r
    if nan_in is not None:
        n_nan = int(np.count_nonzero(nan_in))
        st["nan_fail"] += int(np.count_nonzero(nan_in & ~np.isnan(got)))
        bad &= ~nan_in
    st["n"] += int(x.size - n_nan)
    W = hi.dtype
    if near is not None:
        i = np.flatnonzero(near)
        d = got[i].astype(W) - hi[i]
        if lo is not None:
            d -= lo[i]
        d = np.abs(d).astype(np.float64) / float(np.finfo(got.dtype).eps)
        d[np.isnan(d)] = np.inf
        st["near_n"] += int(i.size)
        j = int(np.argmax(d))
        if d[j] > st["near_abs_max"] or st["near_worst"] is None:
            st["near_abs_max"] = float(d[j])
            st["near_worst"] = (float(d[j]), x[i[j]].item(), got[i[j]].item())
        bad &= ~near
    idx = np.flatnonzero(bad)
    st["mismatch"] += int(idx.size)
    if not idx.size:
        return
    xinf = np.isinf(x[idx])
    if xinf.any():  # +-inf: the limit (registry specials) exactly, counted apart
        st["inf_fail"] += int(np.count_nonzero(xinf))
        st["inf_worst"] = st["inf_worst"] or (x[idx[xinf]][0].item(), got[idx[xinf]][0].item())
        idx = idx[~xinf]
        if not idx.size:
            return
    g = got[idx]
    rr = r[idx]
    with np.errstate(all="ignore"):
        diff = g.astype(W) - hi[idx]
        if lo is not None:
            diff -= lo[idx]
        err = (np.abs(diff) / _ulp(rr).astype(W)).astype(np.float64)
    special = ~np.isfinite(rr) | ~np.isfinite(g)
    if special.any():
        err[special] = np.where(g[special] == rr[special], 0.0, np.inf)
    err[np.isnan(err)] = np.inf
    st["over_half"] += int(np.count_nonzero(err > 0.5))
    st["over_bound"] += int(np.count_nonzero(err > bound))
    m = float(err.max())
    st["max"] = max(st["max"], m)
    if len(st["worst"]) < k or m > st["worst"][-1][0]:
        top = np.argsort(-err)[:k]
        new = [(float(err[t]), x[idx[t]].item(), g[t].item()) for t in top]
        st["worst"] = sorted(st["worst"] + new, key=lambda w: -w[0])[:k]


def _eval(impl, which, name, x, p):
    try:
        y = impl.forward(name, x, p) if which == 0 else impl.backward(name, x, p)
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if y is None:
        return None, "no such call"
    y = np.asarray(y)
    if y.shape != x.shape:
        return None, f"result shape {y.shape}"
    return y.astype(x.dtype, copy=False), None


def run_block(kind, label, name, p, x, stats):
    """Evaluate every implementation on ``x`` and add to stats[(kind, label, impl)]."""
    target = x.dtype
    which = 1 if kind in ("g32", "g64") else 0
    act = R.BY_NAME[name]
    bound = GRADIENT_ULP if which else FORWARD_ULP
    if act.kind == R.MAXOUT:
        return _run_maxout(kind, label, name, p, x, stats)
    t0 = time.perf_counter()
    hi, lo = A.evaluate(name, x, p, target, which)
    r = A.round_target(hi, lo, target)
    near = None
    if which:
        for root in A.grad_roots(name, p):
            rr = A.mpref.round_to(root, target)
            width = ROOT_NEIGHBOURHOOD_ULP * A.mpref.ulp_of(rr, target)
            with np.errstate(invalid="ignore"):
                m = np.abs(x.astype(np.float64) - float(root)) <= width
            if m.any():
                near = m if near is None else near | m
    nan_in = np.isnan(x)
    if not nan_in.any():
        nan_in = None
    ref_s = time.perf_counter() - t0
    ref_key = (kind, label, "reference")
    st = stats.setdefault(ref_key, _new_stats())
    st["seconds"] += ref_s
    st["n"] += x.size
    for col, impl in _impls().items():
        key = (kind, label, col)
        st = stats.setdefault(key, _new_stats())
        t0 = time.perf_counter()
        got, why = _eval(impl, which, name, x, p)
        if got is None:
            st["unavailable"] = why
            continue
        measure(st, x, got, hi, lo, r, bound, nan_in, near)
        st["seconds"] += time.perf_counter() - t0


def _run_maxout(kind, label, name, p, x, stats):
    if kind != "f32" and kind != "f64":
        return
    pieces = p["pieces"]
    n = x.size - x.size % pieces
    xs = x[:n]
    ref = xs.reshape(-1, pieces).max(-1)  # NaN-propagating
    for col, impl in _impls().items():
        st = stats.setdefault((kind, label, col), _new_stats())
        t0 = time.perf_counter()
        try:
            got = impl.forward(name, xs, p)
        except (TypeError, ValueError, RuntimeError) as exc:
            st["unavailable"] = f"{type(exc).__name__}: {exc}"
            continue
        if got is None:
            st["unavailable"] = "no such call"
            continue
        got = np.asarray(got).astype(x.dtype, copy=False)
        nan_ref = np.isnan(ref)
        st["nan_fail"] += int(np.count_nonzero(nan_ref & ~np.isnan(got)))
        bad = (got != ref) & ~nan_ref
        st["n"] += ref.size
        nb = int(np.count_nonzero(bad))
        st["mismatch"] += nb
        st["over_half"] += nb
        st["over_bound"] += nb
        if nb:
            i = int(np.flatnonzero(bad)[0])
            st["max"] = math.inf
            group = xs[i * pieces:(i + 1) * pieces].tolist()
            st["worst"] = (st["worst"] + [(math.inf, group, got[i].item())])[:TOP_K]
        st["seconds"] += time.perf_counter() - t0


def task(args):
    """One unit of work in a worker: (kind, task index, [case indices]) -> stats."""
    kind, index, case_ids = args
    opts = _W["opts"]
    all_cases = opts["cases"]
    stats = {}
    if kind == "f32":
        x_all = f32_patterns(index, opts)
        for ci in case_ids:
            label, name, p = all_cases[ci]
            for s in range(0, x_all.size, BLOCK):
                run_block(kind, label, name, p, x_all[s:s + BLOCK], stats)
    else:
        target = KIND_DTYPE[kind]
        for ci in case_ids:
            label, name, p = all_cases[ci]
            if R.BY_NAME[name].kind == R.MAXOUT and kind != "f64":
                continue
            n = opts["sweep"][kind]
            blocks = range(index * opts["blocks_per_task"],
                           min((index + 1) * opts["blocks_per_task"], -(-n // BLOCK)))
            for b in blocks:
                size = min(BLOCK, n - b * BLOCK)
                x = sweep_points(name, p, target, b, size, opts["seed"])
                run_block(kind, label, name, p, x, stats)
    return kind, stats


# ---------------------------------------------------------------------------
# mpmath confirmation

def confirm(kind, name, p, x, got):
    """The ULP error of ``got`` at ``x`` by tests/reference.py (mpmath)."""
    target = KIND_DTYPE[kind]
    which = 1 if kind in ("g32", "g64") else 0
    fn = (A.mp_f if which == 0 else A.mp_fprime)(name)
    act = R.BY_NAME[name]
    v = fn(A.mp.mpf(float(x)), A.mp_params(name, p), target if act.exact else None)
    if np.isinf(x):  # the contract's table (registry specials) decides at +-inf
        hi, _ = A.evaluate(name, np.array([x], target), p, target, which)
        v = A.mp.mpf(float(hi[0]))
    return float(A.mpref.ulp_error(np.array([got], target), [v], target)[0])


# ---------------------------------------------------------------------------
# Driver

def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="2**24 random float32 patterns, 1e5 float64 points, 2**20 "
                         "float32 gradient points")
    ap.add_argument("--only", nargs="+", default=(), metavar="NAME")
    ap.add_argument("--dtype", nargs="+", default=("float32", "float64"),
                    choices=("float32", "float64"))
    ap.add_argument("--isa", nargs="+", default=None, help="ISA levels (default: all runnable)")
    ap.add_argument("--impls", nargs="+", default=DEFAULT_IMPLS, choices=tuple(IMPLEMENTATIONS))
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes (0: run in this process)")
    ap.add_argument("--no-grad", action="store_true", help="skip the gradients")
    ap.add_argument("--variants", action="store_true",
                    help="also tests/reference.py's PARAM_VARIANTS")
    ap.add_argument("--f32-samples", type=float, default=None,
                    help="random float32 patterns instead of all 2**32")
    ap.add_argument("--f64-points", type=float, default=None)
    ap.add_argument("--grad32-points", type=float, default=None)
    ap.add_argument("--self-check-points", type=int, default=None,
                    help="points per case for the reference's check against mpmath")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    if a.quick:
        a.f32_samples = a.f32_samples or 2 ** 24
        a.f64_points = a.f64_points or 1e5
        a.grad32_points = a.grad32_points or 2 ** 20
        a.self_check_points = a.self_check_points or 100
    a.f64_points = int(a.f64_points or 12_000_000)
    a.grad32_points = int(a.grad32_points or 12_000_000)
    a.self_check_points = a.self_check_points or 400
    return a


def _progress(msg):
    print(msg, file=sys.stderr, flush=True)


def run(a):
    levels = isa_levels()
    isa = tuple(a.isa) if a.isa else levels
    bad = [i for i in isa if i not in levels]
    if bad:
        raise SystemExit(f"ISA level(s) {bad} not runnable here; available: {levels}")
    if A.missing():
        raise SystemExit(f"no reference formula for {A.missing()} in _accuracy_ref.REF")
    all_cases = cases(a.only, a.variants)
    if not all_cases:
        raise SystemExit(f"nothing to run for --only {' '.join(a.only)}")
    impls = tuple(g for g in a.impls if g != "native" or isa)
    f32_samples = None if a.f32_samples is None else int(a.f32_samples)
    opts = {"cases": all_cases, "isa": isa, "impls": impls, "seed": a.seed,
            "f32_samples": f32_samples, "sweep": {"f64": a.f64_points, "g64": a.f64_points,
                                                  "g32": a.grad32_points},
            "blocks_per_task": 8}
    kinds = []
    if "float32" in a.dtype:
        kinds.append("f32")
    if "float64" in a.dtype:
        kinds.append("f64")
    if not a.no_grad:
        kinds += [k for k, d in (("g32", "float32"), ("g64", "float64")) if d in a.dtype]
    tasks = []
    grad_ids = [i for i, (_, n, _) in enumerate(all_cases) if R.BY_NAME[n].kind != R.MAXOUT]
    for kind in kinds:
        ids = list(range(len(all_cases))) if kind in ("f32", "f64") else grad_ids
        if kind == "f32":
            if f32_samples is None:
                ntask = (1 << 32) // CHUNK
            else:
                ntask = max(1, min(16, -(-f32_samples // BLOCK)))
                opts["f32_task_size"] = -(-f32_samples // ntask)
            tasks += [(kind, t, ids) for t in range(ntask)]
        else:
            nblocks = -(-opts["sweep"][kind] // BLOCK)
            ntask = -(-nblocks // opts["blocks_per_task"])
            tasks += [(kind, t, [ci]) for ci in ids for t in range(ntask)]

    # the reference's own error, against mpmath
    t0 = time.perf_counter()
    selfcheck = {}
    for label, name, p in all_cases:
        if R.BY_NAME[name].kind == R.MAXOUT:
            continue
        for d in a.dtype:
            which = (0,) if a.no_grad else (0, 1)
            selfcheck[(label, d)] = A.self_check(name, p, d, n=a.self_check_points, which=which)
    _progress(f"reference checked against mpmath in {time.perf_counter() - t0:.1f} s")

    stats = {}
    done = {k: 0 for k in kinds}
    total = {k: sum(1 for t in tasks if t[0] == k) for k in kinds}
    start = time.perf_counter()
    kind_start = {}
    if a.workers == 0:
        _init(opts)
        results = map(task, tasks)
        pool = None
    else:
        ctx = multiprocessing.get_context("spawn")
        pool = ctx.Pool(a.workers, initializer=_init, initargs=(opts,))
        results = pool.imap(task, tasks)
    try:
        for kind, st in results:
            kind_start.setdefault(kind, time.perf_counter())
            for key, v in st.items():
                if key in stats:
                    _merge(stats[key], v, 1 if kind == "f32" and f32_samples is None else TOP_K)
                else:
                    stats[key] = v
            done[kind] += 1
            el = time.perf_counter() - start
            ntot, ndone = sum(total.values()), sum(done.values())
            _progress(f"[{el:7.1f} s] {KIND_TITLE[kind]}: {done[kind]}/{total[kind]} tasks"
                      f" (all: {ndone}/{ntot}, about {el / ndone * (ntot - ndone):.0f} s left)")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    wall = time.perf_counter() - start

    # mpmath at the worst points
    t0 = time.perf_counter()
    by_label = {label: (name, p) for label, name, p in all_cases}
    for (kind, label, col), st in stats.items():
        name, p = by_label[label]
        st["confirmed"] = None
        if col == "reference" or not st["worst"] or R.BY_NAME[name].kind == R.MAXOUT:
            continue
        conf = []
        for err, x, got in st["worst"]:
            conf.append((confirm(kind, name, p, x, got), x, got))
        conf.sort(key=lambda w: -w[0])
        st["confirmed"] = conf[0]
        st["confirmed_all"] = conf
    _progress(f"worst points confirmed with mpmath in {time.perf_counter() - t0:.1f} s")
    return {"cases": all_cases, "kinds": kinds, "stats": stats, "selfcheck": selfcheck,
            "wall": wall, "workers": a.workers, "isa": isa, "columns": list(columns(opts)),
            "f32_samples": f32_samples, "sweep": opts["sweep"],
            "skipped": skipped(a.only), "tasks": total}


# ---------------------------------------------------------------------------
# Output

def _bound(kind):
    return GRADIENT_ULP if kind in ("g32", "g64") else FORWARD_ULP


def cell(res, kind, label, col):
    st = res["stats"].get((kind, label, col))
    if st is None:
        return "-"
    if st["unavailable"] and not st["n"]:
        return "n/a"
    name = dict((lb, n) for lb, n, _ in res["cases"])[label]
    act = R.BY_NAME[name]
    nan = f" NaN!{st['nan_fail']}" if st["nan_fail"] else ""
    if st["inf_fail"]:
        nan += " ±inf!"
    if act.exact:
        if kind in ("g32", "g64"):
            pass
        else:
            n_bad = st["mismatch"] - st["inf_fail"]
            return ("exact" if not n_bad else f"{n_bad} inexact!") + nan
    if not st["worst"]:
        v = "cr"
    else:
        m = st["confirmed"][0] if st.get("confirmed") else st["max"]
        v = ("inf" if math.isinf(m) else f"{m:.3g}") + ("!" if m > _bound(kind) else "")
    if kind in ("g32", "g64") and st["near_n"] and st["near_abs_max"] > ROOT_ABS_EPS:
        v += f" (root {st['near_abs_max']:.3g}eps!)"
    return v + nan


def violations(res):
    out = []
    for (kind, label, col), st in res["stats"].items():
        if col == "reference" or (st["unavailable"] and not st["n"]):
            continue
        name = dict((lb, n) for lb, n, _ in res["cases"])[label]
        exact = R.BY_NAME[name].exact
        m = st["confirmed"][0] if st.get("confirmed") else st["max"]
        bad = st["nan_fail"] > 0 or st["inf_fail"] > 0 or (st["mismatch"] > 0 and (exact and kind in ("f32", "f64")
                                                               or m > _bound(kind)))
        if kind in ("g32", "g64") and st["near_abs_max"] > ROOT_ABS_EPS:
            bad = True
        if bad:
            out.append({"kind": kind, "case": label, "impl": col, "max_ulp": m,
                        "mismatch": st["mismatch"], "nan_fail": st["nan_fail"],
                        "inf_fail": st["inf_fail"]})
    return out


def markdown(res):
    cols = res["columns"]
    lines = []
    fwd = [k for k in ("f32", "f64") if k in res["kinds"]]
    grad = [k for k in ("g32", "g64") if k in res["kinds"]]
    for group, title in ((fwd, "forward"), (grad, "gradient (g = 1; away from roots of f')")):
        if not group:
            continue
        head = ["function"] + [f"{KIND_TITLE[k].split(',')[0]} {c}" for k in group for c in cols]
        lines.append(f"Max ULP error, {title}: " + "; ".join(
            f"{KIND_TITLE[k]} ({_count(res, k)})" for k in group))
        lines.append("")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for label, name, _ in res["cases"]:
            if group is grad and R.BY_NAME[name].kind == R.MAXOUT:
                continue
            lines.append("| " + " | ".join([label] + [cell(res, k, label, c) for k in group
                                                      for c in cols]) + " |")
        lines.append("")
    lines.append("cr: every result correctly rounded (<= 0.5 ULP); exact: bit-exact "
                 "(piecewise-linear); !: above the contract's bound (forward 2 ULP, "
                 "gradient 4 ULP); ±inf!: wrong result at x = +-inf (the maximum is over "
                 "finite x); NaN!n: n NaN inputs without NaN result; n/a: no such call; "
                 "values confirmed with mpmath at the worst inputs.")
    for name, why in res["skipped"]:
        lines.append(f"{name}: not run ({why}).")
    return "\n".join(lines)


def _count(res, kind):
    if kind == "f32":
        n = res["f32_samples"]
        return "all 2^32 inputs" if n is None else f"{n} random patterns"
    return f"{res['sweep'][kind]:.3g} points per function"


def details(res):
    out = []
    for kind in res["kinds"]:
        out.append(f"\n## {KIND_TITLE[kind]} ({_count(res, kind)})\n")
        for label, name, p in res["cases"]:
            ref = res["stats"].get((kind, label, "reference"))
            if ref is None and R.BY_NAME[name].kind != R.MAXOUT:
                continue
            sc = res["selfcheck"].get((label, str(KIND_DTYPE[kind])))
            w = 1 if kind in ("g32", "g64") else 0
            extra = ""
            if sc and w in sc:
                extra = (f"; reference vs mpmath: {sc[w][0]:.2g} eps of its working dtype, "
                         f"{sc[w][1]:.2g} ULP")
            out.append(f"{label}{extra}")
            for col in res["columns"]:
                st = res["stats"].get((kind, label, col))
                if st is None:
                    continue
                if st["unavailable"] and not st["n"]:
                    out.append(f"  {col:24s} n/a ({st['unavailable']})")
                    continue
                conf = st.get("confirmed")
                if conf:
                    where = (f"max {conf[0]:.4g} ULP (mpmath; fast reference {st['max']:.4g}) "
                             f"at x={conf[1]!r} ({_hex(conf[1], KIND_DTYPE[kind])}), got {conf[2]!r}")
                elif st["worst"]:
                    wv = st["worst"][0]
                    where = f"first inexact at x={wv[1]!r}: got {wv[2]!r}"
                else:
                    where = "all correctly rounded"
                line = (f"  {col:24s} {where}; {st['over_half']} of {st['n']} > 0.5 ULP, "
                        f"{st['over_bound']} > {_bound(kind)}")
                if st["nan_fail"]:
                    line += f"; {st['nan_fail']} NaN inputs without NaN result"
                if st["inf_fail"]:
                    line += (f"; +-inf input not giving the limit: x={st['inf_worst'][0]!r} "
                             f"got {st['inf_worst'][1]!r}")
                if st["near_n"]:
                    nw = st["near_worst"]
                    line += (f"; near roots of f' ({st['near_n']} points): max |error| "
                             f"{st['near_abs_max']:.3g} eps at x={nw[1]!r}")
                out.append(line)
    return "\n".join(out)


def _hex(v, t):
    try:
        if isinstance(v, list):
            return "group"
        u = np.array([v], dtype=t).view(np.uint32 if t == np.float32 else np.uint64)[0]
        return f"0x{int(u):0{8 if t == np.float32 else 16}x}"
    except (TypeError, ValueError, OverflowError):
        return "?"


def timing(res):
    lines = ["", "## Time", ""]
    lines.append(f"wall {res['wall']:.1f} s on {res['workers'] or 1} worker(s)")
    for kind in res["kinds"]:
        secs = {}
        n = 0
        for (k, label, col), st in res["stats"].items():
            if k != kind:
                continue
            secs[col] = secs.get(col, 0.0) + st["seconds"]
            if col == "reference":
                n += st["n"]
        cpu = sum(secs.values())
        per = cpu / max(n, 1) * 1e9
        lines.append(f"{KIND_TITLE[kind]}: {cpu:.1f} CPU s for {n} (function, input) pairs = "
                     f"{per:.1f} ns each (" + ", ".join(f"{c} {s:.1f} s" for c, s in secs.items()) + ")")
        if kind == "f32":
            ncases = len(res["cases"])
            full = per * 1e-9 * (1 << 32) * ncases / max(res["workers"], 1)
            lines.append(f"  full exhaustive float32 run of these {ncases} cases: about "
                         f"{full / 60:.0f} min on {max(res['workers'], 1)} worker(s)")
    return "\n".join(lines)


def to_json(res, file):
    stats = []
    for (kind, label, col), st in res["stats"].items():
        d = {"kind": kind, "dtype": str(KIND_DTYPE[kind]), "case": label, "impl": col}
        d.update({k: v for k, v in st.items() if k not in ("confirmed_all",)})
        stats.append(d)
    import fastact
    doc = {"environment": {"fastact": fastact.config(), "numpy": np.__version__,
                           "python": platform.python_version(), "cpu": platform.processor(),
                           "torch": _torch_version()},
           "isa": list(res["isa"]), "columns": res["columns"], "wall_s": res["wall"],
           "f32_samples": res["f32_samples"], "sweep": res["sweep"],
           "selfcheck": [{"case": c, "dtype": d, "which": w, "rel_eps": v[0], "ulp": v[1], "x": v[2]}
                         for (c, d), ws in res["selfcheck"].items() for w, v in ws.items()],
           "stats": stats, "violations": violations(res),
           "skipped": [{"name": n, "why": w} for n, w in res["skipped"]],
           "table": markdown(res)}
    with open(file, "w") as f:
        json.dump(_clean(doc), f, indent=1, allow_nan=False)
        f.write("\n")
    return doc


def _clean(v):
    """JSON-safe: non-finite floats as "inf"/"-inf"/"nan", tuples as lists."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, np.integer):
        return int(v)
    if v is None or isinstance(v, (str, int, bool)):
        return v
    return repr(v)


def _torch_version():
    try:
        import torch
        return torch.__version__
    except ImportError:
        return None


def main(argv=None):
    a = parse(argv)
    res = run(a)
    print("# fastact accuracy: exhaustive float32, swept float64\n")
    print(f"ISA levels: {', '.join(res['isa']) or 'none (no native backend)'}; columns: "
          f"{', '.join(res['columns'])}")
    print("reference: _accuracy_ref.py (float64 formulas for float32 results, long double "
          "with error-free products for float64 results); its measured error against mpmath "
          "is printed per function below; maxima are re-evaluated with mpmath.")
    print("prelu: leaky_relu with the registry's sample weight; maxout: groups of `pieces` "
          "consecutive inputs, exact against the NaN-propagating max.")
    print()
    print(markdown(res))
    print(details(res))
    print(timing(res))
    v = violations(res)
    print(f"\n{len(v)} result(s) outside the contract's bounds"
          + (":" if v else "."))
    for item in v:
        print(f"  {item['kind']} {item['case']} {item['impl']}: max {item['max_ulp']:.3g} ULP, "
              f"{item['mismatch']} not correctly rounded, {item['nan_fail']} NaN failures, "
              f"{item['inf_fail']} wrong at +-inf")
    if a.json:
        to_json(res, a.json)
    return res


if __name__ == "__main__":
    main()
    sys.exit(0)
