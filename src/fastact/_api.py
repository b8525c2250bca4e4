"""The Python layer: validation, dtype and layout policy, ``out=``, threads.

Every public function is generated from its registry entry by
:func:`build_functions`; one generic driver per kind of activation
(element-wise, prelu, softmax, maxout) does the work, so the rules of
CONTRACT.md section 2 are written exactly once, here:

- dtypes: float32 -> float32, float64 -> float64, float16 computed in float32
  and returned as float16, bool/integer -> float64; anything else TypeError.
- layouts: inputs become C-contiguous, aligned, native-endian arrays of the
  compute dtype (a copy only where they are not already), so the backends see
  one layout.
- ``out``: checked before anything is computed (so nothing is written when a
  call raises); written directly when it is C-contiguous in the compute dtype,
  else through a temporary.  An input that overlaps ``out`` other than as the
  very same view is copied first (NumPy's rule); the very same view is the
  in-place case, which every kernel supports.

Backends receive validated parameters and prepared arrays only; they live in
:class:`NativeBackend` (the compiled ``_native`` module) and
:class:`NumpyBackend` (``_numpy_backend``).
"""

from __future__ import annotations

import math
import numbers
import operator
import os
import re
import sys
import warnings

import numpy as np

from . import _registry as R
from . import _threads
from ._docstrings import backward_doc, forward_doc

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_index
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import normalize_axis_index

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


# ---------------------------------------------------------------------------
# Arrays in

def _asarray(fname, what, a):
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: {what} has unsupported dtype {arr.dtype}; expected a "
                        "real floating-point, integer or bool array")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{fname}: {what} has unsupported dtype {arr.dtype}; fastact computes "
                        "in float32 or float64 (cast with .astype(np.float64))")
    return arr


def _dtype_rule(dtype):
    """(compute dtype, result dtype) of one input dtype (already checked)."""
    if dtype.kind == "f" and dtype.itemsize == 2:
        return _F32, _F16
    if dtype.kind == "f" and dtype.itemsize == 4:
        return _F32, _F32
    return _F64, _F64


_DTYPE_RULES = {}  # dtype -> _dtype_rule(dtype), filled on first use


def _dtypes(*arrays):
    """(compute dtype, result dtype) for the given input arrays."""
    rules = []
    for a in arrays:
        rule = _DTYPE_RULES.get(a.dtype)
        if rule is None:
            rule = _DTYPE_RULES[a.dtype] = _dtype_rule(a.dtype)
        rules.append(rule)
    if len(rules) == 1:
        return rules[0]
    ct = _F64 if any(r[0] is _F64 for r in rules) else _F32
    rt = _F16 if all(r[1] is _F16 for r in rules) else ct
    return ct, rt


def _prepared(a, ct):
    """``a`` as a C-contiguous, aligned, native-endian array of dtype ``ct``."""
    if a.dtype == ct:
        flags = a.flags
        if flags.c_contiguous and flags.aligned:
            return a
    return np.require(a, dtype=ct, requirements=("C", "A"))


def _same_shape(fname, shape, what, other):
    if other.shape != shape:
        raise ValueError(f"{fname}: {what} has shape {other.shape}, expected {shape} "
                         "(the shape of the forward result)")


def _check_out(fname, out, shape, rt):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fname}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype.type is not rt.type:
        raise TypeError(f"{fname}: out has dtype {out.dtype}, expected {rt}")
    if out.shape != shape:
        raise ValueError(f"{fname}: out has shape {out.shape}, expected {shape}")
    if not out.flags.writeable:
        raise ValueError(f"{fname}: out is read-only")
    return out


