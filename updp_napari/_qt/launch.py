"""Opening a dock in a napari window: on the display there is, or on a virtual one (Xvfb)
made for a screenshot on a headless machine. Used by ``updp review``, ``updp audit`` and the
review benchmark. Importing this module is cheap: napari loads when a window opens.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import UpdpError

#: The size of a window that is rendered to a picture (and of the benchmark's).
SCREENSHOT_WINDOW = (1600, 1000)
XVFB_START_SECONDS = 10.0


def has_display() -> bool:
    """Whether a window can open here (a display is set, or the platform is not Linux)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
        or sys.platform != "linux"


def virtual_display():
    """Start an Xvfb display when there is none (a headless machine); its process, or None
    when a display is already there. The caller terminates it (or use :func:`display`)."""
    import select
    import shutil
    import subprocess

    if has_display():
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise UpdpError("no display (DISPLAY is not set) and no Xvfb to make one: install xvfb "
                        "(apt-get install xvfb) or run under xvfb-run")
    read, write = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it to us when it is ready.
    process = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1920x1200x24",
                                "-nolisten", "tcp"], pass_fds=(write,),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    try:
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read], [], [], XVFB_START_SECONDS)
            chunk = os.read(read, 16) if ready else b""
            if not chunk:
                break
            number += chunk
    finally:
        os.close(read)
    if not number.strip().isdigit():
        process.kill()
        raise UpdpError("could not start a virtual display (Xvfb did not come up within 10 s)")
    os.environ["DISPLAY"] = f":{number.strip().decode()}"
    return process


@contextmanager
def display(virtual: bool, headless_hint: str = "") -> Iterator[None]:
    """A display for the windows opened inside: the one there is; with ``virtual``, an Xvfb
    one when there is none (stopped on leaving); otherwise an error saying ``headless_hint``."""
    if not virtual and not has_display():
        raise UpdpError(f"no display to open the window on (DISPLAY is not set); {headless_hint}")
    process = virtual_display() if virtual else None
    try:
        yield
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


def dock_in_napari(dock: str, title: str = "napari", size: tuple[int, int] | None = None):
    """A napari window (shown) with our ``dock`` ("Review", "Audit") added through napari's
    plugin registry, as the Plugins menu does: ``(viewer, widget)``."""
    try:
        import napari
    except ImportError:
        raise UpdpError("this needs napari and a Qt binding: pip install "
                        "'updp-napari[gui]'") from None
    viewer = napari.Viewer(title=title, show=True)
    try:
        _, widget = viewer.window.add_plugin_dock_widget("updp-napari", dock)
    except (KeyError, ValueError, LookupError) as exc:
        viewer.close()
        raise UpdpError(f"napari does not list the updp-napari {dock} dock ({exc}); "
                        "reinstall updp-napari") from None
    if size is not None:
        viewer.window.resize(*size)
    return viewer, widget


def open_dock(title: str, dock: str, session, screenshot=None, headless_hint: str = "") -> int:
    """Open napari with ``dock`` on ``session`` and run it until the window closes; with
    ``screenshot``, render the window (on a virtual display when there is none), save it to
    that path, print the path and return. ``headless_hint`` ends the error when there is no
    display and no screenshot was asked for."""
    with display(virtual=bool(screenshot), headless_hint=headless_hint):
        viewer, widget = dock_in_napari(dock, title, SCREENSHOT_WINDOW if screenshot else None)
        widget.open_session(session)
        if screenshot:
            widget.screenshot(screenshot)
            viewer.close()
            print(screenshot)
            return 0
        import napari

        napari.run()
        return 0
