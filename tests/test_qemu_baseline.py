"""The baseline kernels on a CPU without AVX: `qemu-x86_64 -cpu Nehalem` (Debian's
qemu-user) emulates an SSE4.2-only x86-64, so any AVX/AVX2/FMA instruction that
the baseline build or the dispatch executed would end the process with SIGILL.
Under it the dispatch must choose "baseline" by itself and `fastact check`
(values, special values, NaN propagation, forward and gradient, both dtypes,
every level the CPU runs) must pass.  Skipped where qemu-user is not installed
(CI installs it)."""

import os
import shutil
import subprocess
import sys

import pytest

import fastact
from conftest import UNDER_ASAN

QEMU = shutil.which("qemu-x86_64")

pytestmark = [
    pytest.mark.skipif(QEMU is None, reason="qemu-user (qemu-x86_64) is not installed"),
    pytest.mark.skipif(UNDER_ASAN, reason="qemu-user cannot host ASan's shadow memory"),
    pytest.mark.skipif("native" not in fastact._BACKENDS, reason="no native backend"),
]


def run_under_nehalem(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastact.__file__)), env.get("PYTHONPATH", "")])
    env.pop("FASTACT_ISA", None)
    return subprocess.run([QEMU, "-cpu", "Nehalem", sys.executable, *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_nehalem_chooses_baseline_and_passes_check():
    proc = run_under_nehalem("-m", "fastact", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SIMD in use baseline" in proc.stdout, proc.stdout
    assert "native x86-64-v3" not in proc.stdout, proc.stdout  # the CPU cannot run it
    assert "all" in proc.stdout.splitlines()[-1] and "passed" in proc.stdout


def test_nehalem_results_equal_baseline_on_the_host():
    """The emulated run computes, bit for bit, what FASTACT_ISA=baseline computes
    natively (so the CI runs of the suite under FASTACT_ISA=baseline test the
    code a pre-AVX CPU runs)."""
    code = ("import hashlib, numpy as np, fastact as fa\n"
            "x = np.linspace(-40, 40, 4001)\n"
            "for dt in (np.float32, np.float64):\n"
            "    xs = x.astype(dt)\n"
            "    for y in (fa.gelu(xs), fa.silu_backward(np.ones_like(xs), xs),\n"
            "              fa.softmax(xs.reshape(1, -1)), fa.softplus(xs)):\n"
            "        print(hashlib.sha256(y.tobytes()).hexdigest()[:16])\n")
    emulated = run_under_nehalem("-c", code)
    assert emulated.returncode == 0, emulated.stderr
    env = dict(os.environ, FASTACT_ISA="baseline")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastact.__file__)), env.get("PYTHONPATH", "")])
    native = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert native.returncode == 0, native.stderr
    assert len(native.stdout.split()) == 8
    assert native.stdout == emulated.stdout
