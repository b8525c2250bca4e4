"""``python -m fastact`` and the ``fastact`` command.

Without a command: fastact's configuration (``fastact.show_config()``) and a
short speed table against the NumPy formulas (and SciPy, numexpr and PyTorch
when installed): float32 and float64, 1e5 and 1e6 elements, every activation,
forward.  That is the ``bench`` command with its defaults; its options may
follow ``fastact`` directly (``fastact --ops gelu --backward``).

Commands (each is one entry of :data:`COMMANDS`):

  info    the configuration (``fastact.show_config()``)
  bench   the speed table, with every option (``fastact bench --help``)
  plot    activations and their derivatives as a PNG (needs ``fastact[plot]``)
  check   a fast self-test of the installed build; exit status 1 on a failure

Errors are one line on stderr, ``fastact: error: ...``, and exit status 1
(2 for a wrong command line).  The timing engine is ``fastact._bench``;
``benchmarks/compare.py`` runs it with every peer and every size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ._cli import CLIError, check_writable

#: Sizes of the default (short) table.
SHORT_SIZES = (10**5, 10**6)
#: --quick: shorter samples, and one size unless --sizes is given.
QUICK = {"min_time": 0.005, "samples": 3, "sizes": (10**5,)}


def _size(text: str) -> int:
    from . import _bench
    try:
        return _bench._sizes([text])[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---------------------------------------------------------------------------
# info

def add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print fastact.config() as JSON instead")


def info(args: argparse.Namespace) -> int:
    import fastact
    if args.json:
        print(json.dumps(fastact.config(), indent=1, default=str))
    else:
        fastact.show_config()
    return 0


# ---------------------------------------------------------------------------
# bench

def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the speed table.

    No option has an explicit default (unset ones are None or False);
    :func:`bench` fills them in, and a caller may change them with
    ``parser.set_defaults`` (as ``benchmarks/compare.py`` does).
    """
    from . import _bench
    parser.add_argument("--ops", nargs="+", metavar="OP", choices=_bench.op_names(),
                        help="activations to time (default: all): "
                             + " ".join(_bench.op_names()))
    parser.add_argument("--dtypes", nargs="+", metavar="DTYPE", choices=_bench.DTYPES,
                        help="float32 and/or float64 (default: both)")
    parser.add_argument("--sizes", nargs="+", metavar="N", type=_size,
                        help="numbers of elements, among "
                             f"{' '.join(map(_bench.format_size, _bench.ALLOWED_SIZES))} "
                             "(default: 1e5 1e6)")
    parser.add_argument("--direction", choices=("forward", "backward", "both"),
                        help="time the activations, their gradients, or both "
                             "(default: forward)")
    parser.add_argument("--backward", action="store_true",
                        help="same as --direction both")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="threads for fastact and the peers (default: "
                             "fastact.get_num_threads())")
    parser.add_argument("--peers", nargs="+", metavar="PEER", choices=_bench.PEERS,
                        help=f"libraries to compare with, among {' '.join(_bench.PEERS)} "
                             f"(default: {' '.join(_bench.DEFAULT_PEERS)}, plus fallback -- "
                             "fastact's NumPy backend -- when gradients are timed, since the "
                             "registry has no NumPy formula for them); those not installed "
                             "are skipped")
    parser.add_argument("--csv", metavar="FILE", help="also write the rows as CSV")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the rows and the environment as JSON")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also draw ns/element against size, log-log, one panel per "
                             "activation and direction, one line per library (needs "
                             "matplotlib: pip install \"fastact[plot]\")")
    parser.add_argument("--targets", action="store_true",
                        help="also print issue 3's speed targets checked against the table "
                             "(needs the reference rows, torch, and sizes up to 1e7)")
    parser.add_argument("--quick", action="store_true",
                        help="shorter samples, and 1e5 elements only unless --sizes is given")
    parser.add_argument("--samples", type=int, metavar="K",
                        help=f"samples per measurement, the median is kept (default: "
                             f"{_bench.SAMPLES})")
    parser.add_argument("--min-time", type=float, metavar="SECONDS",
                        help=f"least duration of one sample (default: {_bench.MIN_TIME})")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        help="a progress bar on stderr (default: when stderr is a terminal)")