def _same_view(a, b):
    return a is b or (a.shape == b.shape and a.dtype == b.dtype
                      and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _destination(out, ct, shape, inputs):
    """The array the backend writes, and the inputs made safe against overlap."""
    if out is not None and out.dtype == ct:
        flags = out.flags
        if flags.c_contiguous and flags.aligned:
            safe = tuple(a.copy() if np.may_share_memory(a, out) and not _same_view(a, out)
                         else a for a in inputs)
            return out, safe
    return np.empty(shape, ct), inputs


def _apart(a, dest):
    """``a`` (a bias or prelu's weight), copied if the backend's destination may
    overlap it: the result is then as if it had been copied first (NumPy's rule)."""
    if a is not None and np.may_share_memory(a, dest):
        return a.copy()
    return a


def _finish(dest, out, rt):
    if out is None:
        if dest.dtype != rt:
            dest = _cast(dest, rt)
        return dest[()] if dest.ndim == 0 else dest
    if dest is not out:
        if dest.dtype == out.dtype:
            np.copyto(out, dest)
        else:
            with np.errstate(over="ignore"):  # see _cast
                np.copyto(out, dest, casting="unsafe")
    return out


def _cast(a, dtype):
    # The float32 -> float16 rounding may overflow to inf: that is the correctly
    # rounded float16 result, not an error, so NumPy's cast warning is silenced.
    with np.errstate(over="ignore"):
        return a.astype(dtype)


def _bias(fname, bias, shape, ct):
    """Bias as a 1-D compute-dtype array of length shape[-1] (or 1), or None."""
    if bias is None:
        return None
    b = np.asarray(bias)
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: bias has unsupported dtype {b.dtype}")
    if isinstance(bias, np.ndarray) and b.ndim and not np.can_cast(b.dtype, ct, "safe"):
        raise TypeError(f"{fname}: bias has dtype {b.dtype} but x computes in {ct}; "
                        f"pass a bias of x's dtype")
    if b.ndim == 0:
        b = b.reshape(1)
    elif b.ndim != 1 or not shape or b.shape[0] != shape[-1]:
        want = f"length x.shape[-1] = {shape[-1]}" if shape else "a scalar (x is 0-d)"
        raise ValueError(f"{fname}: bias must be a scalar or a 1-D array of {want}, "
                         f"got shape {b.shape}")
    with np.errstate(all="ignore"):
        return _prepared(b, ct)


def _axis(fname, axis, ndim):
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{fname}: axis must be an integer, got {type(axis).__name__}") from None
    return normalize_axis_index(axis, ndim, fname)


def _split(shape, axis):
    """(outer, L, inner) of a C-contiguous array around ``axis``."""
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


# ---------------------------------------------------------------------------
# Parameters

def _check_params(act, fname, values):
    """Validated {name: value} for the registry params of ``act`` (not axis/array)."""
    checked = {}
    for param, value in zip(act.params, values):
        if param.kind in ("axis", "array"):
            continue
        checked[param.name] = _check_param(fname, param, value)
    for predicate, message in act.constraints:
        if not predicate(checked):
            shown = ", ".join(f"{k}={v!r}" for k, v in checked.items())
            raise ValueError(f"{fname}: {message}, got {shown}")
    return checked


def _check_param(fname, param, value):
    name = param.name
    if param.kind == "choice":
        if not isinstance(value, str) or value not in param.choices:
            raise ValueError(f"{fname}: {name} must be {param.expect}, got {value!r}")
        return value
    if param.kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{fname}: {name} must be True or False, got {value!r}")
        return bool(value)
    if type(value) is float and param.kind == "float":
        pass  # the common case, without the ABC check below (~0.4 us)
    elif param.kind == "int":
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{fname}: {name} must be an integer, got {value!r}")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{fname}: {name} must be an integer, got {value!r}") from None
    else:
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
            raise TypeError(f"{fname}: {name} must be a real number, got {value!r}")
        value = float(value)
    if param.check is not None and not param.check(value):
        raise ValueError(f"{fname}: {name} must be {param.expect}, got {value!r}")
    return value


def _native_params(act, p):
    """(tuple of doubles, key) for the C kernels, in registry order."""
    vec = []
    key = 0
    for param in act.params:
        if param.native == "p":
            value = p[param.name]
            vec.append(float(param.choices.index(value)) if param.kind == "choice"
                       else float(value))
        elif param.native == "key":
            key = p[param.name]
    return tuple(vec), key


