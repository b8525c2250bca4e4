"""The full speed table: fastact against every peer, at every size, both
directions, with issue 3's targets checked at the end.

    python benchmarks/compare.py                       # everything (~10-20 minutes)
    python benchmarks/compare.py --ops gelu --sizes 1e5 1e7 --csv b.csv --plot b.png

The same engine and options as ``fastact bench`` (``fastact._bench``), with
other defaults: every peer (NumPy formula, SciPy, numexpr, PyTorch, fastact's
own NumPy backend), every size from 16 to 1e7 elements, forward and backward,
and ``--targets``.  The reference rows ``copy`` (forward) and ``add``
(backward) are the 2-thread memory limit the targets are measured against:
the faster of NumPy split over the threads in Python threads and PyTorch on
the same number of threads (see the docstring of ``fastact._bench``).
"""

import argparse
import sys

from fastact import _bench
from fastact.__main__ import CLIError, add_bench_arguments, bench


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser)
    parser.set_defaults(sizes=_bench.ALLOWED_SIZES, peers=_bench.PEERS, direction="both",
                        targets=True)
    try:
        return bench(parser.parse_args(argv))
    except (CLIError, ValueError, OSError) as exc:
        sys.stderr.write(f"compare.py: error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
