"""Where the live picture goes: the real window (OpenCV highgui), ``NoDisplay`` for ``--no-window``,
and ``display_problem``, which says why a window cannot open before OpenCV tries.

cv2 is imported when a window opens, not with this module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import RealtimeError

WINDOW_TITLE = "restyle-cam"


class Display(Protocol):
    def show(self, bgr: np.ndarray) -> None: ...

    def poll_key(self, wait_ms: int) -> int: ...

    def closed(self) -> bool: ...

    def set_fullscreen(self, on: bool) -> None: ...

    def close(self) -> None: ...


class NoDisplay:
    """``--no-window``: frames go nowhere but the recording; no keys."""

    def show(self, bgr: np.ndarray) -> None:
        pass

    def poll_key(self, wait_ms: int) -> int:
        return -1

    def closed(self) -> bool:
        return False

    def set_fullscreen(self, on: bool) -> None:
        pass

    def close(self) -> None:
        pass


def display_problem() -> str | None:
    """Why a window cannot open here, or None. Checked before OpenCV touches the display because the
    Qt backend of opencv-python aborts the whole process when it cannot connect."""
    if not sys.platform.startswith("linux"):
        return None
    display = os.environ.get("DISPLAY", "").strip()
    if not display and not os.environ.get("WAYLAND_DISPLAY", "").strip():
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    if not display:
        return None  # Wayland; XWayland or Qt's own plugin will do
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"DISPLAY={display} is not a display name"
    if host in ("", "unix"):
        if not Path(f"/tmp/.X11-unix/X{number}").exists():
            return f"no X server is listening on DISPLAY={display}"
        return None
    import socket

    try:
        socket.create_connection((host, 6000 + int(number)), timeout=1.0).close()
    except OSError:
        return f"cannot reach the X server of DISPLAY={display}"
    return None


class OpenCVWindow:
    """The real window (OpenCV highgui)."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        import cv2

        self._cv2 = cv2
        self.title = title
        # opencv-python's Qt looks for fonts in its own (empty) folder and warns on every start
        if "QT_QPA_FONTDIR" not in os.environ:
            for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/usr/share/fonts"):
                if Path(d).is_dir():
                    os.environ["QT_QPA_FONTDIR"] = d
                    break
        try:
            # GUI_NORMAL: no Qt toolbar/status bar, so the window is just the picture
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise RealtimeError(
                "this OpenCV build has no window support (opencv-python-headless?); "
                "use --no-window --output FILE, or restyle-video"
            ) from exc
        self._sized = False
        self._shown = False

    def show(self, bgr: np.ndarray) -> None:
        if not self._sized:
            self._cv2.resizeWindow(self.title, bgr.shape[1], bgr.shape[0])
            self._sized = True
        self._cv2.imshow(self.title, bgr)
        self._shown = True

    def poll_key(self, wait_ms: int) -> int:
        return int(self._cv2.waitKey(max(1, wait_ms)))

    def closed(self) -> bool:
        if not self._shown:
            return False
        try:
            return self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) < 1
        except self._cv2.error:
            return True  # the window is gone

    def set_fullscreen(self, on: bool) -> None:
        cv2 = self._cv2
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN if on else cv2.WINDOW_NORMAL)

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
            self._cv2.waitKey(1)  # lets the backend process the destroy event
        except self._cv2.error:
            pass
