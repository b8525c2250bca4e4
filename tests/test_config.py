"""Backends and configuration (CONTRACT.md sections 3 and 6).

get_backend / FASTACT_BACKEND / falling back with one warning when the
extension cannot be imported; FASTACT_ISA=baseline; config() and
show_config(); loading fastact leaves the floating-point environment alone
and subnormals survive every function.  Anything that depends on the
environment at import runs in a fresh interpreter.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import calls
import fastact
from conftest import (ACTIVATIONS, BACKEND_NAMES, ELEMENTWISE, functions_for, ids,
                      usable_isa_levels)
from fastact import _registry as R

SRC = os.path.dirname(os.path.dirname(fastact.__file__))
ENV_VARS = ("FASTACT_BACKEND", "FASTACT_ISA", "FASTACT_NUM_THREADS", "OMP_NUM_THREADS")

needs_native = pytest.mark.skipif("native" not in BACKEND_NAMES,
                                  reason="the native backend is not built")


def run_python(code, env_updates=(), timeout=120, check=True):
    """Run ``code`` in a fresh interpreter that imports this fastact."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(dict(env_updates))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# ---------------------------------------------------------------------------
# Backend selection

def test_get_backend_names_the_active_one():
    name = fastact.get_backend()
    assert name in ("native", "numpy")
    assert name in BACKEND_NAMES
    assert fastact.config()["backend"] == name
    # The top-level functions are those of the named backend.
    x = np.linspace(-3, 3, 101)
    assert np.array_equal(fastact.gelu(x), functions_for(name).gelu(x))


@needs_native
def test_native_is_the_default_when_built():
    proc = run_python("import fastact; print(fastact.get_backend())")
    assert proc.stdout.strip() == "native"
    assert proc.stderr == ""


def test_fastact_backend_numpy():
    code = """
        import warnings
        warnings.simplefilter("error")
        import numpy as np, fastact
        x = np.linspace(-3, 3, 7)
        print(fastact.get_backend(), fastact.config()["backend"])
        print(fastact.relu(x).tolist() == np.maximum(x, 0).tolist())
    """
    proc = run_python(code, {"FASTACT_BACKEND": "numpy"})
    assert proc.stdout.split() == ["numpy", "numpy", "True"]


@needs_native
def test_fastact_backend_native():
    proc = run_python("import fastact; print(fastact.get_backend())",
                      {"FASTACT_BACKEND": "native"})
    assert proc.stdout.strip() == "native"


FALLBACK = """
import importlib.abc, importlib.machinery, sys, warnings

class Refuse(importlib.abc.MetaPathFinder):
    # MODE "missing": the module is not found; "broken": found, but loading
    # it fails as a build for another CPU or Python would.
    def find_spec(self, name, path=None, target=None):
        if name != "fastact._native":
            return None
        if MODE == "missing":
            raise ModuleNotFoundError("No module named 'fastact._native'", name=name)
        class Broken(importlib.abc.Loader):
            def create_module(self, spec):
                raise ImportError("_native.so: undefined symbol: GOMP_parallel")
            def exec_module(self, module):
                pass
        return importlib.machinery.ModuleSpec(name, Broken())

sys.meta_path.insert(0, Refuse())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import fastact
    x = np.linspace(-3, 3, 7)
    y = fastact.sigmoid(x)
    fastact.softmax(x)
    fastact.gelu_backward(x, x)
print(len(caught), fastact.get_backend(), fastact.config()["backend"])
print(" | ".join(f"{w.category.__name__}: {w.message}" for w in caught))
print(float(abs(y - 1 / (1 + np.exp(-x))).max()) < 1e-15)
"""


@pytest.mark.parametrize("mode", ["missing", "broken"])
def test_fallback_to_numpy_with_one_warning(mode):
    """No extension: the NumPy backend, one warning at import and none per call."""
    proc = run_python(f"MODE = {mode!r}\n" + FALLBACK)
    counts, messages, correct = proc.stdout.splitlines()[-3:]
    count, backend, backend_in_config = counts.split()
    assert (backend, backend_in_config) == ("numpy", "numpy"), proc.stdout
    assert count == "1", f"expected exactly one warning, got: {messages}"
    assert "fastact" in messages and "numpy" in messages.lower()
    assert correct == "True"


# ---------------------------------------------------------------------------
# FASTACT_ISA

