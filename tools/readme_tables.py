"""Regenerate the README's tables that come from the registry.

    python tools/readme_tables.py          # rewrite README.md in place
    python tools/readme_tables.py --check  # exit 1 if README.md is out of date

The function table sits between ``<!-- functions -->`` and
``<!-- /functions -->``, the API reference (every public function's exact
signature, as ``fastact._api`` generates it, and its parameters' documentation)
between ``<!-- api -->`` and ``<!-- /api -->``; tests/test_readme.py runs the
check.
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
API_START, API_END = "<!-- api -->", "<!-- /api -->"


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


def _cell(text):
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|")


def api_table():
    """Every public function: its signature (parsed from the source ``_api``
    generates, so it cannot drift), what it returns, its parameters."""
    import ast
    sys.path.insert(0, os.path.join(ROOT, "src"))
    try:
        from fastact import _api
        from fastact import _registry as R
    finally:
        sys.path.pop(0)
    rows = ["| function | returns | parameters after the arrays |", "|---|---|---|"]
    for act in R.ACTIVATIONS:
        params = "; ".join(
            f"`{p.name}`: {_cell(p.doc)}" + (f" ({_cell(p.expect)})" if p.expect else "")
            for p in act.params) or "-"
        for source in _api._signatures(act):
            head = source.split("\n", 1)[0]
            func = ast.parse(head + "\n    pass").body[0]
            signature = head[len("def "):-1]
            backward = func.name.endswith("_backward")
            if not backward:
                returns = "y" + (", with x.shape[axis] // pieces along axis"
                                 if act.kind == R.MAXOUT else "")
            elif act.kind == R.PRELU:
                returns = "(dL/dx, dL/dweight)"
            else:
                returns = "dL/dx"
            rows.append(f"| `{_cell(signature)}` | {returns} | {params} |")
    return "\n".join(rows)


def render(text, table, start=START, end=END):
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {start} ... {end} section")
    return pattern.sub(lambda m: f"{start}\n{table}\n{end}", text)


def render_all(text):
    """README text with every generated table brought up to date."""
    text = render(text, function_table())
    return render(text, api_table(), API_START, API_END)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    with open(README) as f:
        text = f.read()
    new = render_all(text)
    if args.check:
        if new != text:
            print("README.md's generated tables are out of date: run python tools/readme_tables.py")
            return 1
        return 0
    with open(README, "w") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
