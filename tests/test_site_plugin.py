"""The example site plugin installs as its own distribution and its detector fires."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "updp-site-example"


def test_site_plugin_installs_and_fires(tmp_path):
    # Build from a copy so the checkout gains no build/ or egg-info folders.
    source = tmp_path / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    report = "Badge NFX.K7Q.PL scanned at entry. No effusion.\n"

    listed = subprocess.run([sys.executable, "-m", "updp_napari", "plugins"], env=env,
                            capture_output=True, text=True, check=True).stdout
    assert "site-example-badge = updp_site_example:detect_badge_ids" in listed

    redacted = subprocess.run([sys.executable, "-m", "updp_napari", "deid-report", "-"], env=env,
                              input=report, capture_output=True, text=True, check=True).stdout
    assert redacted == "Badge [ID] scanned at entry. No effusion.\n"

    # Without the plugin the same text keeps the badge: the plugin is what found it.
    plain = subprocess.run([sys.executable, "-m", "updp_napari", "deid-report", "-"],
                           input=report, capture_output=True, text=True, check=True).stdout
    assert "NFX.K7Q.PL" in plain
