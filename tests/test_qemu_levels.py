"""The lower kernel levels on CPUs that lack the higher ones, under Debian's
qemu-user: `qemu-x86_64 -cpu Nehalem` emulates an SSE4.2-only x86-64, so any
AVX/AVX2/FMA instruction that the baseline build or the dispatch executed would
end the process with SIGILL; `-cpu Haswell` has AVX2 and FMA but no AVX-512,
so the same holds for an AVX-512 instruction in the x86-64-v3 kernels.  Under
each the dispatch must choose that CPU's level by itself and `fastact check`
(values, special values, NaN propagation, forward and gradient, both dtypes,
every level the CPU runs) must pass, and the results must equal, bit for bit,
what the host computes with FASTACT_ISA forcing that level.  Skipped where
qemu-user is not installed (CI installs it)."""

import os
import shutil
import subprocess
import sys

import pytest

import fastact
from conftest import UNDER_ASAN, usable_isa_levels

QEMU = shutil.which("qemu-x86_64")

pytestmark = [
    pytest.mark.skipif(QEMU is None, reason="qemu-user (qemu-x86_64) is not installed"),
    pytest.mark.skipif(UNDER_ASAN, reason="qemu-user cannot host ASan's shadow memory"),
    pytest.mark.skipif("native" not in fastact._BACKENDS, reason="no native backend"),
]


#: (qemu CPU model, the level it must get, the levels above it it cannot run)
CPUS = [("Nehalem", "baseline", ("x86-64-v3", "x86-64-v4")),
        ("Haswell", "x86-64-v3", ("x86-64-v4",))]


def run_under(model, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastact.__file__)), env.get("PYTHONPATH", "")])
    env.pop("FASTACT_ISA", None)
    return subprocess.run([QEMU, "-cpu", model, sys.executable, *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("model, level, above", CPUS, ids=[c[0] for c in CPUS])
def test_emulated_cpu_chooses_its_level_and_passes_check(model, level, above):
    if level not in usable_isa_levels():
        pytest.skip(f"this build or host has no {level} kernels")
    proc = run_under(model, "-m", "fastact", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SIMD in use {level}" in proc.stdout, proc.stdout
    for name in above:  # the CPU cannot run them
        assert f"native {name}" not in proc.stdout, proc.stdout
    assert "all" in proc.stdout.splitlines()[-1] and "passed" in proc.stdout


@pytest.mark.parametrize("model, level, above", CPUS, ids=[c[0] for c in CPUS])
def test_emulated_results_equal_the_level_on_the_host(model, level, above):
    """The emulated run computes, bit for bit, what FASTACT_ISA=<level> computes
    natively (so the CI runs of the suite under FASTACT_ISA=<level> test the
    code such a CPU runs)."""
    if level not in usable_isa_levels():
        pytest.skip(f"this build or host has no {level} kernels")
    code = ("import hashlib, numpy as np, fastact as fa\n"
            "x = np.linspace(-40, 40, 4001)\n"
            "for dt in (np.float32, np.float64):\n"
            "    xs = x.astype(dt)\n"
            "    for y in (fa.gelu(xs), fa.silu_backward(np.ones_like(xs), xs),\n"
            "              fa.softmax(xs.reshape(1, -1)), fa.softplus(xs)):\n"
            "        print(hashlib.sha256(y.tobytes()).hexdigest()[:16])\n")
    emulated = run_under(model, "-c", code)
    assert emulated.returncode == 0, emulated.stderr
    env = dict(os.environ, FASTACT_ISA=level)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastact.__file__)), env.get("PYTHONPATH", "")])
    native = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert native.returncode == 0, native.stderr
    assert len(native.stdout.split()) == 8
    assert native.stdout == emulated.stdout
