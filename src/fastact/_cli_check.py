"""``fastact check``: a fast self-test of the installed build.

For users who want to trust a deployment (a wheel on a new CPU, a container)
without the test suite.  Everything it checks comes from the registry:

- values: each activation's docstring example (registry ``examples``, derived
  from mpmath by tools/doc_examples.py), forward and backward, in float32 and
  float64;
- special values: every row of the registry's ``specials`` (infinities,
  kinks, saturation), forward and gradient, both dtypes;
- NaN in gives NaN out, for every function and gradient;

on every configuration this installation can run: the native backend at each
SIMD level that was compiled and that this CPU supports (switched with
``_native.set_isa``), and the NumPy backend.  Takes well under a second.
"""

from __future__ import annotations

import math
import types
from typing import Callable, Iterator, List, Tuple

import numpy as np

from . import _api
from . import _registry as R
from ._docstrings import example_calls

DTYPES = (np.float32, np.float64)


class _NumpyIn:
    """``np`` for the example calls, making their arrays in one dtype."""

    def __init__(self, dtype):
        self._dtype = dtype

    def __getattr__(self, name):
        return getattr(np, name)

    def array(self, values, dtype=None):
        return np.array(values, dtype=self._dtype)

    def ones(self, shape, dtype=None):
        return np.ones(shape, dtype=self._dtype)


def _parse(text: str) -> np.ndarray:
    """An ``examples`` output (``array([...])`` or a tuple of them) as float64."""
    value = eval(text, {"array": np.array, "inf": np.inf, "nan": np.nan})  # noqa: S307
    if isinstance(value, tuple):
        value = value[0]
    return np.asarray(value, dtype=np.float64)


def _close(got, want, dtype, printed=False) -> bool:
    """Within a few ULP of ``dtype`` (plus 8-digit printing error if ``printed``);
    NaN equals NaN; infinities and exact zeros must match exactly."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False
    eps = float(np.finfo(dtype).eps)
    rtol = 4 * eps + (1e-8 if printed else 0.0)
    atol = 1e-8 if printed else 0.0
    return bool(np.all(np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)))


def _kwargs(act, overrides=()):
    kw = {p.name: p.sample for p in act.params if p.default is R.REQUIRED}
    kw.update(dict(overrides))
    return kw


def _first(result):
    return result[0] if isinstance(result, tuple) else result


def checks(fns) -> Iterator[Tuple[str, Callable[[], bool]]]:
    """(description, check) pairs over the registry, for one function table."""
    for act in R.ACTIVATIONS:
        fwd, bwd = fns[act.name], fns[act.name + "_backward"]
        for dtype in DTYPES:
            dname = np.dtype(dtype).name
            if act.examples:
                setup, fcall, bcall = example_calls(act)

                def example(setup=setup, call=fcall, dtype=dtype, shown=act.examples[0],
                            backward=False):
                    ns = {"np": _NumpyIn(dtype), "fa": types.SimpleNamespace(**fns)}
                    exec(setup, ns)  # noqa: S102 - registry text
                    if backward and ";" in fcall:  # softmax: the backward takes y
                        exec(fcall.split(";")[0], ns)  # noqa: S102
                    *statements, expression = call.split(";")
                    for statement in statements:
                        exec(statement.strip(), ns)  # noqa: S102
                    got = _first(eval(expression.strip(), ns))  # noqa: S307
                    return got.dtype == dtype and _close(got, _parse(shown), dtype, True)

                yield f"{act.name}(example) {dname}", example
                yield (f"{act.name}_backward(example) {dname}",
                       lambda b=bcall, d=dtype, s=act.examples[1]:
                       example(call=b, dtype=d, shown=s, backward=True))
            for sp in act.specials:
                kw = _kwargs(act, sp.params)
                shown = "".join(f", {k}={v!r}" for k, v in sp.params)
                x = np.array([sp.x], dtype)
                if sp.y is not None:
                    yield (f"{act.name}({sp.x!r}{shown}) {dname} = {sp.y!r}",
                           lambda f=fwd, x=x, kw=kw, y=sp.y, d=dtype:
                           _close(_first(f(x, **kw)), [y], d))
                if sp.grad is not None:
                    yield (f"{act.name}'({sp.x!r}{shown}) {dname} = {sp.grad!r}",
                           lambda f=bwd, x=x, kw=kw, g=sp.grad, d=dtype:
                           _close(_first(f(np.ones_like(x), x, **kw)), [g], d))
            x = np.array([-1.0, math.nan, 2.0, 0.5], dtype)
            kw = _kwargs(act)
            if act.kind in (R.SOFTMAX,):  # a NaN makes its whole slice NaN
                yield (f"{act.name}(NaN) {dname}",
                       lambda f=fwd, x=x, kw=kw: bool(np.isnan(f(x, **kw)).all()))
            else:  # element-wise, prelu, maxout (a NaN group gives NaN)
                at = 0 if act.kind == R.MAXOUT else 1  # maxout: the group [-1, nan]
                yield (f"{act.name}(NaN) {dname}",
                       lambda f=fwd, x=x, kw=kw, at=at: bool(np.isnan(_first(f(x, **kw))[at])))
                if act.kind != R.MAXOUT:
                    yield (f"{act.name}_backward(NaN) {dname}",
                           lambda f=bwd, x=x, kw=kw: bool(np.isnan(
                               _first(f(np.ones_like(x), x, **kw))[1])))


def configurations():
    """(name, function table, set up, tear down) of each configuration here."""
    import fastact
    native = fastact._BACKENDS.get("native")
    if native is not None:
        m = native.m
        in_use = m.isa_in_use()
        usable = m.isa_compiled()[:m.isa_compiled().index(m.isa_best()) + 1] \
            if m.isa_best() in m.isa_compiled() else m.isa_compiled()
        fns = _api.build_functions(native)
        for level in usable:
            yield (f"native {level}", fns, lambda level=level: m.set_isa(level),
                   lambda: m.set_isa(in_use))
    yield "numpy", _api.build_functions(fastact._BACKENDS["numpy"]), None, None


def run(write: Callable[[str], None] = print, quiet: bool = False) -> Tuple[int, List[str]]:
    """Run every check on every configuration; (number run, failures)."""
    total, failures = 0, []
    for name, fns, setup, teardown in configurations():
        if setup is not None:
            setup()
        try:
            count, failed = 0, []
            for text, check in checks(fns):
                count += 1
                try:
                    ok = check()
                except Exception as exc:  # noqa: BLE001 - reported as a failure
                    ok = False
                    text += f" raised {type(exc).__name__}: {exc}"
                if not ok:
                    failed.append(f"{name}: {text}")
        finally:
            if teardown is not None:
                teardown()
        total += count
        failures += failed
        for line in failed:
            write("FAILED " + line)
        if not quiet:
            write(f"{name:<20} {count} checks, {'ok' if not failed else f'{len(failed)} FAILED'}")
    return total, failures


def main(quiet: bool = False) -> int:
    import fastact
    if not quiet:
        cfg = fastact.config()
        write = print
        write(f"fastact {cfg['version']}: backend {cfg['backend']}, SIMD in use "
              f"{cfg['simd']['in_use']}, compiled {', '.join(cfg['simd']['compiled']) or 'none'}, "
              f"OpenMP {'on' if cfg['openmp'] else 'off'}")
    total, failures = run(quiet=quiet)
    if failures:
        print(f"fastact check: {len(failures)} of {total} checks FAILED")
        return 1
    print(f"fastact check: all {total} checks passed")
    return 0