class ProgressBar:
    """``[#####.....] 12/96  gelu backward float32 1e5  0:41 left`` on stderr."""

    WIDTH = 24

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.start = time.monotonic()
        self.last = 0

    def __call__(self, done: int, total: int, label: str) -> None:
        if label == "done":
            self.stream.write("\r" + " " * self.last + "\r")
            self.stream.flush()
            return
        filled = self.WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        elapsed = time.monotonic() - self.start
        left = ""
        if done:
            seconds = int(elapsed / done * (total - done))
            left = f"  {seconds // 60}:{seconds % 60:02d} left"
        text = f"[{bar}] {done + 1}/{total}  {label}{left}"
        self.stream.write("\r" + text.ljust(self.last))
        self.stream.flush()
        self.last = len(text)


def bench(args: argparse.Namespace) -> int:
    """Print the configuration and the speed table; write CSV/JSON/PNG if asked."""
    import fastact
    from . import _bench

    def option(name):
        return getattr(args, name, None)

    quick = bool(option("quick"))
    direction = option("direction") or ("both" if option("backward") else "forward")
    if option("backward") and option("direction") not in (None, "both"):
        raise CLIError(f"--backward contradicts --direction {option('direction')}")
    backward = direction != "forward"
    peers = option("peers")
    if peers is None:
        peers = _bench.DEFAULT_PEERS + (("fallback",) if backward else ())
    sizes = option("sizes") or (QUICK["sizes"] if quick else SHORT_SIZES)
    timing = {"min_time": option("min_time") or (QUICK["min_time"] if quick else _bench.MIN_TIME),
              "samples": option("samples") or (QUICK["samples"] if quick else _bench.SAMPLES)}
    if option("threads") is not None and option("threads") < 1:
        raise CLIError(f"--threads must be >= 1, got {option('threads')}")
    if timing["samples"] < 1 or timing["min_time"] <= 0:
        raise CLIError("--samples must be >= 1 and --min-time > 0")
    for path in (option("csv"), option("json"), option("plot")):
        if path:
            check_writable(path)
    if option("plot"):
        from . import _cli_plot
        _cli_plot.require_matplotlib()

    fastact.show_config()
    print()
    sys.stdout.flush()
    show = option("progress")
    progress = ProgressBar() if (sys.stderr.isatty() if show is None else show) else None
    directions = _bench.DIRECTIONS if direction == "both" else (direction,)
    rows = _bench.run(option("ops"), option("dtypes") or _bench.DTYPES, sizes,
                      threads=option("threads"), peers=peers, progress=progress,
                      directions=directions, **timing)
    print(_bench.format_table(rows))
    if option("targets"):
        print()
        print(_bench.format_targets(rows))
    if option("csv"):
        _bench.to_csv(rows, args.csv)
        print(f"\nwrote {args.csv}")
    if option("json"):
        _bench.to_json(rows, args.json)
        print(f"\nwrote {args.json}")
    if option("plot"):
        from . import _cli_plot
        print("\n" + _cli_plot.plot_bench(rows, args.plot))
    return 0


# ---------------------------------------------------------------------------
# plot

def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    from . import _cli_plot
    _cli_plot.add_arguments(parser)


def plot(args: argparse.Namespace) -> int:
    from . import _cli_plot
    check_writable(args.output)
    _cli_plot.require_matplotlib()
    print(_cli_plot.plot_activations(args))
    return 0


# ---------------------------------------------------------------------------
# check

def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print only failures and the summary line")


def check(args: argparse.Namespace) -> int:
    from . import _cli_check
    return _cli_check.main(quiet=args.quiet)


#: name: (function of the parsed arguments, adds its options, one-line help).
COMMANDS = {
    "info": (info, add_info_arguments, "the configuration: version, backend, SIMD, threads"),
    "bench": (bench, add_bench_arguments,
              "the speed table against NumPy, SciPy, numexpr and PyTorch"),
    "plot": (plot, add_plot_arguments,
             "draw activations and their derivatives into a PNG (needs fastact[plot])"),
    "check": (check, add_check_arguments,
              "self-test of this installation: values, special values, every SIMD level"),
}


#: The command run when none is named (its options may follow ``fastact`` directly).
DEFAULT_COMMAND = "bench"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fastact",
        description="Without a command: fastact's configuration and a short speed table "
                    f"against the NumPy formulas and PyTorch ('{DEFAULT_COMMAND}' with its "
                    "defaults); its options may follow 'fastact' directly.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=_Parser)
    for name, (func, add_arguments, text) in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        add_arguments(sub)
        sub.set_defaults(func=func)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, DEFAULT_COMMAND)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        sys.stderr.write(f"fastact {args.command}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"\nfastact {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