ISA_SCRIPT = """
import json, sys
import numpy as np
import fastact
from fastact import _registry as R
sys.path.insert(0, {tests!r})
import calls

import types
from fastact import _api
ref_fns = types.SimpleNamespace(**_api.build_functions(fastact._BACKENDS["numpy"]))
results = {{}}
rng = np.random.default_rng(7)
for dtype in (np.float32, np.float64):
    for act in R.ACTIVATIONS:
        shape = calls.fit_shape(act, (3, 1001))
        lo, hi = act.domain
        x = rng.uniform(lo, hi, shape).astype(dtype)
        g = rng.uniform(-2, 2, calls.result_shape(act, shape)).astype(dtype)
        fwd = calls.forward(fastact, act, x)
        # softmax's backward takes y: the same y (the NumPy backend's) for
        # both levels, else a 1-ULP difference of y is amplified by g - s
        y = calls.forward(ref_fns, act, x) if act.kind == R.SOFTMAX else x
        bwd = calls.backward(fastact, act, g, y)
        for key, value in (("forward", fwd), ("backward", bwd)):
            results[f"{{act.name}} {{np.dtype(dtype).name}} {{key}}"] = value
np.savez({path!r}, **results)
print(json.dumps(fastact.config()["simd"]))
"""


@needs_native
def test_fastact_isa_levels(tmp_path):
    """FASTACT_ISA selects each level this CPU runs, and every level computes
    what the baseline computes within the contract's bounds."""
    tests = os.path.dirname(os.path.abspath(__file__))
    runs = {}
    for isa in [""] + usable_isa_levels():
        path = str(tmp_path / f"isa{isa or 'default'}.npz")
        proc = run_python(ISA_SCRIPT.format(tests=tests, path=path), {"FASTACT_ISA": isa})
        runs[isa] = (json.loads(proc.stdout.strip().splitlines()[-1]), np.load(path))
        assert "Warning" not in proc.stderr, proc.stderr
        assert runs[isa][0]["in_use"] == (isa or runs[isa][0]["cpu_best"])
    simd_base, base = runs["baseline"]
    assert "baseline" in simd_base["compiled"]
    # The levels differ where x86-64-v3/v4 fuse a*b + c into an FMA (setup.py's
    # fp-contract=fast); each level's own accuracy is checked by the whole
    # suite run under each level in CI, so here they may differ from the
    # baseline by at most the contract's bounds: 2 ULP forward, 4 backward.
    for isa in usable_isa_levels()[1:]:
        _, other = runs[isa]
        for key in other.files:
            d = calls.ulp_distance(base[key], other[key])
            bound = 4 if "backward" in key else 2
            assert d.max() <= bound, f"{key}: baseline and {isa} differ by {d.max()} ULP"


# ---------------------------------------------------------------------------
# config() and show_config()

def test_config_dict():
    cfg = fastact.config()
    assert cfg["version"] == fastact.__version__
    assert cfg["backend"] == fastact.get_backend()
    assert cfg["num_threads"] == fastact.get_num_threads()
    assert cfg["parallel_min_elements"] == fastact.PARALLEL_MIN_ELEMENTS
    assert isinstance(cfg["openmp"], bool)
    simd = cfg["simd"]
    assert {"in_use", "compiled"} <= set(simd)
    if cfg["backend"] == "native":
        assert simd["in_use"] in simd["compiled"]
        assert "baseline" in simd["compiled"]
    with fastact.num_threads(1):
        assert fastact.config()["num_threads"] == 1


def test_show_config_prints_every_field(capsys):
    assert fastact.show_config() is None
    text = capsys.readouterr().out
    cfg = fastact.config()
    lines = {line.split()[0]: line.split(None, 1)[1] if len(line.split()) > 1 else ""
             for line in text.splitlines() if line.strip()}
    assert lines["version"] == fastact.__version__
    assert lines["backend"] == fastact.get_backend()
    assert lines["openmp"] == str(cfg["openmp"])
    assert lines["num_threads"] == str(fastact.get_num_threads())
    assert lines["parallel_min_elements"] == str(fastact.PARALLEL_MIN_ELEMENTS)
    assert any(k.startswith("simd") for k in lines)
    if cfg["backend"] == "native":
        assert lines["simd_in_use"] == cfg["simd"]["in_use"]


# ---------------------------------------------------------------------------
# The floating-point environment and subnormals (CONTRACT.md section 3)

