"""A/B of two builds of the native kernels: the same bits, and which is faster.

    python benchmarks/ab_kernels.py OLD_BUILD NEW_BUILD [--level x86-64-v4] [--ops silu mish]

OLD_BUILD and NEW_BUILD are build trees (the directory where ``setup.py
build_ext`` ran, or its ``build/`` directory) or the kernel objects themselves
(``fa_kernels_<level>.o``).  The two objects are linked into one C harness
(``ab_kernels.c``), each under its own name, so that both are timed in the same
process, alternately, on the same inputs: one thread, 10^5 elements, best of 6
runs, in ns per element.  Each op is also run on 4*10^5 points (random bit
patterns, normal samples, the special values) and the two results compared bit
for bit (NaN payloads aside).  The table ends with the geometric mean of
NEW/OLD per dtype.

Needs gcc and objcopy (binutils), and this tree built once (the ops and their
defaults come from the generated ``kernels/fa_ops.h``).  The objects' sources
must share ``fa_kernels.h`` (the kernel table's layout) and the op codes.
"""

import argparse
import glob
import math
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KERNELS = os.path.join(ROOT, "src", "fastact", "kernels")
LEVELS = ("baseline", "x86-64-v3", "x86-64-v4")


def find_object(path, level):
    """The kernel object of `level` in a build tree, or `path` itself."""
    if os.path.isfile(path):
        return path
    name = "fa_kernels_" + level.replace("-", "_") + ".o"
    hits = sorted(glob.glob(os.path.join(path, "**", name), recursive=True))
    if not hits:
        raise SystemExit(f"ab_kernels: no {name} under {path} (build it with setup.py build_ext)")
    return hits[-1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--level", choices=LEVELS, default="x86-64-v4")
    ap.add_argument("--ops", nargs="*", default=[], help="only these ops (default: all)")
    args = ap.parse_args(argv)
    for tool in ("gcc", "objcopy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"ab_kernels: needs {tool}")
    symbol = "fa_kernels_" + args.level.replace("-", "_")
    tmp = tempfile.mkdtemp(prefix="fa_ab_")
    try:
        objects = []
        for tag, path in (("a", args.old), ("b", args.new)):
            out = os.path.join(tmp, tag + ".o")
            subprocess.run(["objcopy", f"--redefine-sym={symbol}=fa_ab_table_{tag}",
                            find_object(path, args.level), out], check=True)
            objects.append(out)
        if not os.path.exists(os.path.join(KERNELS, "fa_ops.h")):
            raise SystemExit("ab_kernels: no fa_ops.h; build first (setup.py build_ext)")
        exe = os.path.join(tmp, "ab")
        subprocess.run(["gcc", "-O2", "-I", KERNELS, os.path.join(HERE, "ab_kernels.c"),
                        *objects, "-o", exe, "-lm", "-fopenmp"], check=True)
        run = subprocess.run([exe, " ".join(args.ops)], check=True, capture_output=True, text=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write(run.stdout)
    logs = {}
    for line in run.stdout.splitlines()[1:]:
        cols = line.split()
        logs.setdefault(cols[2], []).append(math.log(float(cols[5])))
    for dtype, values in sorted(logs.items()):
        print(f"geometric mean of B/A, {dtype}: {math.exp(sum(values) / len(values)):.3f}"
              f" ({len(values)} loops)")
    return 1 if "DIFFER" in run.stdout else 0


if __name__ == "__main__":
    sys.exit(main())
