#!/usr/bin/env bash
# Run the test suite against an AddressSanitizer + UBSan build of the native
# extension (FASTACT_SANITIZE=1 in setup.py).  The build happens in a copy of
# the committed tree, so the working tree's own build is left alone.
#   bash tests/sanitize.sh [pytest args...]
#   bash tests/sanitize.sh --exec CMD [args...]   # any command instead, e.g. the fuzzer:
#   bash tests/sanitize.sh --exec python3 tests/fuzz_boundary.py --cases 1000000
# Zero reports expected: halt_on_error makes any report fail the run.
# Commit first: what runs is HEAD (tests included), not the working tree.
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive HEAD | tar -x -C "$work"
cd "$work"
FASTACT_SANITIZE=1 FASTACT_REQUIRE_NATIVE=1 python3 setup.py -q build_ext --inplace
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Python itself is not instrumented, so leak detection is off; the >2^31
# element test needs 8 GiB more under ASan's shadow memory and is skipped.
if [ "${1:-}" = "--exec" ]; then
    shift
    PYTHONPATH=src "$@"
else
    PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider tests -k "not scale" "$@"
fi
