"""Taylor series of f' about each root of f', for the gradients' accuracy.

Near a root r of f' (silu/swish, gelu in both forms, mish) f'(x) is the
difference of two nearly equal terms, so its relative error grows as
1/|x - r| however exactly the terms are computed.  Both backends therefore
evaluate, for |x - r| < RADIUS,

    f'(x) = t*(c1 + t*(c2 + ... + t*cN)),   t = (x - hi) - lo,

with the root as a double-double hi + lo (x - hi is exact there) and the
coefficients below.  This script derives them with mpmath from the
references in tests/reference.py, checks the truncation error over the whole
radius, and prints the registry's RootSeries entries.

    PYTHONPATH=src python tools/fit_roots.py
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import reference as ref  # noqa: E402

mp = ref.mp
RADIUS = 2.0**-3
TERMS = 20

#: (registry name, params of the variant, guess)
ROOTS = (
    ("silu", {"beta": 1.0}, -1.2785),
    ("gelu", {"approximate": "none"}, -0.7518),
    ("gelu", {"approximate": "tanh"}, -0.7522),
    ("mish", {}, -1.1924),
)


def series(name, params, guess):
    fprime = ref.REFERENCE[name][1]
    with mp.workprec(400):
        f = lambda x: fprime(x, params)  # noqa: E731
        r = mp.findroot(f, mp.mpf(guess), tol=mp.mpf(2)**-380)
        hi = float(r)
        lo = float(r - mp.mpf(hi))
        coeffs = mp.taylor(f, r, TERMS + 1)
        assert abs(coeffs[0]) < mp.mpf(2)**-300
        c = [float(v) for v in coeffs[1:TERMS + 1]]
        # truncation error of the TERMS-term series, relative to f', sampled
        # over the radius; the coefficients' own rounding (2^-53 relative) is
        # what remains of their error.
        worst = mp.mpf(0)
        for k in range(1, 201):
            t = mp.mpf(RADIUS) * (2 * mp.mpf(k) / 200 - 1)
            if t == 0:
                continue
            exact = f(r + t)
            approx = sum(mp.mpf(ci) * t**(i + 1) for i, ci in enumerate(c))
            worst = max(worst, abs(approx / exact - 1))
    return hi, lo, c, float(worst)


def main():
    print(f"# radius {RADIUS!r}, {TERMS} terms")
    for name, params, guess in ROOTS:
        hi, lo, c, worst = series(name, params, guess)
        label = ", ".join(f"{k}={v!r}" for k, v in params.items())
        print(f"# {name}({label}): max relative error over the radius {worst:.2e} "
              f"(2^{mp.log(worst, 2) if worst else '-inf'})")
        print(f"RootSeries({hi!r}, {lo!r},\n           ({', '.join(repr(v) for v in c)})),")


if __name__ == "__main__":
    main()
