"""No leaks: a reduced run of tests/memory_soak.py (issue 4; the full run is
``python3 tests/memory_soak.py --calls 1000000``, see the README)."""

import pytest

import memory_soak
from conftest import BACKEND_NAMES, UNDER_ASAN

MIB = 1 << 20
CALLS = {"native": 300, "numpy": 120}  # per function form; the NumPy backend is slower


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_repeated_calls_leak_nothing(backend):
    rss, traced, changed, made, forms = memory_soak.measure(backend, CALLS[backend],
                                                            log=lambda *a: None)
    assert made == forms * CALLS[backend]
    assert not changed, f"reference counts changed: {changed[:3]}"
    assert traced < MIB, f"tracemalloc: {traced / MIB:.3f} MiB more after {made} calls"
    # RSS also holds tracemalloc's own records of the allocations it traces;
    # under ASan it holds the allocator's quarantine of freed blocks too.
    if not UNDER_ASAN:
        assert rss < 2 * MIB, f"RSS: {rss / MIB:.3f} MiB more after {made} calls"


def test_a_leak_would_be_seen(monkeypatch):
    """The measurement is not vacuous: a driver that keeps a reference to every
    input it sees is reported (refcounts and tracemalloc both grow)."""
    from fastact import _api
    kept = []
    real = _api._asarray

    def leaky(fname, what, a):
        arr = real(fname, what, a)
        kept.append(arr)
        return arr

    monkeypatch.setattr(_api, "_asarray", leaky)
    rss, traced, changed, made, forms = memory_soak.measure(BACKEND_NAMES[-1], 30,
                                                            log=lambda *a: None)
    assert changed
