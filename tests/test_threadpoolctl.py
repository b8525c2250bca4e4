"""fastact's threads under the tools a deployment uses: threadpoolctl sees and
limits fastact's OpenMP runtime, and a cgroup CPU quota (a container's
``--cpus``) caps the default thread count."""

import json
import os
import subprocess
import sys

import pytest

import fastact
from fastact import _threads

needs_native = pytest.mark.skipif(
    "native" not in fastact._BACKENDS or not fastact.config()["openmp"],
    reason="fastact's native backend with OpenMP is not built")


def _run(code, **env):
    full = dict(os.environ)
    full.pop("FASTACT_NUM_THREADS", None)
    full.pop("OMP_NUM_THREADS", None)
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastact.__file__))]
        + [p for p in full.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_native
def test_threadpool_info_lists_fastacts_openmp_runtime():
    pytest.importorskip("threadpoolctl")
    found = _run("""
import json
from threadpoolctl import threadpool_info
before = {i["filepath"] for i in threadpool_info()}
import numpy, fastact
fastact.relu(numpy.ones(10))
new = [i for i in threadpool_info() if i["filepath"] not in before]
print(json.dumps(new))
""")
    openmp = [i for i in found if i["user_api"] == "openmp"]
    assert openmp, f"importing fastact added no OpenMP runtime: {found}"
    assert any("gomp" in i["filepath"] or "omp" in i["prefix"] for i in openmp)


@needs_native
def test_threadpool_limits_limits_fastact():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    cpus = _threads._cpu_limit()
    if cpus < 2:
        pytest.skip("needs 2 CPUs to see a limit")
    if fastact._threads._process_default is not None or _threads._env_default is not None:
        pytest.skip("an explicit fastact thread count is set, which takes precedence")
    before = fastact.get_num_threads()
    assert before == cpus
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastact.get_num_threads() == 1
        with fastact.num_threads(2):  # an explicit fastact setting still wins
            assert fastact.get_num_threads() == 2
    assert fastact.get_num_threads() == before


@needs_native
def test_threadpool_limits_in_a_fresh_process():
    pytest.importorskip("threadpoolctl")
    seen = _run("""
import json, fastact
from threadpoolctl import threadpool_limits
a = fastact.get_num_threads()
with threadpool_limits(1):
    b = fastact.get_num_threads()
print(json.dumps([a, b, fastact.get_num_threads()]))
""")
    assert seen[1] == 1 and seen[0] == seen[2] >= 1


def test_explicit_environment_beats_openmp_limits():
    seen = _run("import json, fastact; print(json.dumps(fastact.get_num_threads()))",
                FASTACT_NUM_THREADS="1", OMP_NUM_THREADS="2")
    assert seen == 1


# ---------------------------------------------------------------------------
# cgroup CPU quota

def _cgroup(tmp_path, proc_lines, files):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text("\n".join(proc_lines) + "\n")
    return str(root), str(proc)


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "200000 100000\n"}, 2),
    ({"cpu.max": "150000 100000\n"}, 2),       # 1.5 CPUs: two threads
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu.max": "max 100000\n", "app/cpu.max": "300000 100000\n"}, 3),
    ({"cpu.max": "100000 100000\n", "app/cpu.max": "400000 100000\n"}, 1),  # parent's wins
    ({}, None),
])
def test_cgroup_v2_cpu_max(tmp_path, files, expected):
    root, proc = _cgroup(tmp_path, ["0::/app"], files)
    assert _threads.cgroup_cpu_quota(root, proc) == expected


@pytest.mark.parametrize("quota, expected", [("-1", None), ("400000", 4), ("250000", 3)])
def test_cgroup_v1_cfs_quota(tmp_path, quota, expected):
    root, proc = _cgroup(tmp_path, ["4:memory:/x", "2:cpu,cpuacct:/docker/abc"],
                         {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": quota + "\n",
                          "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert _threads.cgroup_cpu_quota(root, proc) == expected


def test_no_cgroup_file_means_no_quota(tmp_path):
    assert _threads.cgroup_cpu_quota(str(tmp_path), str(tmp_path / "missing")) is None


def test_quota_caps_the_thread_count(monkeypatch):
    monkeypatch.setattr(_threads, "_cgroup_quota", 1)
    assert _threads._cpu_limit() == 1
    with fastact.num_threads(8):
        assert fastact.get_num_threads() == 1
    monkeypatch.setattr(_threads, "_cgroup_quota", None)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    assert _threads._cpu_limit() == cpus
