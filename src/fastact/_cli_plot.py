"""Pictures for the command line: ``fastact plot`` and ``fastact bench --plot``.

matplotlib is optional (``pip install "fastact[plot]"``) and imported only
here, with the Agg backend (files, no display).  The options of ``fastact
plot`` that set parameters (``--alpha``, ``--beta``, ``--approximate``, ...)
are derived from the registry's :class:`~fastact._registry.Param` entries:
every parameter of a plottable activation becomes one option, typed by its
``kind``, and applies to each named activation that has it.
"""

from __future__ import annotations

import argparse
import math
from typing import Dict, List, Sequence

import numpy as np

from . import _registry as R
from ._cli import CLIError

INSTALL_HINT = 'pip install "fastact[plot]"'
#: Kinds of activation that map x to y element by element, so have a curve.
PLOTTABLE_KINDS = (R.ELEMENTWISE, R.PRELU)
DEFAULT_RANGE = (-5.0, 5.0)
DEFAULT_POINTS = 1001


def require_matplotlib():
    """The pyplot module, or the one-line error that says how to install it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError(f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}") \
            from None
    return plt


# ---------------------------------------------------------------------------
# fastact plot

def plot_params() -> Dict[str, R.Param]:
    """{name: Param} of every parameter of a plottable activation (first
    definition of each name; axis parameters left out: a curve has no axis)."""
    params = {}
    for act in R.ACTIVATIONS:
        if act.kind not in PLOTTABLE_KINDS:
            continue
        for p in act.params:
            if p.kind != "axis":
                params.setdefault(p.name, p)
    return params


def _owners(name: str) -> List[str]:
    return [a.name for a in R.ACTIVATIONS if a.kind in PLOTTABLE_KINDS
            and any(p.name == name for p in a.params)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="activations to draw: " + " ".join(
                            a.name for a in R.ACTIVATIONS if a.kind in PLOTTABLE_KINDS))
    parser.add_argument("-o", "--output", required=True, metavar="FILE.png",
                        help="the picture to write")
    parser.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"),
                        default=DEFAULT_RANGE, help="the x range (default: %(default)s)")
    parser.add_argument("--points", type=int, default=DEFAULT_POINTS,
                        help="number of x values (default: %(default)s)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                        help="compute dtype (default: %(default)s)")
    group = parser.add_argument_group(
        "activation parameters (from the registry; each applies to the named activations "
        "that have it, the others keep their defaults)")
    for name, p in plot_params().items():
        owners = ", ".join(_owners(name))
        text = f"{p.doc} ({owners}"
        text += ")" if p.default is R.REQUIRED else f"; default {p.default!r})"
        text = text.replace("%", "%%")
        flag = "--" + name.replace("_", "-")
        if p.kind == "bool":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                               help=text)
        elif p.kind == "choice":
            group.add_argument(flag, dest=name, choices=p.choices, help=text)
        else:
            group.add_argument(flag, dest=name, type=int if p.kind == "int" else float,
                               metavar="V", help=text)


def _curves(args):
    """[(label, x, y, dy)] for the named activations with the given parameters."""
    import fastact

    lo, hi = args.range
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise CLIError(f"--range must be two finite numbers LO < HI, got {lo} {hi}")
    if args.points < 2:
        raise CLIError(f"--points must be >= 2, got {args.points}")
    given = {name: getattr(args, name) for name in plot_params()
             if getattr(args, name, None) is not None}
    acts = []
    for name in args.names:
        act = R.BY_NAME.get(name)
        if act is None:
            raise CLIError(f"unknown activation {name!r}; expected some of "
                           + ", ".join(fastact.ACTIVATIONS))
        if act.kind not in PLOTTABLE_KINDS:
            raise CLIError(f"{name} acts along an axis ({act.kind}), so it has no curve; "
                           "plot draws element-wise activations and prelu")
        acts.append(act)
    unused = [k for k in given if not any(p.name == k for a in acts for p in a.params)]
    if unused:
        raise CLIError(", ".join("--" + k.replace("_", "-") for k in unused)
                       + f" does not apply to {', '.join(args.names)}")
    x = np.linspace(lo, hi, args.points, dtype=args.dtype)
    curves = []
    for act in acts:
        values = {p.name: given[p.name] for p in act.params if p.name in given}
        kwargs = dict(values)
        for p in act.params:  # required parameters (prelu's weight) get their sample
            if p.default is R.REQUIRED and p.name not in kwargs:
                kwargs[p.name] = p.sample
        forward = getattr(fastact, act.name)
        backward = getattr(fastact, act.name + "_backward")
        y = forward(x, **kwargs)
        dy = backward(np.ones_like(x), x, **kwargs)
        if isinstance(dy, tuple):  # prelu: (grad_input, grad_weight)
            dy = dy[0]
        shown = {p.name: kwargs[p.name] for p in act.params
                 if p.name in kwargs and p.kind != "axis"}
        label = act.name + ("(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
                            if shown else "")
        curves.append((label, x, y, dy))
    return curves


def plot_activations(args) -> str:
    """Draw each activation (left) and its derivative (right); the line to print."""
    plt = require_matplotlib()
    curves = _curves(args)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for label, x, y, dy in curves:
        left.plot(x, y, label=label)
        right.plot(x, dy, label=label)
    for ax, title in ((left, "f(x)"), (right, "f'(x)  (fastact's *_backward with grad_output = 1)")):
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.axhline(0, color="0.7", linewidth=0.8)
        ax.axvline(0, color="0.7", linewidth=0.8)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("fastact " + ", ".join(label for label, *_ in curves))
    fig.savefig(args.output, dpi=110)
    plt.close(fig)
    lo, hi = args.range
    return (f"wrote {args.output}: {', '.join(label for label, *_ in curves)} and their "
            f"derivatives on [{lo:g}, {hi:g}] ({args.points} points, {args.dtype})")


# ---------------------------------------------------------------------------
# fastact bench --plot

def plot_bench(rows: Sequence[dict], path: str) -> str:
    """Log-log ns/element against n: one panel per activation and direction,
    one colour per library, solid float32 / dashed float64, the reference row
    (copy for forward, add for backward) in grey; the line to print."""
    from . import _bench
    plt = require_matplotlib()
    refs = _bench.REFERENCES
    panels = list(dict.fromkeys((r["op"], r["direction"]) for r in rows if r["op"] not in refs))
    if not panels:
            raise CLIError("nothing to plot: the run timed no activation")
    libs = [c for c in ("fastact",) + _bench.PEERS if any(r.get(c) is not None for r in rows)]
    colors = {lib: f"C{i}" for i, lib in enumerate(libs)}
    styles = {"float32": "-", "float64": "--"}
    ncols = min(6, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows + 0.8),
                             squeeze=False, constrained_layout=True)

    def series(op, direction, dtype, column):
        pts = sorted((r["n"], r[column]) for r in rows
                     if r["op"] == op and r["direction"] == direction
                     and r["dtype"] == dtype and r.get(column) is not None)
        return [p[0] for p in pts], [p[1] for p in pts]

    for ax, (op, direction) in zip(axes.flat, panels):
        for dtype, style in styles.items():
            ref_op = next((k for k, (d, _) in refs.items() if d == direction), None)
            ref = [(n, _bench.reference(rows, ref_op, dtype, n)) for n in
                   sorted({r["n"] for r in rows if r["op"] == ref_op and r["dtype"] == dtype})]
            ref = [p for p in ref if p[1] is not None]
            if ref:
                ax.plot(*zip(*ref), style, color="0.6", linewidth=1)
            for lib in libs:
                n, t = series(op, direction, dtype, lib)
                if n:
                    ax.plot(n, t, style, color=colors[lib], marker=".", markersize=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{op} {'backward' if direction == 'backward' else ''}".strip(),
                     fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("ns / element", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("n (elements)", fontsize=8)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=colors[lib], label=lib) for lib in libs]
    handles += [Line2D([], [], color="0.6", label="memory reference (copy / add)")]
    handles += [Line2D([], [], color="k", linestyle=s, label=d) for d, s in styles.items()
                if any(r["dtype"] == d for r in rows)]
    threads = sorted({r["threads"] for r in rows})
    fig.suptitle(f"fastact speed table: ns per element (lower is better), threads "
                 f"{', '.join(map(str, threads))}", fontsize=11)
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return (f"wrote {path}: {len(panels)} panels (activation x direction), "
            f"{len(libs)} libraries ({', '.join(libs)}), log-log ns/element against n")
