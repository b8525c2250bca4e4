"""Regenerate the README's function table from the registry.

    python tools/readme_tables.py          # rewrite README.md in place
    python tools/readme_tables.py --check  # exit 1 if README.md is out of date

The table sits between the markers ``<!-- functions -->`` and
``<!-- /functions -->``; tests/test_readme.py runs the check.
"""

import argparse
import os
import re
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
REGISTRY = os.path.join(ROOT, "src", "fastact", "_registry.py")
START, END = "<!-- functions -->", "<!-- /functions -->"


def _signature(act, R):
    parts = ["x"]
    star = False
    for p in act.params:
        if p.keyword_only and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.default is R["REQUIRED"] else f"{p.name}={p.default!r}")
    return f"{act.name}({', '.join(parts)})"


def function_table(registry_path=REGISTRY):
    R = runpy.run_path(registry_path)
    rows = ["| function | formula | gradient from | notes |", "|---|---|---|---|"]
    for act in R["ACTIVATIONS"]:
        source = "y (the forward result)" if act.kind == R["SOFTMAX"] else (
            "x or y" if act.backward_from_y else "x")
        notes = "exact" if act.exact else ""
        formula = act.formula.replace("|", "\\|")
        rows.append(f"| `{_signature(act, R)}` | {formula} | {source} | {notes} |")
    return "\n".join(rows)


def render(text, table):
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {START} ... {END} section")
    return pattern.sub(lambda m: f"{START}\n{table}\n{END}", text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    with open(README) as f:
        text = f.read()
    new = render(text, function_table())
    if args.check:
        if new != text:
            print("README.md's function table is out of date: run python tools/readme_tables.py")
            return 1
        return 0
    with open(README, "w") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
