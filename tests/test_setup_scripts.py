"""The set-up scripts: which Python the virtual environment of `make` is built on."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PICK = ROOT / "scripts" / "pick-python.sh"
VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"


def _run(*args: str) -> str:
    return subprocess.run([*args], capture_output=True, text=True, check=True).stdout.strip()


def test_the_chosen_python_is_python3s_version_and_can_make_virtual_environments():
    chosen = _run(str(PICK))
    assert _run(chosen, "-c", "import ensurepip, venv; " + VERSION) == _run("python3", "-c", VERSION)


def test_the_distributions_own_build_is_chosen_where_it_can_make_virtual_environments():
    system = Path(f"/usr/bin/python{_run('python3', '-c', VERSION)}")
    if not system.exists():
        pytest.skip(f"{system} is not on this machine")
    usable = subprocess.run([str(system), "-c", "import ensurepip, venv"],
                            capture_output=True).returncode == 0
    assert (_run(str(PICK)) == str(system)) == usable


def test_a_python_that_does_not_run_is_given_back_as_asked(tmp_path):
    missing = str(tmp_path / "no-such-python")
    assert _run(str(PICK), missing) == missing
