"""Plugins are found through entry points, listed without import, loaded on request."""

import sys

import pytest

from updp_napari.cli import main
from updp_napari.core.registry import GROUPS, PluginError, discover, load


@pytest.fixture
def fake_plugin(tmp_path, monkeypatch):
    """An installed distribution with one detector plugin and one that fails to import."""
    (tmp_path / "fake_site_plugin.py").write_text(
        "def detect(text):\n    return [(0, 3, 'ID', 'fake', 1.0)]\n")
    dist = tmp_path / "fake_site_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-site-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[updp_napari.detectors]\n"
        "fake-id = fake_site_plugin:detect\n"
        "broken = fake_site_plugin_missing:detect\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("fake_site_plugin", None)


def test_discover_lists_without_importing(fake_plugin):
    found = discover("updp_napari.detectors")
    assert set(found) >= {"fake-id", "broken"}
    assert found["fake-id"].value == "fake_site_plugin:detect"
    assert found["fake-id"].distribution == "fake-site-plugin"
    assert "fake_site_plugin" not in sys.modules


def test_load_imports_the_plugin(fake_plugin):
    detect = load("updp_napari.detectors", "fake-id")
    assert detect("ABC123") == [(0, 3, "ID", "fake", 1.0)]


def test_a_broken_plugin_is_a_message_not_a_traceback(fake_plugin):
    with pytest.raises(PluginError, match="broken.*failed to load"):
        load("updp_napari.detectors", "broken")
    with pytest.raises(PluginError, match="no plugin 'nope'"):
        load("updp_napari.detectors", "nope")
    with pytest.raises(PluginError, match="unknown plugin group"):
        discover("updp_napari.nothing")


def test_cli_lists_plugins_by_group(fake_plugin, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for group in GROUPS:
        assert group in out
    assert "fake-id = fake_site_plugin:detect" in out
