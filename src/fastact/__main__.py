"""``python -m fastact`` and the ``fastact`` command.

Without a command: fastact's configuration (``fastact.show_config()``) and a
short speed table against the NumPy formulas (and PyTorch when installed):
float32 and float64, 1e5 and 1e6 elements, every activation, forward.  That is
the ``bench`` command with its defaults; its options may follow ``fastact``
directly (``fastact --ops gelu --backward``).

Commands (each is one entry of :data:`COMMANDS`):

  bench   the speed table, with every option (``fastact bench --help``)

The timing engine is ``fastact._bench``; ``benchmarks/compare.py`` runs it
with every peer and every size.
"""

from __future__ import annotations

import argparse
import sys

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


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the speed table.

    No option has an explicit default (unset ones are None or False);
    :func:`bench` fills them in, and a caller may change them with
    ``parser.set_defaults`` (as ``benchmarks/compare.py`` does).
    """
    from . import _bench
    parser.add_argument("--ops", nargs="+", metavar="OP", choices=_bench.op_names(),
                        help="activations to time (default: all)")
    parser.add_argument("--dtypes", nargs="+", metavar="DTYPE", choices=_bench.DTYPES,
                        help="float32 and/or float64 (default: both)")
    parser.add_argument("--sizes", nargs="+", metavar="N", type=_size,
                        help="numbers of elements, among "
                             f"{' '.join(map(_bench.format_size, _bench.ALLOWED_SIZES))} "
                             "(default: 1e5 1e6)")
    parser.add_argument("--backward", action="store_true",
                        help="also time the gradients (adds the 'fallback' peer, fastact's "
                             "NumPy backend, unless --peers is given: the registry has no "
                             "NumPy formula for gradients)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="threads for fastact and PyTorch (default: "
                             "fastact.get_num_threads())")
    parser.add_argument("--peers", nargs="+", metavar="PEER", choices=_bench.PEERS,
                        help=f"libraries to compare with, among {' '.join(_bench.PEERS)} "
                             f"(default: {' '.join(_bench.DEFAULT_PEERS)}); those not "
                             "installed are skipped")
    parser.add_argument("--csv", metavar="FILE", help="also write the rows as CSV")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the rows and the environment as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="shorter samples, and 1e5 elements only unless --sizes is given")
    parser.add_argument("--samples", type=int, metavar="K",
                        help=f"samples per measurement, the median is kept (default: "
                             f"{_bench.SAMPLES})")
    parser.add_argument("--min-time", type=float, metavar="SECONDS",
                        help=f"least duration of one sample (default: {_bench.MIN_TIME})")


def _progress(done: int, total: int, label: str) -> None:
    text = "" if label == "done" else f"[{done + 1}/{total}] {label}"
    sys.stderr.write("\r" + text.ljust(60) + ("\r" if not text else ""))
    sys.stderr.flush()


def bench(args: argparse.Namespace) -> int:
    """Print the configuration and the speed table; write CSV/JSON if asked."""
    import fastact
    from . import _bench

    def option(name):
        return getattr(args, name, None)

    quick = bool(option("quick"))
    backward = bool(option("backward"))
    peers = option("peers")
    if peers is None:
        peers = _bench.DEFAULT_PEERS + (("fallback",) if backward else ())
    sizes = option("sizes") or (QUICK["sizes"] if quick else SHORT_SIZES)
    timing = {"min_time": option("min_time") or (QUICK["min_time"] if quick else _bench.MIN_TIME),
              "samples": option("samples") or (QUICK["samples"] if quick else _bench.SAMPLES)}

    fastact.show_config()
    print()
    sys.stdout.flush()
    rows = _bench.run(option("ops"), option("dtypes") or _bench.DTYPES, sizes, backward,
                      option("threads"), peers,
                      _progress if sys.stderr.isatty() else None, **timing)
    print(_bench.format_table(rows))
    if option("csv"):
        _bench.to_csv(rows, args.csv)
        print(f"\nwrote {args.csv}")
    if option("json"):
        _bench.to_json(rows, args.json)
        print(f"\nwrote {args.json}")
    return 0


#: name: (function of the parsed arguments, adds its options, one-line help).
COMMANDS = {
    "bench": (bench, add_bench_arguments, "the speed table against NumPy and PyTorch"),
}


#: The command run when none is named (its options may follow ``fastact`` directly).
DEFAULT_COMMAND = "bench"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastact",
        description="Without a command: fastact's configuration and a short speed table "
                    f"against the NumPy formulas and PyTorch ('{DEFAULT_COMMAND}' with its "
                    "defaults); its options may follow 'fastact' directly.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