# ---------------------------------------------------------------------------
# Backends

class NumpyBackend:
    """Pure NumPy; also the reference the native backend is tested against."""

    name = "numpy"

    def __init__(self):
        from . import _numpy_backend
        self.m = _numpy_backend

    def _fn(self, act, suffix):
        return getattr(self.m, f"{act.name}_{suffix}")

    @staticmethod
    def _biased(x, bias):
        if bias is None:
            return x
        with np.errstate(all="ignore"):
            return x + bias

    def forward(self, act, x, out, bias, p):
        out[...] = self._fn(act, "forward")(self._biased(x, bias), p)

    def backward(self, act, g, x, out, bias, p):
        out[...] = self._fn(act, "backward")(g, self._biased(x, bias), p)

    def backward_y(self, act, g, y, out, p):
        out[...] = self._fn(act, "backward_y")(g, y, p)

    def prelu(self, x, w, out, bias, dims, p):
        z = self._biased(x, bias).reshape(dims)
        out.reshape(dims)[...] = self.m.prelu_forward(z, w, p)

    def prelu_backward(self, g, x, w, out, gw, bias, dims, p):
        z = self._biased(x, bias).reshape(dims)
        gi, gw[...] = self.m.prelu_backward(g.reshape(dims), z, w, p)
        out.reshape(dims)[...] = gi

    def softmax(self, act, x, out, dims, p):
        out.reshape(dims)[...] = self._fn(act, "forward")(x.reshape(dims), p)

    def softmax_backward(self, act, g, y, out, dims, p):
        out.reshape(dims)[...] = self._fn(act, "backward")(g.reshape(dims), y.reshape(dims), p)

    def maxout(self, x, out, dims, p):
        outer, K, pieces, inner = dims
        out.reshape(outer, K, inner)[...] = self.m.maxout_forward(x.reshape(dims), p)

    def maxout_backward(self, g, x, out, dims, p):
        outer, K, pieces, inner = dims
        out.reshape(dims)[...] = self.m.maxout_backward(g.reshape(outer, K, inner),
                                                        x.reshape(dims), p)


