"""More than 2**31 elements (CONTRACT.md section 2: 64-bit indexing everywhere).

One float32 array of 2**31 + 33 elements (8 GiB), processed in place by a
forward and a backward, checked at the elements past the 32-bit boundary.
Runs when the machine has the memory free (CI's 24 GiB does), else skips.
"""

import numpy as np
import pytest

N = 2**31 + 33


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.skipif(_available_bytes() < 12 * 2**30, reason="needs 12 GiB of free memory")
def test_beyond_2_31_elements_in_place():
    import fastact as fa

    x = np.empty(N, np.float32)
    tail = np.arange(-16, 17, dtype=np.float32)  # the last 33 elements, past 2**31
    x[:-33] = -1.0
    x[-33:] = tail
    y = fa.hardtanh(x, -4.0, 4.0, out=x)
    assert y is x
    np.testing.assert_array_equal(x[-33:], np.clip(tail, -4, 4))
    assert x[0] == -1.0 and x[2**31 - 1] == -1.0
    g = fa.hardtanh_backward(x, x, -3.0, 3.0, out=x)  # grad_output = x, in place
    expected = np.where((np.clip(tail, -4, 4) > -3) & (np.clip(tail, -4, 4) < 3),
                        np.clip(tail, -4, 4), 0)
    assert g is x
    np.testing.assert_array_equal(x[-33:], expected)
    assert x[2**31] == expected[0]
