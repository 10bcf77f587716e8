"""The layers of lib/ point one way: no import cycle among its modules, and lib/http.py (the
request, response and error types) imports nothing of lib/ but lib/env.

An import inside a function counts as an edge like one at the top of a module: a lazy import
only hides a cycle from the interpreter, the two modules still depend on each other.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")


def lib_imports(path, modules):
    """The lib modules one file imports, anywhere in it."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "lib":
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lib."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("lib."))
    return out


def graph():
    modules = {f[:-3] for f in os.listdir(LIB) if f.endswith(".py") and f != "__init__.py"}
    return {m: lib_imports(os.path.join(LIB, m + ".py"), modules) - {m} for m in modules}


def find_cycle(edges):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}  # module -> "open" while on the current path, "done" after
    path = []

    def visit(m):
        state[m] = "open"
        path.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = "done"
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle_in_lib():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle in lib/: " + " -> ".join(cycle)


def test_find_cycle_sees_lazy_and_long_cycles(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    lazy = "from lib import x\n\ndef f():\n    from lib import y\n    import lib.z\n"
    path = tmp_path / "sample.py"
    path.write_text(lazy, encoding="utf-8")
    assert lib_imports(str(path), {"x", "y", "z"}) == {"x", "y", "z"}


def test_http_is_the_bottom_layer():
    assert graph()["http"] <= {"env"}


def levels(edges):
    """Each module's level: 0 imports nothing of lib/, else one above its highest import."""
    out = {}

    def level(m):
        if m not in out:
            out[m] = 1 + max((level(d) for d in edges[m]), default=-1)
        return out[m]
    for m in edges:
        level(m)
    return out


def test_the_architecture_document_shows_the_levels_as_they_are():
    import re
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as f:
        text = f.read()
    documented = {}
    for number, names in re.findall(r"^\| (\d+) \| ([a-z_, ]+) \|$", text, flags=re.M):
        for name in names.split(","):
            documented[name.strip()] = int(number)
    assert documented == levels(graph()), "docs/architecture.md's level table is out of date"
