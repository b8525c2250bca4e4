"""The smooth ops' array loops are vectorised on the x86-64-v3 and -v4 levels.

Speed is never asserted by timing (CONTRACT.md, README "Speed"), but losing
the vectoriser is a change of the built code that can be seen in it: the
float64 gelu-tanh gradient became scalar and 5x slower when one clamp was
written as two selects (fa_math.h, FA(gelu_tanh_u2)).  Each smooth op's
forward and backward loop is a function of its own (fa_loops.h); the built
extension's symbol table says which object each copy came from, and its
disassembly which instructions it runs.  Skipped where binutils or the
symbols are missing (a stripped build), in a sanitizer build, or where the
native backend is not x86-64.
"""

import collections
import platform
import re
import shutil
import subprocess

import pytest

from fastact import _registry as R

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                reason="the ISA levels are x86-64's")

native = pytest.importorskip("fastact._native")

LOOP = re.compile(r"^fa_(\w+)_(fwd|bwd)_loop_(f32|f64)(\.\w+)*$")
# packed floating-point arithmetic: what a vectorised loop body is made of
PACKED = re.compile(r"\sv?(add|sub|mul|div|fn?m(add|sub)\d+)p[sd]\s+(.*)$")
LEVELS = {"fa_kernels_x86_64_v3.c": "x86-64-v3", "fa_kernels_x86_64_v4.c": "x86-64-v4"}


def _run(*cmd):
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"needs {cmd[0]} (binutils)")
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def loops():
    """{(level, op, direction, dtype): [(packed, packed on zmm), ...]} of the built extension."""
    path = native.__file__
    where = {}  # start address -> (level, op, direction, dtype, size)
    level = None
    for line in _run("readelf", "-sW", path).splitlines():
        cols = line.split()
        if len(cols) < 8:
            continue
        if cols[7].startswith("__asan_"):
            pytest.skip("a sanitizer build (tests/sanitize.sh, -O1) is not vectorised")
        if cols[3] == "FILE":
            level = LEVELS.get(cols[7])
            continue
        m = LOOP.match(cols[7])
        if level and cols[3] == "FUNC" and m:
            where[int(cols[1], 16)] = (level,) + m.groups()[:3] + (int(cols[2]),)
    if not where:
        pytest.skip("the extension has no local symbols of its loops (stripped?)")
    counts = collections.defaultdict(list)
    current, end, key = None, 0, None
    for line in _run("objdump", "-d", "--no-show-raw-insn", path).splitlines():
        m = re.match(r"^([0-9a-f]+) <", line)
        if m:
            start = int(m.group(1), 16)
            if start in where:
                *key, size = where[start]
                key = tuple(key)
                current, end = [0, 0], start + size
                counts[key].append(current)
            else:
                current = None
            continue
        if current is None:
            continue
        ins = re.match(r"^\s*([0-9a-f]+):", line)
        if ins and int(ins.group(1), 16) >= end:
            current = None
            continue
        p = PACKED.search(line)
        if p:
            current[0] += 1
            current[1] += "zmm" in p.group(3)
    return counts


def smooth_ops():
    return [name for name in R.NATIVE_OPS if not R.OP_ACTIVATION[name].exact]


@pytest.mark.parametrize("level", sorted(LEVELS.values()))
def test_every_smooth_loop_is_vectorised(loops, level):
    missing, scalar, narrow = [], [], []
    for op in smooth_ops():
        for direction in ("fwd", "bwd"):
            for dtype in ("f32", "f64"):
                copies = loops.get((level, op, direction, dtype))
                label = f"{op} {direction} {dtype}"
                if not copies:
                    missing.append(label)
                    continue
                if any(packed == 0 for packed, _ in copies):
                    scalar.append(label)
                if level == "x86-64-v4" and any(zmm == 0 for _, zmm in copies):
                    narrow.append(label)
    assert not missing, f"{level}: no loop function found for {missing}"
    assert not scalar, f"{level}: loops without packed arithmetic (not vectorised): {scalar}"
    assert not narrow, f"{level}: loops without 512-bit arithmetic: {narrow}"
