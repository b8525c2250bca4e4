"""The command line (``fastact`` / ``python -m fastact``): every command, its
files, its errors (one line, non-zero exit), and the targets summary of the
speed table computed from rows (no timing is asserted anywhere)."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import _bench, _cli_check, _cli_plot
from fastact import _registry as R
from fastact.__main__ import main

#: A tiny, fast bench run: one cheap op, 16 elements, one short sample.
TINY = ["--ops", "relu", "--sizes", "16", "--dtypes", "float32", "--samples", "1",
        "--min-time", "0.0001", "--peers", "numpy"]


def _one_error_line(err, *fragments):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("fastact")
    for fragment in fragments:
        assert fragment in lines[0]


def test_info_prints_the_configuration(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"backend" in out and fastact.get_backend() in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["backend"] == fastact.get_backend()
    assert cfg["version"] == fastact.__version__


def test_bench_writes_csv_and_json_with_reference_rows(tmp_path, capsys):
    c, j = tmp_path / "b.csv", tmp_path / "b.json"
    assert main(["bench", *TINY, "--direction", "both", "--csv", str(c),
                 "--json", str(j)]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "copy" in out and "add" in out
    with open(c) as f:
        rows = list(csv.DictReader(f))
    assert {(r["op"], r["direction"]) for r in rows} == {
        ("copy", "forward"), ("add", "backward"), ("relu", "forward"), ("relu", "backward")}
    assert all(float(r["fastact"]) > 0 for r in rows if r["op"] == "relu")
    assert all(float(r["numpy"]) > 0 for r in rows if r["op"] in _bench.REFERENCES)
    data = json.loads(j.read_text())
    assert data["environment"]["fastact"]["backend"] == fastact.get_backend()
    assert len(data["rows"]) == 4


def test_bench_times_gradients_from_y_where_autograd_does():
    """relu, sigmoid, tanh: the row's call is the y= form (PyTorch's autograd
    works from the saved output too), and the row says so; elu: from x."""
    for op, from_y in (("sigmoid", True), ("tanh", True), ("relu", True), ("elu", False)):
        act = R.BY_NAME[op]
        case = _bench._Case(act, np.float64, 1000, _bench.SEED,
                            {n: getattr(fastact, n) for n in fastact._FUNCTIONS})
        call, note = case.fastact("backward")
        b = getattr(fastact, op + "_backward")
        want = b(case.g, y=case.y) if from_y else b(case.g, case.x)
        np.testing.assert_array_equal(call(), want)
        assert ("from y=" in note) == from_y


def test_bench_direction_backward_times_only_gradients(tmp_path, capsys):
    c = tmp_path / "b.csv"
    assert main(["bench", *TINY, "--direction", "backward", "--csv", str(c)]) == 0
    with open(c) as f:
        assert {r["direction"] for r in csv.DictReader(f)} == {"backward"}


def test_default_command_is_bench_with_its_options_after_fastact(capsys):
    assert main(TINY) == 0
    out = capsys.readouterr().out
    assert "simd_in_use" in out  # show_config() first
    assert "ns per element" in out


def test_progress_bar_on_stderr(capsys):
    assert main(["bench", *TINY, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "[" in err and "relu forward float32 16" in err and "/2" in err


def test_no_progress_bar_when_asked(capsys):
    assert main(["bench", *TINY, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, fragment", [
    (["bench", "--ops", "no_such_op"], "no_such_op"),
    (["bench", "--sizes", "12345"], "12345"),
    (["bench", "--dtypes", "float16"], "float16"),
    (["plot"], "NAME"),
    (["nonsense-command"], "nonsense-command"),
])
def test_command_line_errors_are_one_line_exit_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    _one_error_line(capsys.readouterr().err, fragment)


@pytest.mark.parametrize("extra, fragment", [
    (["--threads", "0"], "--threads"),
    (["--csv", "/nonexistent-folder/b.csv"], "does not exist"),
    (["--direction", "forward", "--backward"], "--backward"),
])
def test_bench_errors_are_one_line_exit_1(extra, fragment, capsys):
    assert main(["bench", *TINY, *extra]) == 1
    _one_error_line(capsys.readouterr().err, fragment)


def _no_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path, capsys):
    _no_matplotlib(monkeypatch)
    assert main(["plot", "gelu", "-o", str(tmp_path / "a.png")]) == 1
    _one_error_line(capsys.readouterr().err, 'pip install "fastact[plot]"')
    assert not (tmp_path / "a.png").exists()


def test_bench_plot_without_matplotlib_fails_before_timing(monkeypatch, tmp_path, capsys):
    _no_matplotlib(monkeypatch)
    assert main(["bench", *TINY, "--plot", str(tmp_path / "b.png")]) == 1
    captured = capsys.readouterr()
    _one_error_line(captured.err, 'pip install "fastact[plot]"')
    assert "ns per element" not in captured.out


def test_plot_options_come_from_the_registry():
    parser = _cli_plot.argparse.ArgumentParser()
    _cli_plot.add_arguments(parser)
    flags = {s for a in parser._actions for s in a.option_strings}
    for act in R.ACTIVATIONS:
        if act.kind in _cli_plot.PLOTTABLE_KINDS:
            for p in act.params:
                if p.kind != "axis":
                    assert "--" + p.name.replace("_", "-") in flags


@pytest.mark.parametrize("argv, fragment", [
    (["plot", "softmax"], "along an axis"),
    (["plot", "gelu", "--alpha", "2"], "--alpha does not apply to gelu"),
    (["plot", "elu", "--range", "3", "1"], "--range"),
])
def test_plot_errors(argv, fragment, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(argv + ["-o", str(tmp_path / "a.png")]) == 1
    _one_error_line(capsys.readouterr().err, fragment)


def test_plot_gelu_choice_is_validated(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["plot", "gelu", "--approximate", "sigmoid", "-o", str(tmp_path / "a.png")])
    _one_error_line(capsys.readouterr().err, "sigmoid")


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "a.png"
    assert main(["plot", "gelu", "silu", "elu", "--alpha", "0.5", "--approximate", "tanh",
                 "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gelu(approximate='tanh')" in out and "elu(alpha=0.5)" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_curves_are_the_functions_and_their_gradients():
    args = _cli_plot.argparse.Namespace(names=["elu", "prelu"], range=(-2.0, 2.0), points=9,
                                        dtype="float64", alpha=0.5)
    for name in _cli_plot.plot_params():
        if not hasattr(args, name):
            setattr(args, name, None)
    (label, x, y, dy), (plabel, _, py, pdy) = _cli_plot._curves(args)
    assert label == "elu(alpha=0.5)"
    np.testing.assert_array_equal(y, fastact.elu(x, 0.5))
    np.testing.assert_array_equal(dy, fastact.elu_backward(np.ones_like(x), x, 0.5))
    np.testing.assert_array_equal(py, fastact.prelu(x, 0.25))


def test_bench_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "b.png"
    assert main(["bench", *TINY, "--direction", "both", "--plot", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_passes_on_this_build(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "all" in out and "checks passed" in out
    if "native" in fastact._BACKENDS:  # every usable SIMD level was checked
        m = fastact._BACKENDS["native"].m
        assert f"native {m.isa_best()}" in out
        assert m.isa_in_use() == fastact.config()["simd"]["in_use"]  # restored


def test_check_fails_on_a_wrong_result(monkeypatch, capsys):
    real = _cli_check._api.build_functions

    def broken(backend):
        fns = dict(real(backend))
        relu = fns["relu"]
        fns["relu"] = lambda x, **kw: relu(x, **kw) + 1  # wrong everywhere
        return fns

    monkeypatch.setattr(_cli_check._api, "build_functions", broken)
    assert main(["check", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "relu(" in out and "checks FAILED" in out


def test_python_dash_m_and_console_script(tmp_path):
    env = dict(os.environ)  # the fastact these tests import, also from another folder
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastact.__file__))]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    result = subprocess.run([sys.executable, "-m", "fastact", "info"], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "backend" in result.stdout
    script = shutil.which("fastact")
    if script is None:
        pytest.skip("the fastact console script is not installed on PATH")
    # without the extension (a no-compiler install) the import warns once on
    # stderr, by design (CONTRACT.md s.6); the CLI's own error is what is checked
    quiet = dict(os.environ, PYTHONWARNINGS="ignore::RuntimeWarning")
    result = subprocess.run([script, "plot", "softmax", "-o", str(tmp_path / "a.png")],
                            capture_output=True, text=True, cwd=tmp_path, env=quiet,
                            timeout=120)
    assert result.returncode != 0
    _one_error_line(result.stderr, "fastact plot")


# ---------------------------------------------------------------------------
# The speed table's engine: numexpr formulas and the targets, from rows

def test_numexpr_expressions_are_derived_from_the_numpy_formulas():
    for act in R.ACTIVATIONS:
        form = _bench.numexpr_expression(act)
        if form is None:
            continue
        text, scalars = form
        assert "np." not in text and "clip(" not in text
    ne = pytest.importorskip("numexpr")
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    for name, reference in (("hardsigmoid", np.clip(x / 6 + 0.5, 0, 1)),
                            ("sigmoid", 1 / (1 + np.exp(-x)))):
        text, scalars = _bench.numexpr_expression(R.BY_NAME[name])
        local = {k: np.float32(v) for k, v in scalars.items()}
        out = np.empty_like(x)
        ne.evaluate(text, local_dict={**local, "x": x}, out=out, casting="same_kind")
        np.testing.assert_allclose(out, reference, rtol=1e-6)
    assert ne.evaluate(text, local_dict={**local, "x": x}).dtype == np.float32  # sigmoid


def test_transcendental_ops_are_those_with_a_transcendental_numpy_formula():
    ops = _bench.transcendental_ops()
    for name in ("sigmoid", "tanh", "silu", "gelu", "elu", "softplus", "mish"):
        assert name in ops  # issue 3's list
    for name in ("relu", "hardsigmoid", "softsign", "softmax"):
        assert name not in ops


def _row(op, direction, dtype, n, fastact_ns=None, **peers):
    row = {"op": op, "direction": direction, "dtype": dtype, "n": n, "threads": 2,
           "backend": "native", "fastact": fastact_ns, "notes": ""}
    for peer in _bench.PEERS:
        row[peer] = peers.get(peer)
        if fastact_ns is not None and peers.get(peer) is not None:
            row[f"{peer}/fastact"] = peers[peer] / fastact_ns
    return row


def test_targets_from_rows():
    N, C = _bench.TARGET_LARGE_N, _bench.TARGET_CACHE_N
    rows = [
        _row("copy", "forward", "float32", N, numpy=0.5, torch=0.25),
        _row("add", "backward", "float32", N, numpy=0.8),
        _row("copy", "forward", "float32", C, numpy=0.2, torch=0.1),
        _row("gelu", "forward", "float32", N, 0.29, torch=0.6, numpy=28.0),   # 1.16x copy
        _row("gelu", "backward", "float32", N, 1.0, torch=3.0),               # 1.25x add
        _row("gelu", "forward", "float32", C, 0.3, torch=0.2, numpy=3.0),     # 3x copy
    ]
    rows += [
        _row("relu", "forward", "float32", N, 0.7, torch=0.8),                # 1.4x copy
        _row("relu", "forward", "float32", C, 0.1, torch=0.1),
    ]
    t = {x["target"][:3]: x for x in _bench.targets(rows)}
    assert t["1. "]["met"] is False and t["1. "]["cells"] == 3
    # each failing cell with its evidence: the cache-resident time against the
    # same reference (absent: no 1e5 backward row) and PyTorch's
    assert t["1. "]["failed"] == [
        "gelu bwd float32 1e7: 1.25x add (torch 3.75x add)",
        "relu fwd float32 1e7: 2.80x copy (at 1e5, cache-resident: 0.40x; torch 3.20x copy)"]
    assert t["1. "]["torch_fails"] == (2, 2)
    assert t["2a."]["met"] is False and len(t["2a."]["failed"]) == 1
    assert t["2a."]["torch_fails"] is None
    assert t["3. "]["failed"] == ["gelu fwd float32 1e5: 3.00x copy (torch 2.00x copy)"]
    assert t["3. "]["torch_fails"] == (0, 1)
    text = _bench.format_targets(rows)
    assert "gelu fwd float32 1e5: 3.00x copy" in text
    assert "torch misses the same limit in 0 of the 1 failing" in text
    assert "NOT MET" in text
    geo = [x for x in _bench.targets(rows) if x["target"].startswith("2b.")]
    smooth = [0.6 / 0.29, 3.0, 0.2 / 0.3]
    torch_mean = np.exp(np.mean(np.log(smooth + [0.8 / 0.7, 1.0])))
    assert geo[0]["value"] == pytest.approx(torch_mean)
    assert geo[0]["parts"]["smooth"] == pytest.approx(np.exp(np.mean(np.log(smooth))))
    assert geo[0]["parts"]["piecewise-linear"] == pytest.approx(np.sqrt(0.8 / 0.7))
    assert "piecewise-linear ops 1.07; smooth ops" in text


def test_targets_not_measured_without_rows():
    assert all(t["met"] is None for t in _bench.targets([]))
    assert "not measured" in _bench.format_targets([])
