"""The full speed table: fastact against every peer, at every size.

    python benchmarks/compare.py [--backward] [--sizes 1e5 1e6] [--csv FILE] [--json FILE] ...

The same engine and options as ``python -m fastact bench`` (``fastact._bench``),
with other defaults: every peer (NumPy formula, SciPy, PyTorch, fastact's own
NumPy backend) and every size from 16 to 1e7 elements.
"""

import argparse
import sys

from fastact import _bench
from fastact.__main__ import add_bench_arguments, bench


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser)
    parser.set_defaults(sizes=_bench.ALLOWED_SIZES, peers=_bench.PEERS)
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
