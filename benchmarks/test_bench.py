"""pytest-benchmark timings of every activation: both dtypes, forward and
backward, 1e5 elements, the public function with a preallocated ``out=``.

    python -m pytest benchmarks/ --benchmark-only

Not part of the test suite (pyproject's ``testpaths`` is ``tests``).  The
calls are those of the speed table (``fastact._bench.call``), which compares
the same calls with NumPy and PyTorch: ``python -m fastact`` or
``benchmarks/compare.py``.
"""

import pytest

pytest.importorskip("pytest_benchmark")

import fastact  # noqa: E402
from fastact import _bench  # noqa: E402

N = 10**5


@pytest.mark.parametrize("direction", _bench.DIRECTIONS)
@pytest.mark.parametrize("dtype", _bench.DTYPES)
@pytest.mark.parametrize("op", _bench.op_names())
def test_fastact(benchmark, op, dtype, direction):
    benchmark.group = f"{direction} {dtype}, n={N}"
    benchmark.extra_info.update(n=N, threads=fastact.get_num_threads(),
                                backend=fastact.get_backend())
    benchmark(_bench.call("fastact", op, dtype, N, direction))
