"""Shared fixtures: every test runs against both backends through the same
generated public functions (``fastact._api.build_functions``), parametrised
over the registry, so nothing here lists activations by hand."""

import os
import types

import numpy as np
import pytest

import fastact
from fastact import _api
from fastact import _registry as R

#: Running under tests/sanitize.sh (ASan preloaded): its allocator keeps freed
#: memory in quarantine (RSS is no leak measure there), and qemu-user cannot
#: host ASan's shadow memory.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

BACKEND_NAMES = tuple(sorted(fastact._BACKENDS))
DTYPES = (np.float32, np.float64)

ACTIVATIONS = R.ACTIVATIONS
ELEMENTWISE = tuple(a for a in ACTIVATIONS if a.kind == R.ELEMENTWISE)
SMOOTH = tuple(a for a in ELEMENTWISE if not a.exact)


def usable_isa_levels():
    """The ISA levels compiled in that this CPU runs, lowest first (the native
    backend's config; [] without it)."""
    simd = fastact.config()["simd"]
    compiled = list(simd.get("compiled") or ())
    best = simd.get("cpu_best")
    return compiled[:compiled.index(best) + 1] if best in compiled else []


def functions_for(backend_name):
    """A namespace with every public function bound to one backend."""
    return types.SimpleNamespace(**_api.build_functions(fastact._BACKENDS[backend_name]))


_NAMESPACES = {name: functions_for(name) for name in BACKEND_NAMES}


@pytest.fixture(params=BACKEND_NAMES)
def fa(request):
    """The public API bound to each available backend in turn."""
    return _NAMESPACES[request.param]


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return np.dtype(request.param)


def ids(acts):
    return [a.name for a in acts]


def default_kwargs(act, **overrides):
    """Keyword arguments with every parameter at its default (required ones filled)."""
    kw = {}
    for p in act.params:
        if p.default is R.REQUIRED:
            kw[p.name] = p.sample
        elif p.kind != "axis":
            kw[p.name] = p.default
    kw.update(overrides)
    return kw
