"""The layer rules of DESIGN.md: a cheap top-level import, Qt only under _qt/, a pure core."""

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
    loaded = _imported_in_fresh_interpreter("import updp_napari._reader, updp_napari.cli")
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
