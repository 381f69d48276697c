"""The layer rules of docs/ARCHITECTURE.md: a cheap top-level import, Qt only under _qt/, a pure
core, no import cycle, the command line imported by nothing, the product path free of the
synthetic cohort."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "updp_napari"
HEAVY = ("torch", "qtpy", "PyQt6", "PyQt5", "PySide6", "napari", "diffusers", "transformers",
         "pydicom", "scipy")
QT = ("qtpy", "PyQt6", "PyQt5", "PySide2", "PySide6", "superqt", "magicgui", "napari.qt",
      "napari._qt")


def _imported_in_fresh_interpreter(statement: str) -> set[str]:
    code = (f"import sys; {statement}; "
            "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_updp_napari_pulls_in_neither_torch_nor_qt():
    loaded = _imported_in_fresh_interpreter("import updp_napari")
    assert not loaded & set(HEAVY)


def test_import_makes_idle_cpu_threads_sleep_soon_unless_the_user_chose():
    import os

    code = "import os, updp_napari; print(os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}

    def run(**extra):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**env, **extra}, check=True).stdout.strip()

    assert run() == "1000"
    assert run(GOMP_SPINCOUNT="50") == "50"
    assert run(OMP_WAIT_POLICY="ACTIVE") == "None"


def test_reader_and_manifest_entry_do_not_pull_in_torch_or_qt():
    loaded = _imported_in_fresh_interpreter(
        "import updp_napari._reader, updp_napari.cli, updp_napari._qt.launch")
    assert not loaded & {"torch", "qtpy", "PyQt6", "napari", "diffusers"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_qt_layer_imports_widgets():
    for path in PACKAGE.rglob("*.py"):
        if "_qt" in path.relative_to(PACKAGE).parts:
            continue
        bad = {n for n in _imports(path) if n.startswith(QT)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_core_uses_only_numpy_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"numpy"}
    for path in (PACKAGE / "core").rglob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] in allowed, f"core/{path.name} imports {name}"


# -- the package's own import graph --------------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, at module level or inside functions;
    ``from .x import y`` counts as importing ``x.y`` when that is a module, else ``x``."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:  # a name inside a module
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                found.add(target)
    return found


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _package_imports(path, set(paths)) for name, path in paths.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in import order, the first repeated at the end),
    or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_package_import_graph_has_no_cycle():
    cycle = _find_cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_names_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_command_line_and_main_import_the_cli():
    allowed = {"updp_napari.__main__"}
    for name, targets in _import_graph().items():
        if name == "updp_napari.cli" or name.startswith("updp_napari.cli.") or name in allowed:
            continue
        bad = {t for t in targets if t == "updp_napari.cli" or t.startswith("updp_napari.cli.")}
        assert not bad, f"{name} imports the command line ({', '.join(sorted(bad))})"


# The product's own path: what runs on a hospital's data. It must not depend on the synthetic
# world the cohort generates (training, evaluation and benchmarks may read a cohort).
PRODUCT = ("updp_napari.core", "updp_napari.deid", "updp_napari.review", "updp_napari.audit",
           "updp_napari._qt", "updp_napari.pipeline", "updp_napari.export", "updp_napari.ingest",
           "updp_napari._reader", "updp_napari.studies", "updp_napari.executors")
# Where the product still reads a cohort's ground truth, and why.
COHORT_EXCEPTIONS = {
    # A model detector is trained on cohorts and annotated corpora alike.
    "updp_napari.deid.report.ner",
    # The site of each study, read from a cohort's ground truth where there is one; an
    # archive has no ground truth, and its studies have no site yet.
    "updp_napari.studies",
}


def test_the_product_path_does_not_import_the_synthetic_cohort():
    for name, targets in _import_graph().items():
        if not name.startswith(PRODUCT) or name in COHORT_EXCEPTIONS:
            continue
        bad = {t for t in targets if t.startswith("updp_napari.cohort")}
        assert not bad, f"{name} imports the synthetic cohort ({', '.join(sorted(bad))})"
