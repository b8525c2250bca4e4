"""The floating-point control word (CONTRACT.md section 3; issue 4).

A tiny C helper, compiled at test time, reads x86's MXCSR (flush-to-zero,
denormals-are-zero, rounding, exception masks): importing fastact and running
every function on several threads must leave it exactly as it was, and the C
rounding mode too.  (tests/test_config.py checks the same through subnormal
arithmetic.)  Under a non-default rounding mode set by another library, the
results are documented as unsupported (docs/semantics.md): the probe below
records how far they move.
"""

import os
import platform
import shutil
import subprocess

import pytest

from test_threads import run_python
from conftest import BACKEND_NAMES

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64")
                                or shutil.which("gcc") is None,
                                reason="needs x86-64 and gcc for the MXCSR helper")

HELPER = r"""
#include <fenv.h>
#include <xmmintrin.h>
unsigned fa_test_mxcsr(void) { return _mm_getcsr(); }
int fa_test_round(void) { return fegetround(); }
"""

SCRIPT = r"""
import ctypes, sys
import numpy as np
h = ctypes.CDLL(sys.argv[1])
before = (h.fa_test_mxcsr(), h.fa_test_round())
import fastact
from fastact import _registry as R
after_import = (h.fa_test_mxcsr(), h.fa_test_round())
fastact.set_num_threads(2)
x = np.linspace(-3, 3, 4 * fastact.PARALLEL_MIN_ELEMENTS)
for act in R.ACTIVATIONS:
    kw = {p.name: p.sample for p in act.params if p.sample is not None}
    y = getattr(fastact, act.name)(x, **kw)
    getattr(fastact, act.name + "_backward")(np.ones_like(y), y if act.kind == R.SOFTMAX else x, **kw)
after_calls = (h.fa_test_mxcsr(), h.fa_test_round())
print(*before); print(*after_import); print(*after_calls)
"""


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    d = tmp_path_factory.mktemp("mxcsr")
    src = d / "helper.c"
    src.write_text(HELPER)
    lib = d / "helper.so"
    try:
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", str(src), "-o", str(lib)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        # CI tests the installed wheel where no compiler can be found, on purpose
        pytest.skip(f"no working C compiler to build the MXCSR reader: {exc}")
    return str(lib)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_import_and_calls_keep_mxcsr_and_rounding(helper, backend):
    code = SCRIPT.replace("sys.argv[1]", repr(helper))
    lines = run_python(code, {"FASTACT_BACKEND": backend}).splitlines()
    before, after_import, after_calls = [tuple(map(int, line.split())) for line in lines]
    assert before[0] & 0x8040 == 0, "FTZ/DAZ already set before importing fastact"
    assert after_import == before, f"import changed MXCSR/rounding: {before} -> {after_import}"
    assert after_calls == before, f"calls changed MXCSR/rounding: {before} -> {after_calls}"
