"""The plugin's tests: the plugin built from this folder into a private target (as a user's
pip install would register it), and the core's test fixtures (tiny models)."""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parent.parent
ROOT = PLUGIN.parent.parent  # the updp-napari checkout

# The core's fixtures (tiny_models; UPDP_SYNC, HF_HUB_OFFLINE), loaded under another name.
sys.path.insert(0, str(ROOT / "tests"))
_spec = importlib.util.spec_from_file_location("updp_core_conftest", ROOT / "tests" / "conftest.py")
_core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_core)
tiny_models = _core.tiny_models


@pytest.fixture(scope="session")
def ray_plugin(tmp_path_factory):
    """The plugin installed into a target folder on sys.path and on the PYTHONPATH that Ray's
    workers and subprocesses inherit (with the core of this checkout)."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install \"ray[data]\"")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install \"ray[data]\"")
    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "src"  # a copy: the checkout gains no build/ or egg-info folders
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "tests",
                                                                  "__pycache__"))
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(target))
        # the core's tests too: a preparer of theirs may be sent to Ray's workers
        path = os.pathsep.join([str(target), str(ROOT), str(ROOT / "tests"),
                                os.environ.get("PYTHONPATH", "")])
        patch.setenv("PYTHONPATH", path.rstrip(os.pathsep))
        patch.setenv("OMP_NUM_THREADS", "1")
        yield target
    sys.modules.pop("updp_ray", None)


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path, for Ray's (its sockets' paths have a limit)."""
    folder = tempfile.mkdtemp(prefix="ur-", dir="/tmp")
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
