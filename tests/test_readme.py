"""The docs stay true: the README's tables are the registry's, its example
runs, and the type stub is the registry's and covers every public name."""

import os
import re
import runpy

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

# The tests also run against an installed wheel from a copy of tests/ alone
# (.ci/run); the README and the tools are then elsewhere.
pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "tools", "readme_tables.py")),
                                reason="not in a source tree (README.md and tools/ absent)")


def _readme():
    with open(README) as f:
        return f.read()


def test_function_table_is_generated_from_the_registry():
    tool = runpy.run_path(os.path.join(ROOT, "tools", "readme_tables.py"))
    text = _readme()
    assert tool["render"](text, tool["function_table"]()) == text, \
        "README.md's function table is out of date: run python tools/readme_tables.py"


def test_api_reference_is_generated_from_the_registry():
    tool = runpy.run_path(os.path.join(ROOT, "tools", "readme_tables.py"))
    text = _readme()
    assert tool["render_all"](text) == text, \
        "README.md's API reference is out of date: run python tools/readme_tables.py"
    import fastact
    for name in fastact._FUNCTIONS:  # every public function has its row
        assert f"| `{name}(" in text, name


def test_every_activation_is_in_the_readme():
    import fastact
    text = _readme()
    for name in fastact.ACTIVATIONS:
        assert f"`{name}(" in text


def test_readme_example_runs():
    block = re.search(r"```python\n(.*?)```", _readme(), re.S)
    assert block, "README.md has no python example"
    namespace = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["dZ"].shape == namespace["H"].shape


def test_readme_test_command_is_what_ci_runs():
    text = _readme()
    section = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```\n<!-- /test-command -->",
                        text, re.S)
    assert section and "pytest" in section.group(1)
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "test-command" in f.read()


def test_type_stub_is_generated_from_the_registry():
    tool = runpy.run_path(os.path.join(ROOT, "tools", "stubs.py"))
    with open(tool["STUB"]) as f:
        assert tool["render"]() == f.read(), \
            "src/fastact/__init__.pyi is out of date: run python tools/stubs.py"


def test_type_stub_covers_every_public_name():
    import ast
    import inspect

    import fastact
    with open(os.path.join(ROOT, "src", "fastact", "__init__.pyi")) as f:
        tree = ast.parse(f.read())
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    defined.update({node.target.id: node for node in tree.body
                    if isinstance(node, ast.AnnAssign)})
    assert set(fastact.__all__) <= set(defined), set(fastact.__all__) - set(defined)
    for name in fastact._FUNCTIONS:  # the stub's parameters are the function's
        stub = defined[name].args
        names = [a.arg for a in stub.args + stub.kwonlyargs]
        assert names == list(inspect.signature(getattr(fastact, name)).parameters), name
    assert os.path.exists(os.path.join(ROOT, "src", "fastact", "py.typed"))