class NativeBackend:
    """The compiled kernels (``_native``): OpenMP chunks over SIMD-friendly C."""

    name = "native"

    def __init__(self, module):
        self.m = module
        self._empty = {_F32: np.empty(0, _F32), _F64: np.empty(0, _F64)}

    def _bias(self, bias, dtype):
        return self._empty[dtype] if bias is None else bias

    def forward(self, act, x, out, bias, p):
        vec, key = _native_params(act, p)
        self.m.forward(_OP_CODES[act.native_op(p)], x.reshape(-1), out.reshape(-1),
                       self._bias(bias, x.dtype), vec, key,
                       _threads.threads_for(x.size, not act.exact))

    def fast_ops(self, act):
        """{form: _native.FastOp} of an element-wise activation with its
        default parameters (form None, or each choice of a native="op"
        parameter), or None where the activation has a generator key (rrelu);
        {None: _native.FastSoftmax} of softmax and log_softmax, and
        {None: _native.FastPrelu} / {None: _native.FastMaxout}."""
        if act.kind == R.SOFTMAX:
            if not hasattr(self.m, "FastSoftmax"):  # an extension older than this file
                return None
            return {None: self.m.FastSoftmax(act.name == "log_softmax", _threads)}
        if act.kind in (R.PRELU, R.MAXOUT):
            cls = getattr(self.m, "FastPrelu" if act.kind == R.PRELU else "FastMaxout", None)
            return None if cls is None else {None: cls(_threads)}
        if (not hasattr(self.m, "FastOp")  # an extension older than this file
                or any(p.native == "key" or p.default is R.REQUIRED for p in act.params)):
            return None
        values = _check_params(act, act.name, [param.default for param in act.params])
        form = next((param for param in act.params if param.native == "op"), None)
        fast = {}
        for choice in (form.choices if form is not None else (None,)):
            if form is not None:
                values[form.name] = choice
            vec, key = _native_params(act, values)
            fast[choice] = self.m.FastOp(_OP_CODES[act.native_op(values)], vec, key,
                                         _threads, not act.exact)
        return fast

    def forward_small(self, act, x, out, p):
        """The fast path of small calls (see _ElementwiseDriver.forward): x and
        out C-contiguous, aligned, native, one dtype and shape; False if out
        partially overlaps x (nothing computed)."""
        vec, key = _native_params(act, p) if act.params else ((), 0)
        return self.m.forward_contiguous(_OP_CODES[act.native_op(p)], x, out, x.dtype == _F64,
                                         vec, key, _threads.threads_for(x.size, not act.exact))

    def backward(self, act, g, x, out, bias, p):
        vec, key = _native_params(act, p)
        self.m.backward(_OP_CODES[act.native_op(p)], g.reshape(-1), x.reshape(-1), out.reshape(-1),
                        self._bias(bias, x.dtype), vec, key,
                        _threads.threads_for(x.size, not act.exact))

    def backward_y(self, act, g, y, out, p):
        vec, _ = _native_params(act, p)
        self.m.backward_y(_OP_CODES[act.native_op(p)], g.reshape(-1), y.reshape(-1), out.reshape(-1),
                          vec, _threads.threads_for(y.size, not act.exact))

    def prelu(self, x, w, out, bias, dims, p):
        self.m.prelu(x.reshape(-1), w, out.reshape(-1), self._bias(bias, x.dtype), *dims,
                     _threads.threads_for(x.size))

    def prelu_backward(self, g, x, w, out, gw, bias, dims, p):
        self.m.prelu_backward(g.reshape(-1), x.reshape(-1), w, out.reshape(-1), gw,
                              self._bias(bias, x.dtype), *dims, _threads.threads_for(x.size))

    def softmax(self, act, x, out, dims, p):
        self.m.softmax(act.name == "log_softmax", x.reshape(-1), out.reshape(-1), *dims,
                       _threads.threads_for(x.size, True))

    def softmax_backward(self, act, g, y, out, dims, p):
        self.m.softmax_backward(act.name == "log_softmax", g.reshape(-1), y.reshape(-1),
                                out.reshape(-1), *dims, _threads.threads_for(y.size, True))

    def maxout(self, x, out, dims, p):
        outer, K, pieces, inner = dims
        self.m.maxout(x.reshape(-1), out.reshape(-1), outer, K, pieces, inner,
                      _threads.threads_for(x.size))

    def maxout_backward(self, g, x, out, dims, p):
        outer, K, pieces, inner = dims
        self.m.maxout_backward(g.reshape(-1), x.reshape(-1), out.reshape(-1), outer, K,
                               pieces, inner, _threads.threads_for(x.size))


# ---------------------------------------------------------------------------
# Drivers: one per kind of activation

class _Driver:
    def __init__(self, act, backend):
        self.act = act
        self.backend = backend
        self.name = act.name
        self.bname = act.name + "_backward"


#: op codes of the element-wise C ops, looked up once.
_OP_CODES = {op: R.op_code(op) for op in R.NATIVE_OPS}

#: dtypes of the fast path: native-endian float32/float64 (byte-swapped
#: dtypes compare unequal).
_FAST_DTYPES = frozenset((_F32, _F64))


