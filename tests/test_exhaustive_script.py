"""benchmarks/exhaustive_accuracy.py on a tiny budget: its output has the
promised structure, fastact passes, and a deliberately wrong implementation
(3 ULP off on every result, one NaN input answered with 0) is caught, so the
script cannot pass vacuously."""

import json
import os
import sys

import numpy as np
import pytest

import fastact

pytest.importorskip("scipy")

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
if not os.path.exists(os.path.join(BENCH, "exhaustive_accuracy.py")):
    pytest.skip("benchmarks/ is not next to tests/ (tests run against an installed wheel)",
                allow_module_level=True)
sys.path.insert(0, BENCH)
import exhaustive_accuracy as E  # noqa: E402

ONLY = ("sigmoid", "relu", "gelu")


class _Broken:
    """fastact's NumPy backend, then 3 ULP away from zero; NaN -> 0 for relu."""

    def __init__(self):
        self.base = E._Fastact("numpy")

    def _spoil(self, name, y):
        y = np.array(y)
        with np.errstate(all="ignore"):
            return self._off(name, y)

    def _off(self, name, y):
        if name == "relu":
            y[np.isnan(y)] = 0  # the contract says NaN stays NaN
            y[(y > 0) & np.isfinite(y)] *= 1 + 4 * np.finfo(y.dtype).eps
            return y
        for _ in range(3):
            y = np.nextafter(y, np.copysign(np.inf, y))
        return y

    def forward(self, name, x, p):
        return self._spoil(name, self.base.forward(name, x, p))

    def backward(self, name, x, p):
        return self._spoil(name, self.base.backward(name, x, p))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    E.IMPLEMENTATIONS["broken"] = lambda isas: {"broken": _Broken}
    groups = ["native" if "native" in fastact._BACKENDS else "fallback", "broken"]
    out = tmp_path_factory.mktemp("exh") / "r.json"
    try:
        E.main(["--workers", "0", "--only", *ONLY, "--impls", *groups,
                "--f32-samples", "65536", "--f64-points", "8192", "--grad32-points", "8192",
                "--self-check-points", "8", "--json", str(out)])
    finally:
        del E.IMPLEMENTATIONS["broken"]
    with open(out) as f:
        return json.load(f)


def test_structure(result):
    kinds = {s["kind"] for s in result["stats"]}
    assert kinds == {"f32", "f64", "g32", "g64"}
    cases = {s["case"] for s in result["stats"]}
    assert {"sigmoid", "relu", "gelu", "gelu[approximate=tanh]"} <= cases
    assert "broken" in result["columns"]
    table = result["table"]
    for case in cases:
        assert f"| {case} |" in table
    assert "float32 forward" in table and "float64 forward" in table
    for s in result["stats"]:
        if s["impl"] != "reference":
            assert s["n"] > 0, s
    assert result["selfcheck"], "the reference must be checked against mpmath"
    for c in result["selfcheck"]:
        bound = 1e-6 if c["dtype"] == "float32" else 1e-2
        assert c["ulp"] <= bound, c


def test_fastact_within_bounds_where_measured(result):
    """The fastact columns are measured (not n/a) on every case."""
    fa_cols = [c for c in result["columns"] if c.startswith(("native", "fastact"))]
    assert fa_cols
    for s in result["stats"]:
        if s["impl"] in fa_cols:
            assert s["unavailable"] is None, s


def test_wrong_implementation_is_caught(result):
    bad = {(v["kind"], v["case"]) for v in result["violations"] if v["impl"] == "broken"}
    for kind in ("f32", "f64", "g32", "g64"):
        assert (kind, "sigmoid") in bad
        assert (kind, "gelu") in bad
    assert ("f32", "relu") in bad and ("f64", "relu") in bad
    worst = {(s["kind"], s["case"]): s for s in result["stats"] if s["impl"] == "broken"}
    for kind in ("f32", "f64"):
        s = worst[(kind, "sigmoid")]
        # 3 ULP away from a <= 0.5 ULP result (more across a binade edge), by mpmath
        assert 2 < float(s["confirmed"][0]) < 7, s["confirmed"]
        assert s["over_bound"] > 0
        assert worst[(kind, "relu")]["nan_fail"] > 0
