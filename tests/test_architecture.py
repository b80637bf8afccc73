"""The import graph of Arcade's packages: no cycles, and arrows only downwards.

Every ``.py`` file of ``arcade_core``, ``arcade_agent`` and ``arcade_server`` is parsed (never
imported) and every import statement in it becomes an edge, wherever it stands: at module
level, inside a function (a lazy import is still a dependency, only a later one), and under
``if TYPE_CHECKING:``. Type-checking imports count too, on purpose: they never run, so they
cannot break an import at run time, but they are still an arrow in the design (a service
that names ``ServerState`` in an annotation depends on the layer above it), and the circles
this test exists to prevent started as exactly that.

How an import becomes an edge:

* relative imports are resolved against the importing module's package;
* ``import a.b.c`` and ``from a.b.c import name`` import the module ``a.b.c`` (a package's
  ``__init__``); the parent packages that Python also initializes are not counted, or every
  package that re-exports its submodules would be a circle;
* ``from a.b import name`` where ``a/b/name.py`` (or ``a/b/name/``) exists imports that
  submodule instead.

A third check keeps modules small: none over :data:`MAX_LINES` lines (generated protobuf code
aside), so a module stays something one reads in one sitting.

The cycle check looks at Arcade's own modules; the layering rules (:data:`RULES`, one line
each) also see third-party ones (``grpc``, ``google.protobuf``). Both checks are unit-tested
on synthetic graphs below, so a rule that could never fail would be noticed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("arcade_core", "arcade_agent", "arcade_server")

Graph = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Rule:
    """Modules in (or under) ``source`` import nothing in (or under) any of ``forbidden``."""

    source: str
    forbidden: tuple[str, ...]
    why: str


_BELOW_RPC = ("arcade_server.rpc", "arcade_server.api", "arcade_server.state", "grpc",
              "google.protobuf", "arcade_core.rpc")


#: The layering, one rule a line.
RULES = (
    Rule("arcade_core", ("arcade_agent", "arcade_server"), "the core knows no application"),
    Rule("arcade_agent", ("arcade_server",), "the agent talks to the server only over gRPC"),
    Rule("arcade_server", ("arcade_agent",),
         "the server never runs agent code; `arcade agent` is the agent's own command"),
    Rule("arcade_server.services", _BELOW_RPC,
         "services take and return plain values; delivery goes through the Notifier"),
    Rule("arcade_server.db", (*_BELOW_RPC, "arcade_server.services"),
         "the database layer is below the services"),
)

#: No module of the packages is longer than this (lines); split a longer one by responsibility.
MAX_LINES = 400

#: Modules over MAX_LINES, tolerated for now and nowhere else: other helpers are editing them
#: while the long modules are being split, so they are split after that work is merged.
#: Remove an entry when its module is split (a test fails when one is no longer needed).
LONG_FOR_NOW = frozenset({
    "arcade_server/services/job_runs.py",  # 403 lines: likewise
})


# ---------------------------------------------------------------- reading the code


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, name: str) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports_of(root: Path, path: Path) -> set[str]:
    """Every module the file at ``path`` imports, as absolute dotted names."""
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if _is_module(root, submodule) else target)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, frozenset[str]]:
    """Module → the modules it imports (Arcade's and third-party ones)."""
    graph: dict[str, frozenset[str]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            graph[_module_name(root, path)] = frozenset(_imports_of(root, path))
    return graph


# ---------------------------------------------------------------- checks


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected group of modules that import
    each other, only following edges between modules of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(start: str) -> None:  # Tarjan, iterative (no recursion limit)
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in graph:
                    continue
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in graph[node]:
                        groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(graph, set(group), group[0]) for group in sorted(groups)]


def _cycle_in(graph: Graph, group: set[str], start: str) -> list[str]:
    """A shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected group but on no cycle")


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def rule_violations(graph: Graph, rules: Iterable[Rule]) -> list[str]:
    """``"importer -> imported (why)"`` for every import a rule forbids."""
    out = []
    for rule in rules:
        for module in sorted(m for m in graph if _under(m, rule.source)):
            for imported in sorted(graph[module]):
                if any(_under(imported, banned) for banned in rule.forbidden):
                    out.append(f"{module} -> {imported} ({rule.why})")
    return out


def long_modules(root: Path, packages: Iterable[str], limit: int) -> dict[str, int]:
    """``path: lines`` of every module of ``packages`` over ``limit`` lines (paths relative to
    ``root``; generated ``*_pb2*.py`` files are not counted)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "_pb2" in path.name:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                found[path.relative_to(root).as_posix()] = lines
    return found


# ---------------------------------------------------------------- the real code


@pytest.fixture(scope="module")
def graph() -> dict[str, frozenset[str]]:
    return import_graph(REPO, PACKAGES)


def test_the_graph_covers_every_package_and_sees_lazy_imports(graph: Graph) -> None:
    assert {"arcade_core", "arcade_agent", "arcade_server", "arcade_server.services.jobs",
            "arcade_core.rpc.v1.convert"} <= set(graph)
    # state.py migrates in a thread through an import inside a method.
    assert "arcade_server.db.migrate" in graph["arcade_server.state"]


def test_no_module_imports_itself_back(graph: Graph) -> None:
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_every_layering_rule_holds(graph: Graph) -> None:
    violations = rule_violations(graph, RULES)
    assert not violations, "forbidden imports:\n" + "\n".join(violations)


def test_no_module_is_over_the_line_limit() -> None:
    found = long_modules(REPO, PACKAGES, MAX_LINES)
    too_long = [f"{path} ({lines} lines)" for path, lines in found.items()
                if path not in LONG_FOR_NOW]
    assert not too_long, (
        f"modules over {MAX_LINES} lines; split each by responsibility into smaller modules: "
        + ", ".join(too_long)
    )
    no_longer_long = sorted(LONG_FOR_NOW - set(found))
    assert not no_longer_long, (
        f"no longer over {MAX_LINES} lines (or gone); remove from LONG_FOR_NOW: "
        + ", ".join(no_longer_long)
    )


# ---------------------------------------------------------------- the checks can fail


def test_find_cycles_names_each_cycle() -> None:
    graph = {
        "a": frozenset({"b", "os"}), "b": frozenset({"c"}), "c": frozenset({"a", "d"}),
        "d": frozenset(), "e": frozenset({"e"}), "f": frozenset({"d"}),
    }
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_find_cycles_follows_long_chains_without_recursion() -> None:
    chain = {f"m{i}": frozenset({f"m{i + 1}"}) for i in range(5000)}
    chain["m5000"] = frozenset({"m0"})
    [cycle] = find_cycles(chain)
    assert len(cycle) == 5002 and cycle[0] == cycle[-1] == "m0"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.source)
