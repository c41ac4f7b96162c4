"""Loading (and warming) the next style model of ``restyle-cam`` in a background thread, so that a
style switch never freezes the picture; the live loop collects the result in its own thread.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

from .errors import RealtimeError
from .models import Style

if TYPE_CHECKING:
    from .live import StylizerLike


class StyleLoader:
    """Loads (and warms) style models in a background thread, one at a time; the newest request wins.

    ``poll()`` hands a finished load to the main thread: ``(style, stylizer, None)`` or
    ``(style, None, message)`` for an expected failure (a broken model file). Anything else a load
    raises is a bug and is re-raised by ``poll()``.
    """

    def __init__(self, factory: Callable[[Style], StylizerLike]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending: Style | None = None  # at most one waiting request: bounded by construction
        self._done: tuple[Style, StylizerLike | None, str | None, BaseException | None] | None = None
        self.loading: Style | None = None

    def request(self, style: Style) -> None:
        with self._lock:
            self._pending = style
        self._maybe_start()

    def _maybe_start(self) -> None:
        with self._lock:
            if self._thread is not None or self._pending is None or self._done is not None:
                return
            style, self._pending = self._pending, None
            self.loading = style
            self._thread = threading.Thread(target=self._run, args=(style,), name="style-load", daemon=True)
            self._thread.start()

    def _run(self, style: Style) -> None:
        result: tuple[Style, StylizerLike | None, str | None, BaseException | None]
        try:
            result = (style, self._factory(style), None, None)
        except RealtimeError as exc:
            result = (style, None, str(exc), None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread by poll()
            result = (style, None, None, exc)
        with self._lock:
            self._done = result

    def poll(self) -> tuple[Style, StylizerLike | None, str | None] | None:
        with self._lock:
            done, self._done = self._done, None
            if done is not None:
                thread, self._thread = self._thread, None
        if done is None:
            return None
        if thread is not None:
            thread.join()
        self.loading = None
        style, stylizer, message, error = done
        if error is not None:
            raise error
        self._maybe_start()
        return style, stylizer, message

    @property
    def busy(self) -> bool:
        return self._thread is not None or self._pending is not None

    def close(self) -> None:
        """Forget waiting requests and wait for a load in progress (a model load cannot be cut short)."""
        with self._lock:
            self._pending = None
            thread = self._thread
        if thread is not None:
            thread.join()