FP_ENV = """
import numpy as np

def subnormals_survive():
    return bool(np.float32(1e-40) * np.float32(1) != 0
                and (np.array([1e-40], np.float32) * np.float32(1))[0] != 0
                and np.float64(5e-324) * 1.0 != 0
                and 5e-324 * 1.0 != 0
                and (np.array([5e-324]) * 1.0)[0] != 0
                and np.float32(1e-38) / np.float32(4) != 0)

assert subnormals_survive(), "broken before importing fastact"
import fastact
from fastact import _registry as R
assert subnormals_survive(), "importing fastact changed the FP environment"
fastact.set_num_threads(2)
for dtype in (np.float32, np.float64):
    big = np.linspace(-3, 3, 4 * fastact.PARALLEL_MIN_ELEMENTS + 1).astype(dtype)
    for act in R.ACTIVATIONS:
        kw = {p.name: p.sample for p in act.params if p.sample is not None}
        x = big if act.kind != R.MAXOUT else big[:-1]
        y = getattr(fastact, act.name)(x, **kw)
        primal = y if act.kind == R.SOFTMAX else x
        getattr(fastact, act.name + "_backward")(np.ones_like(y), primal, **kw)
        assert subnormals_survive(), "calling " + act.name + " changed the FP environment"
tiny = np.full(4 * fastact.PARALLEL_MIN_ELEMENTS, 1e-40, np.float32)
assert (fastact.relu(tiny) == tiny).all(), "worker threads flush subnormals"
assert (fastact.tanh(tiny) == tiny).all(), "worker threads flush subnormals"
print("fp ok", fastact.get_backend())
"""


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_import_and_calls_keep_fp_environment(backend):
    proc = run_python(FP_ENV, {"FASTACT_BACKEND": backend})
    assert proc.stdout.strip() == f"fp ok {backend}"


def subnormal_inputs(dtype):
    """Subnormal numbers of both signs across the subnormal range, and zero."""
    info = np.finfo(dtype)
    tiny = float(info.smallest_normal)
    mags = np.array([info.smallest_subnormal, 3 * info.smallest_subnormal, tiny / 1024,
                     tiny / 3, tiny / 2, tiny * 0.99], dtype)
    return np.concatenate([mags, -mags])


def reference(act, x, **kw):
    """f(x) and f'(x) at subnormal x, to first order: f(0) + f'(0)*x, where the registry
    lists f(0) and f'(0) among the special values; None where it does not."""
    row = next((s for s in act.specials if s.x == 0.0 and not s.params), None)
    if row is None or row.y is None or row.grad is None:
        return None
    return row.y, row.grad


SMOOTH_AT_ZERO = tuple(a for a in ELEMENTWISE if reference(a, 0.0) is not None
                       and reference(a, 0.0)[0] == 0.0 and reference(a, 0.0)[1] != 0.0
                       and not a.kinks)


@pytest.mark.parametrize("act", SMOOTH_AT_ZERO, ids=ids(SMOOTH_AT_ZERO))
def test_subnormal_inputs_give_subnormal_results(fa, act, dtype):
    """Where f(0) = 0 and f'(0) != 0 (the registry's special values), f(x) ~ f'(0)*x at
    subnormal x: the result must be that subnormal, not flushed to zero."""
    x = subnormal_inputs(dtype)
    _, slope = reference(act, 0.0)
    expected = (x.astype(np.float64) * slope).astype(dtype)
    assert np.count_nonzero(expected) >= 8
    y = calls.forward(fa, act, x)
    assert (y[expected != 0] != 0).all(), f"{act.name} flushed subnormals: {y}"
    np.testing.assert_array_max_ulp(y, expected, maxulp=2)
    # The gradient at a subnormal x is f'(0), and a subnormal grad_output passes through.
    g = np.full_like(x, np.finfo(dtype).smallest_normal / 8)
    gi = calls.backward(fa, act, g, x)
    expected = (g.astype(np.float64) * slope).astype(dtype)
    assert (gi != 0).all(), f"{act.name}_backward flushed a subnormal grad_output"
    np.testing.assert_array_max_ulp(gi, expected, maxulp=2)


@pytest.mark.parametrize("act", tuple(a for a in ACTIVATIONS if a.exact),
                         ids=ids(tuple(a for a in ACTIVATIONS if a.exact)))
def test_exact_functions_keep_subnormals(fa, act, dtype):
    """Piecewise-linear functions pass subnormals through (scaled by their slope)."""
    x = np.abs(subnormal_inputs(dtype))
    shape = calls.fit_shape(act, x.shape)
    x = np.resize(x, shape)
    y = calls.forward(fa, act, x)
    # Positive inputs are on the identity branch for every one of them (maxout of
    # positives is one of them).
    assert (y != 0).all(), f"{act.name} flushed subnormals: {y}"
    if act.kind != R.MAXOUT:
        np.testing.assert_array_equal(y, x)
    g = np.full(y.shape, np.finfo(dtype).smallest_subnormal * 5, dtype)
    gi = calls.backward(fa, act, g, x)
    assert (gi[gi != 0] == g.flat[0]).all()
    assert (gi != 0).any()