def test_each_rule_catches_an_import_it_forbids(rule: Rule) -> None:
    for banned in rule.forbidden:
        graph = {f"{rule.source}.x": frozenset({f"{banned}.y"}), f"{banned}.y": frozenset()}
        assert rule_violations(graph, [rule]) == [f"{rule.source}.x -> {banned}.y ({rule.why})"]
        assert rule_violations({"elsewhere": frozenset({banned})}, [rule]) == []


def test_imports_are_resolved_as_python_would(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/leaf.py", "other.py"):
        (pkg / name).write_text("")
    (pkg / "sub" / "mod.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import json.decoder\n"
        "from . import leaf\n"                 # a submodule of the package
        "from .. import other, VALUE\n"        # a submodule, and a name of pkg/__init__
        "from ..sub import leaf as again, later as _\n"  # a submodule, a name of sub/__init__
        "if TYPE_CHECKING:\n"
        "    from grpc import StatusCode\n"
        "def later() -> None:\n"
        "    from ..other import thing\n"      # lazy: counts
    )
    (pkg / "sub" / "__init__.py").write_text("from .mod import later\nfrom . import leaf\n")
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.sub.mod"] == {"__future__", "typing", "json.decoder", "pkg.sub.leaf",
                                    "pkg.other", "pkg", "pkg.sub", "grpc"}
    assert graph["pkg.sub"] == {"pkg.sub.mod", "pkg.sub.leaf"}
    assert find_cycles(graph) == [["pkg.sub", "pkg.sub.mod", "pkg.sub"]]


def test_long_modules_are_found_and_generated_code_is_not(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "short.py").write_text("x = 1\n" * 400)
    (pkg / "sub" / "long.py").write_text("x = 1\n" * 401)
    (pkg / "sub" / "thing_pb2.py").write_text("x = 1\n" * 900)
    assert long_modules(tmp_path, ["pkg"], 400) == {"pkg/sub/long.py": 401}


# ---------------------------------------------------------------- one vocabulary


def raw_vocabulary_comparisons(source: str) -> list[int]:
    """Lines of ``source`` that compare (``==``, ``!=``, ``in``, ``not in``) against a raw
    string that is a word of :mod:`arcade_core.states`, or a tuple/set/list of them."""
    from arcade_core import states

    words = {member.value for cls in (states.PluginState, states.Isolation, states.JobStatus,
                                      states.RecordStatus, states.Stage, states.AgentPresence)
             for member in cls}

    def is_word(node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and node.value in words
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(is_word(element) for element in node.elts)
        return False

    return sorted(
        node.lineno for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Compare)
        and any(is_word(side) for side in (node.left, *node.comparators))
    )


def test_states_are_compared_as_enums_never_as_raw_strings() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if "rpc/v1/arcade_pb2" not in path.as_posix() and path.name != "states.py"
        for line in raw_vocabulary_comparisons(path.read_text())
    ]
    assert not found, "compare with arcade_core.states members instead: " + ", ".join(found)


def test_raw_vocabulary_comparisons_are_found() -> None:
    source = 'a == "running"\nb in ("inline", "x")\nc == PluginState.RUNNING\nd == "other"\n'
    assert raw_vocabulary_comparisons(source) == [1, 2]