def _fast_out(x, out):
    """The destination of the fast path for `out`, or None if the call must
    take the general path (which validates, copies and raises as documented)."""
    if out is None:
        return np.empty_like(x)
    if (type(out) is np.ndarray and out.dtype == x.dtype and out.shape == x.shape
            and out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
        return out
    return None


class _ElementwiseDriver(_Driver):
    def forward(self, x, values, out, bias):
        fname = self.name
        p = _check_params(self.act, fname, values)
        # Fast path for the common call -- a C-contiguous float ndarray, no
        # bias -- that skips the general layout machinery below (a 16-element
        # call costs ~1 us instead of ~4); results are the same bits.
        if (bias is None and type(x) is np.ndarray and x.dtype in _FAST_DTYPES
                and x.size and hasattr(self.backend, "forward_small")
                and x.flags.c_contiguous and x.flags.aligned):
            dest = _fast_out(x, out)
            if dest is not None and self.backend.forward_small(self.act, x, dest, p):
                return dest
        x = _asarray(fname, "x", x)
        ct, rt = _dtypes(x)
        b = _bias(fname, bias, x.shape, ct)
        out = _check_out(fname, out, x.shape, rt)
        dest, (xa,) = _destination(out, ct, x.shape, (_prepared(x, ct),))
        if xa.size:
            self.backend.forward(self.act, xa, dest, _apart(b, dest), p)
        return _finish(dest, out, rt)

    def backward(self, g, x, values, y, out, bias):
        fname = self.bname
        if self.act.backward_from_y:
            if (x is None) == (y is None):
                raise TypeError(f"{fname}: pass exactly one of x (the input) and y "
                                "(the forward result)")
        elif x is None:
            raise TypeError(f"{fname}: missing the input x")
        p = _check_params(self.act, fname, values)
        g = _asarray(fname, "grad_output", g)
        src = _asarray(fname, "x" if y is None else "y", x if y is None else y)
        _same_shape(fname, src.shape, "grad_output", g)
        ct, rt = _dtypes(g, src)
        if y is not None and bias is not None:
            raise ValueError(f"{fname}: bias applies to x; it cannot be combined with y=")
        b = _bias(fname, bias, src.shape, ct)
        out = _check_out(fname, out, src.shape, rt)
        dest, (ga, sa) = _destination(out, ct, src.shape, (_prepared(g, ct), _prepared(src, ct)))
        if sa.size:
            if y is None:
                self.backend.backward(self.act, ga, sa, dest, _apart(b, dest), p)
            else:
                self.backend.backward_y(self.act, ga, sa, dest, p)
        return _finish(dest, out, rt)


class _PreluDriver(_Driver):
    def _layout(self, fname, x, weight, axis, ct):
        """(outer, C, inner) and the weight as a 1-D compute-dtype array."""
        w = np.asarray(weight)
        if w.dtype.kind not in "biuf":
            raise TypeError(f"{fname}: weight has unsupported dtype {w.dtype}")
        ax = _axis(fname, axis, x.ndim) if x.ndim >= 2 else None
        # one channel: every element its own row, so that the kernels split
        # the rows over threads ((1, 1, n) ran on one thread)
        if w.ndim == 0:
            dims = (x.size, 1, 1)
        else:
            channels = x.shape[ax] if ax is not None else 1
            if w.ndim != 1 or w.shape[0] != channels:
                where = (f"x.shape[{ax}] = {channels}" if ax is not None
                         else "1 (x has fewer than 2 dimensions)")
                raise ValueError(f"{fname}: weight must be a scalar or a 1-D array of "
                                 f"length {where}, got shape {w.shape}")
            dims = _split(x.shape, ax) if ax is not None else (x.size, 1, 1)
        with np.errstate(all="ignore"):
            return dims, _prepared(w.reshape(-1), ct)

    def forward(self, x, weight, axis, out, bias):
        fname = self.name
        x = _asarray(fname, "x", x)
        ct, rt = _dtypes(x)
        dims, w = self._layout(fname, x, weight, axis, ct)
        b = _bias(fname, bias, x.shape, ct)
        out = _check_out(fname, out, x.shape, rt)
        dest, (xa,) = _destination(out, ct, x.shape, (_prepared(x, ct),))
        if xa.size:
            self.backend.prelu(xa, _apart(w, dest), dest, _apart(b, dest), dims, {})
        return _finish(dest, out, rt)

    def backward(self, g, x, weight, axis, out, bias):
        fname = self.bname
        g = _asarray(fname, "grad_output", g)
        x = _asarray(fname, "x", x)
        _same_shape(fname, x.shape, "grad_output", g)
        ct, rt = _dtypes(g, x)
        dims, w = self._layout(fname, x, weight, axis, ct)
        b = _bias(fname, bias, x.shape, ct)
        out = _check_out(fname, out, x.shape, rt)
        dest, (ga, xa) = _destination(out, ct, x.shape, (_prepared(g, ct), _prepared(x, ct)))
        gw = np.zeros(w.shape, ct)
        if xa.size:
            self.backend.prelu_backward(ga, xa, _apart(w, dest), dest, gw, _apart(b, dest),
                                        dims, {})
        gw = (gw if gw.dtype == rt else _cast(gw, rt)).reshape(np.shape(weight))
        return _finish(dest, out, rt), gw


class _SoftmaxDriver(_Driver):
    def forward(self, x, axis, out):
        fname = self.name
        x = _asarray(fname, "x", x)
        ct, rt = _dtypes(x)
        dims = _split(x.shape, _axis(fname, axis, x.ndim))
        out = _check_out(fname, out, x.shape, rt)
        dest, (xa,) = _destination(out, ct, x.shape, (_prepared(x, ct),))
        if xa.size:
            self.backend.softmax(self.act, xa, dest, dims, {})
        return _finish(dest, out, rt)

    def backward(self, g, y, axis, out):
        fname = self.bname
        g = _asarray(fname, "grad_output", g)
        y = _asarray(fname, "y", y)
        _same_shape(fname, y.shape, "grad_output", g)
        ct, rt = _dtypes(g, y)
        dims = _split(y.shape, _axis(fname, axis, y.ndim))
        out = _check_out(fname, out, y.shape, rt)
        dest, (ga, ya) = _destination(out, ct, y.shape, (_prepared(g, ct), _prepared(y, ct)))
        if ya.size:
            self.backend.softmax_backward(self.act, ga, ya, dest, dims, {})
        return _finish(dest, out, rt)


class _MaxoutDriver(_Driver):
    def _layout(self, fname, x, pieces, axis):
        pieces = _check_param(fname, self.act.params[0], pieces)
        ax = _axis(fname, axis, x.ndim)
        length = x.shape[ax]
        if length % pieces:
            raise ValueError(f"{fname}: x.shape[{ax}] = {length} is not divisible by "
                             f"pieces = {pieces}")
        outer, _, inner = _split(x.shape, ax)
        reduced = x.shape[:ax] + (length // pieces,) + x.shape[ax + 1:]
        return (outer, length // pieces, pieces, inner), reduced

    def forward(self, x, pieces, axis, out):
        fname = self.name
        x = _asarray(fname, "x", x)
        ct, rt = _dtypes(x)
        dims, shape = self._layout(fname, x, pieces, axis)
        out = _check_out(fname, out, shape, rt)
        dest, (xa,) = _destination(out, ct, shape, (_prepared(x, ct),))
        if dest.size:
            self.backend.maxout(xa, dest, dims, {})
        return _finish(dest, out, rt)

    def backward(self, g, x, pieces, axis, out):
        fname = self.bname
        g = _asarray(fname, "grad_output", g)
        x = _asarray(fname, "x", x)
        dims, shape = self._layout(fname, x, pieces, axis)
        _same_shape(fname, shape, "grad_output", g)
        ct, rt = _dtypes(g, x)
        out = _check_out(fname, out, x.shape, rt)
        dest, (ga, xa) = _destination(out, ct, x.shape, (_prepared(g, ct), _prepared(x, ct)))
        if dest.size:
            self.backend.maxout_backward(ga, xa, dest, dims, {})
        return _finish(dest, out, rt)


_DRIVERS = {R.ELEMENTWISE: _ElementwiseDriver, R.PRELU: _PreluDriver,
            R.SOFTMAX: _SoftmaxDriver, R.MAXOUT: _MaxoutDriver}


# ---------------------------------------------------------------------------
# Function factory: real signatures (for help() and IDEs), generated source

def _param_text(param):
    return param.name if param.default is R.REQUIRED else f"{param.name}={param.default!r}"


def _is_default(param):
    """Source of a test that the parameter holds its default value, of its
    own type (a bool for a float is an error the general path reports)."""
    n, d = param.name, param.default
    if param.kind == "bool":
        return f"{n} is {d!r}"
    kind = {"float": "float", "int": "int", "choice": "str"}[param.kind]
    return f"(type({n}) is {kind} and {n} == {d!r})"


def _fast_lines(act):
    """The first lines of an element-wise function's body (forward, backward):
    a call with the default parameters (any form of a native="op" choice) and
    no bias goes to the backend's FastOp (``_fast``, by form; a gradient given
    y instead of x to its backward_y), which returns None for every call it
    does not serve.  A 16-element call then
    costs about as much as a NumPy ufunc's."""
    cond = ["bias is None"] + [_is_default(p) for p in act.params if p.native != "op"]
    form = next((p.name for p in act.params if p.native == "op"), None)
    pick = ""
    if form:  # _fast is {choice: FastOp}
        pick = f"    _f = _fast.get({form}) if type({form}) is str else None\n"
        cond.insert(0, "_f is not None")
    f = "_f" if form else "_fast"
    test = " and ".join(cond)
    tail = "        if _r is not None:\n            return _r\n"
    fwd = f"{pick}    if {test}:\n        _r = {f}.forward(x, out)\n{tail}"
    call = f"{f}.backward(grad_output, x, out)"
    if act.backward_from_y:  # exactly one of x and y, else the general path raises
        call = (f"({call} if y is None else {f}.backward_y(grad_output, y, out)\n"
                f"              if x is None else None)")
    bwd = f"{pick}    if {test}:\n        _r = {call}\n{tail}"
    return fwd, bwd


def _signatures(act, fast=False):
    """(forward source, backward source) of the public functions of ``act``;
    with ``fast``, element-wise ones start with :func:`_fast_lines`."""
    pos = [p for p in act.params if not p.keyword_only]
    kw = [p for p in act.params if p.keyword_only]
    names = [p.name for p in act.params]
    pos_text = "".join(", " + _param_text(p) for p in pos)
    kw_text = "".join(_param_text(p) + ", " for p in kw)
    values = "(" + "".join(n + ", " for n in names) + ")"
    n, b = act.name, act.name + "_backward"
    if act.kind == R.ELEMENTWISE:
        x_arg = "x=None" if act.backward_from_y else "x"
        y_arg = "y=None, " if act.backward_from_y else ""
        y_val = "y" if act.backward_from_y else "None"
        fast_f, fast_b = _fast_lines(act) if fast else ("", "")
        return (f"def {n}(x{pos_text}, *, {kw_text}out=None, bias=None):\n{fast_f}"
                f"    return _driver.forward(x, {values}, out, bias)\n",
                f"def {b}(grad_output, {x_arg}{pos_text}, *, {y_arg}{kw_text}out=None, "
                f"bias=None):\n{fast_b}"
                f"    return _driver.backward(grad_output, x, {values}, {y_val}, out, bias)\n")
    # the other kinds: (positional arguments of the forward, of the backward,
    # and keywords of both), the same for the fast path (_fast: the
    # backend's FastSoftmax/FastPrelu/FastMaxout, None for a call it does
    # not serve) and the driver
    fwd_args, bwd_args, keywords = {
        R.PRELU: ("x, weight, axis", "grad_output, x, weight, axis", ("out", "bias")),
        R.SOFTMAX: ("x, axis", "grad_output, y, axis", ("out",)),
        R.MAXOUT: ("x, pieces, axis", "grad_output, x, pieces, axis", ("out",)),
    }[act.kind]
    kw_def = kw_text + ", ".join(f"{k}=None" for k in keywords)
    kw_pass = ", ".join(keywords)

    def fast_lines(method, args):
        if not fast:
            return ""
        lines = [f"_r = _fast.{method}({args}, out)", "if _r is not None:", "    return _r"]
        if "bias" in keywords:
            lines = ["if bias is None:"] + ["    " + line for line in lines]
        return "".join(f"    {line}\n" for line in lines)

    first = bwd_args.split(", ")[1]  # x or y
    return (f"def {n}(x{pos_text}, *, {kw_def}):\n"
            + fast_lines("forward", fwd_args)
            + f"    return _driver.forward({fwd_args}, {kw_pass})\n",
            f"def {b}(grad_output, {first}{pos_text}, *, {kw_def}):\n"
            + fast_lines("backward", bwd_args)
            + f"    return _driver.backward({bwd_args}, {kw_pass})\n")


#: Arguments that may hold arrays; a Dask array in any of them sends the call
#: to ``_dask`` (checked only once dask.array has been imported).
_ARRAY_ARGUMENTS = ("grad_output", "x", "y", "weight", "bias")


def _route_dask(source, name):
    """``source`` with one generic first line: Dask arrays go to ``_dask.call``."""
    head, body = source.split("\n", 1)
    arrays = [a for a in _ARRAY_ARGUMENTS if re.search(rf"\b{a}\b", head.split("(", 1)[1])]
    check = (f"    if 'dask.array' in _modules and _dask.any_dask({', '.join(arrays)}):\n"
             f"        return _dask.call({name!r}, locals())\n")
    return head + "\n" + check + body


def _make(source, name, driver, doc, fast=None):
    from . import _dask
    if fast is not None and list(fast) == [None]:
        fast = fast[None]
    namespace = {"_driver": driver, "_modules": sys.modules, "_dask": _dask, "_fast": fast}
    source = _route_dask(source, name)
    exec(compile(source, f"<fastact.{name}>", "exec"), namespace)
    fn = namespace[name]
    fn.__doc__ = doc
    fn.__module__ = "fastact"
    fn.__qualname__ = name
    return fn


def build_functions(backend):
    """{name: function} of every public activation function, bound to ``backend``."""
    functions = {}
    for act in R.ACTIVATIONS:
        driver = _DRIVERS[act.kind](act, backend)
        fast = backend.fast_ops(act) if hasattr(backend, "fast_ops") else None
        fwd_src, bwd_src = _signatures(act, fast is not None)
        functions[act.name] = _make(fwd_src, act.name, driver, forward_doc(act), fast)
        bname = act.name + "_backward"
        functions[bname] = _make(bwd_src, bname, driver, backward_doc(act), fast)
    return functions


# ---------------------------------------------------------------------------
# Backend selection (CONTRACT.md section 6)

def _load_native():
    import importlib.util
    if importlib.util.find_spec(__package__ + "._native") is None:
        raise ImportError("fastact was installed without its compiled extension "
                          "(no working C compiler when it was built)")
    from . import _native
    isa = os.environ.get("FASTACT_ISA", "").strip().lower()
    if isa:
        try:
            _native.set_isa(isa)
        except ValueError as exc:
            warnings.warn(f"fastact: FASTACT_ISA={isa!r} ignored: {exc}", RuntimeWarning,
                          stacklevel=4)
    _threads._omp_max_threads = _native.omp_max_threads
    _threads._parallel_used = _native.parallel_used
    return NativeBackend(_native)


def load_backends():
    """(active backend, {name: backend} of all that loaded)."""
    choice = os.environ.get("FASTACT_BACKEND", "").strip().lower()
    if choice not in ("", "native", "numpy"):
        raise ImportError(f"FASTACT_BACKEND must be 'native' or 'numpy', got {choice!r}")
    backends = {"numpy": NumpyBackend()}
    try:
        backends["native"] = _load_native()
    except ImportError as exc:
        if choice == "native":
            raise ImportError(f"FASTACT_BACKEND=native but the compiled extension cannot be "
                              f"imported: {exc}") from exc
        if choice == "":
            warnings.warn(f"fastact: the compiled extension cannot be imported ({exc}); "
                          "using the NumPy backend", RuntimeWarning, stacklevel=3)
    active = backends["numpy"] if choice == "numpy" else backends.get("native", backends["numpy"])
    return active, backends
