"""Processes forked after multi-threaded kernels (CONTRACT.md section 5; issue 4).

tests/test_threads.py covers ``os.fork`` and a ``multiprocessing`` "fork" Pool.
Here: ``concurrent.futures.ProcessPoolExecutor`` with the "fork" context, and
the gunicorn ``--preload`` pattern without gunicorn: the parent imports
fastact and warms it up on two threads (an OpenMP region really runs), then
forks workers that each serve requests over a pipe; a forked worker forks
again.  Every child must return correct results within the timeout.
"""

import pytest

from test_threads import run_python
from conftest import BACKEND_NAMES

SCRIPT = r"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import select
import sys

import numpy as np
import fastact

N = 4 * fastact.PARALLEL_MIN_ELEMENTS + 3
WORKERS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 4


def serve(seed):
    # One request: several kinds of kernel, on arrays above the threshold.
    x = np.linspace(-6, 6, N) + seed
    rows = x[: 97 * 1001].reshape(97, 1001)
    out = [fastact.gelu(x), fastact.softmax(rows), fastact.tanh_backward(x, x),
           fastact.prelu(rows, np.linspace(-1, 1, 1001), axis=-1),
           fastact.maxout(rows[:, :1000], 4)]
    return [o.tobytes() for o in out]


fastact.set_num_threads(2)
expected = {s: serve(s) for s in range(REQUESTS)}  # the warm-up: parallel regions
if fastact.get_backend() == "native" and len(os.sched_getaffinity(0)) >= 2:
    assert fastact._BACKENDS["native"].m.parallel_used(), "no OpenMP region ran"
forks = 0

# concurrent.futures with forked workers
with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
    got = list(pool.map(serve, range(REQUESTS), timeout=120))
assert got == [expected[s] for s in range(REQUESTS)], "ProcessPoolExecutor"
forks += 2

# gunicorn --preload: N workers forked from the warmed parent, each serving
# requests read from its pipe and answering whether each result was right.
workers = []
for w in range(WORKERS):
    req_r, req_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(req_w); os.close(res_r)
        for _, other_req, other_res in workers:  # else their pipes never see EOF
            other_req.close(); os.close(other_res)
        code = 0
        with os.fdopen(req_r, "rb") as requests, os.fdopen(res_w, "wb", buffering=0) as replies:
            for line in requests:
                seed = int(line)
                ok = serve(seed) == expected[seed]
                if seed == 0 and w == 0:  # a worker that forks again
                    pid2 = os.fork()
                    if pid2 == 0:
                        os._exit(0 if serve(1) == expected[1] else 3)
                    _, st = os.waitpid(pid2, 0)
                    ok = ok and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
                replies.write(b"1" if ok else b"0")
        os._exit(code)
    os.close(req_r); os.close(res_w)
    workers.append((pid, os.fdopen(req_w, "wb", buffering=0), res_r))
    forks += 1
forks += 1  # the grandchild
for pid, req, res in workers:
    for s in range(REQUESTS):
        req.write(f"{s}\n".encode())
answers = {}
for pid, req, res in workers:
    req.close()
    got = b""
    while len(got) < REQUESTS:
        ready, _, _ = select.select([res], [], [], 120)
        assert ready, f"worker {pid} hung"
        chunk = os.read(res, 64)
        assert chunk, f"worker {pid} died"
        got += chunk
    answers[pid] = got
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
assert all(a == b"1" * REQUESTS for a in answers.values()), answers

# The parent keeps working, on several threads.
assert serve(2) == expected[2]
print(f"processes ok: {forks} forked processes served {WORKERS * REQUESTS + 2 * REQUESTS} requests")
"""


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_process_pool_and_preforked_workers(backend):
    out = run_python(SCRIPT, {"FASTACT_BACKEND": backend}, timeout=240)
    assert out.startswith("processes ok")
