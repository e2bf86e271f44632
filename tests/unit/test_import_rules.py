"""The house's import rules, read from the code with ast (nothing is imported or run):

- no import circle among the modules of golive/, services/ and shared/;
- no service imports another service: golive.services.X never imports golive.services.Y (what two services share
  lives in shared/);
- shared/ imports neither a service nor the rest of golive/ (the contracts stand below everything that uses them);
- every import of shared/ and services/ goes through the golive namespace (golive/shared and golive/services are
  symlinks to them): installed, `shared` and `services` are no top-level names, and one module under two names
  would be loaded twice;
- no test module imports another test module: what tests share lives in helper modules named for what they hold
  (tests/builders.py, tests/harness.py, ...) or in conftest.py fixtures.

Every import counts, also one inside a function or under TYPE_CHECKING: a circle broken only by importing late is
still a circle a reader has to untangle. Each rule is also run on a small made-up tree that breaks it, so it can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.harness import REPO

PACKAGES = ("golive", "services", "shared")
NAMESPACED = ("services", "shared")  # the repository's folders, imported as golive.services and golive.shared


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] in NAMESPACED:
        parts.insert(0, "golive")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_under(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by its dotted name."""
    return {module_name(root, path): path
            for package in packages for path in sorted((root / package).rglob("*.py"))}


def imported_names(name: str, path: Path) -> set[str]:
    """The dotted names a module imports: ``import a.b`` gives a.b; ``from a import b`` gives a and a.b (whichever
    is a module is kept by the caller); relative imports are made absolute."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """module -> the modules of ``packages`` it imports (a name that is no module of the tree, a class or a third-party
    package, is not an arrow)."""
    modules = modules_under(root, packages)
    return {name: {imported for imported in imported_names(name, path) if imported in modules and imported != name}
            for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other in a loop (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def service_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["golive", "services"] and len(parts) > 2 else None


def cross_service_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {imported}" for module, targets in graph.items() for imported in targets
                  if service_of(module) and service_of(imported) and service_of(module) != service_of(imported))


def shared_imports_above(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {imported}" for module, targets in graph.items() for imported in targets
                  if _in_shared(module) and not _in_shared(imported))


def _in_shared(module: str) -> bool:
    return module.split(".")[:2] == ["golive", "shared"]


def imports_outside_the_namespace(root: Path, folders: tuple[str, ...] = ("golive", "services", "shared", "tests", "bench")
                                  ) -> list[str]:
    """Each import of a top-level ``shared`` or ``services`` (not through golive), as ``file -> imported``."""
    found = set()
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for imported in imported_names(module_name(root, path), path):
                if imported.split(".")[0] in NAMESPACED:
                    found.add(f"{path.relative_to(root)} -> {imported.split('.')[0]}")
    return sorted(found)


def test_modules_import_each_other_in_no_circle():
    graph = import_graph(REPO)
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the tree was read, not an empty folder
    assert circles(graph) == []


def test_no_service_imports_another_service():
    graph = import_graph(REPO)
    assert {service_of(m) for m in graph} >= {"coordinator", "migrator", "notifier", "prober", "traffic"}
    assert cross_service_imports(graph) == []


def test_shared_imports_no_service_and_not_golive():
    graph = import_graph(REPO)
    assert any(m.startswith("golive.shared.") for m in graph)
    assert shared_imports_above(graph) == []


def test_shared_and_services_are_imported_only_through_golive():
    assert (REPO / "golive" / "shared").resolve() == (REPO / "shared").resolve()
    assert (REPO / "golive" / "services").resolve() == (REPO / "services").resolve()
    assert imports_outside_the_namespace(REPO) == []


# --- tests ------------------------------------------------------------------------------------------------------


def imports_of_test_modules(root: Path = REPO) -> list[str]:
    """Each import of a test module (test_*.py) by a file under tests/, as ``importer -> imported``."""
    found = set()
    for path in sorted((root / "tests").rglob("*.py")):
        for imported in imported_names(module_name(root, path), path):
            parts = imported.split(".")
            first_test = next((i for i, part in enumerate(parts) if part.startswith("test_")), None)
            if first_test is not None:
                found.add(f"{path.relative_to(root)} -> {'.'.join(parts[:first_test + 1])}")
    return sorted(found)


def test_no_test_module_imports_another_test_module():
    assert len(list((REPO / "tests").rglob("test_*.py"))) > 100  # the finder walks the real tests/
    assert imports_of_test_modules() == []


# --- the rules can fail -----------------------------------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_circle_through_a_late_import_and_a_relative_one_is_found(tmp_path):
    root = write(tmp_path, {
        "shared/__init__.py": "",
        "shared/a.py": "def f():\n    from golive.shared import b\n",
        "shared/b.py": "from .c import x\n",
        "shared/c.py": "from golive.shared.a import f\nx = 1\n",
        "shared/d.py": "import golive.shared.a\n",
    })

    assert circles(import_graph(root)) == [["golive.shared.a", "golive.shared.b", "golive.shared.c"]]


def test_a_service_importing_another_and_shared_importing_above_are_found(tmp_path):
    root = write(tmp_path, {
        "services/__init__.py": "",
        "services/prober/__init__.py": "",
        "services/prober/run.py": "from golive.services.coordinator.plan import Plan\nfrom golive.services.prober import stats\n",
        "services/prober/stats.py": "",
        "services/coordinator/__init__.py": "",
        "services/coordinator/plan.py": "Plan = dict\n",
        "shared/__init__.py": "",
        "shared/events.py": "import golive.cli\nfrom golive.services.coordinator import plan\nfrom golive.shared import ids\n",
        "shared/ids.py": "",
        "golive/__init__.py": "",
        "golive/cli.py": "",
    })
    graph = import_graph(root)

    assert cross_service_imports(graph) == ["golive.services.prober.run -> golive.services.coordinator.plan"]
    assert shared_imports_above(graph) == ["golive.shared.events -> golive.cli",
                                           "golive.shared.events -> golive.services.coordinator",
                                           "golive.shared.events -> golive.services.coordinator.plan"]


def test_an_import_of_shared_or_services_outside_golive_is_found(tmp_path):
    root = write(tmp_path, {
        "golive/__init__.py": "",
        "golive/cli.py": "from shared.events import x\nfrom golive.shared import ids\n",  # namespace-rewrite: keep
        "services/__init__.py": "",
        "services/run.py": "import services.run\n",  # namespace-rewrite: keep
        "shared/__init__.py": "",
        "shared/events.py": "",
        "shared/ids.py": "",
    })

    assert imports_outside_the_namespace(root, ("golive", "services")) == ["golive/cli.py -> shared",
                                                                           "services/run.py -> services"]


def test_a_test_module_imported_by_another_is_found(tmp_path):
    root = write(tmp_path, {
        "tests/unit/test_a.py": "from tests.unit.test_b import test_helper\nfrom tests.builders import RunEvents\n",
        "tests/unit/test_b.py": "def helper(): ...\n",
        "tests/e2e/test_c.py": "from tests.e2e import test_d\n",
        "tests/e2e/helpers.py": "from . import test_d\n",
    })

    assert imports_of_test_modules(root) == [
        "tests/e2e/helpers.py -> tests.e2e.test_d",
        "tests/e2e/test_c.py -> tests.e2e.test_d",
        "tests/unit/test_a.py -> tests.unit.test_b",
    ]
