"""Signals that end a run the way Ctrl+C does.

SIGTERM is how ``docker stop``, systemd, batch schedulers and ``timeout`` end a process; SIGHUP is what
a closed terminal sends. Python's default for both is to die on the spot: a hidden temporary output is
left behind and nothing is said. While a command runs under :class:`StopSignals`, the first SIGINT,
SIGTERM or SIGHUP raises :class:`Stopped` (a KeyboardInterrupt) in the main thread, so each of them
takes the path Ctrl+C takes: the temporary file is removed (a live recording is finalized) and one line
says so. The exit code is 128 + the signal number, as a shell reports a process the signal ended.

A signal that lands while a module is being imported is raised once the import is over (retried every
20 ms): raised inside a C extension's initialisation, the KeyboardInterrupt comes out as an ImportError
("initialization failed"), which a library's optional ``try: import x / except ImportError`` swallows,
and the stop is lost (seen: restyle-cam stopped at start-up ran on, or ended with a traceback).
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType

# Windows has no SIGHUP
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

# the retry while an import runs needs a timer signal (POSIX); elsewhere the stop is raised at once
_CAN_DEFER = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
_RETRY_SECONDS = 0.02
_IMPORT_MACHINERY = "<frozen importlib._bootstrap"  # also matches _bootstrap_external


def importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import (a module's top level, or code it calls)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(_IMPORT_MACHINERY):
            return True
        frame = frame.f_back
    return False


class Stopped(KeyboardInterrupt):
    """A stop signal arrived: unwinds like Ctrl+C; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """While active (``with StopSignals() as stops:``), the first stop signal raises :class:`Stopped`
    and the later ones are ignored, so that they cannot interrupt the cleanup. ``received`` is the
    first signal's number (None while none came). The previous handlers are restored on exit.

    A signal that was ignored when the command started stays ignored: ``nohup`` ignores SIGHUP, and a
    shell starts background jobs with SIGINT ignored. Handlers can only be set in the main thread;
    elsewhere (a test runner's thread) the defaults are kept."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._retrying = False

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            try:
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                break
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._retrying:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self._retrying = False
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        for sig in self._previous:
            signal.signal(sig, signal.SIG_IGN)
        self._raise_outside_imports(frame)

    def _raise_outside_imports(self, frame: FrameType | None) -> None:
        assert self.received is not None
        if _CAN_DEFER and importing(frame):
            if signal.SIGALRM not in self._previous:
                self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._retry)
            self._retrying = True
            signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)
            return
        self._retrying = False
        raise Stopped(self.received)

    def _retry(self, signum: int, frame: FrameType | None) -> None:
        if self._retrying:
            self._raise_outside_imports(frame)

    def exit_code(self, default: int) -> int:
        """128 + the signal's number once one came (130 for Ctrl+C), else ``default``."""
        return default if self.received is None else 128 + self.received

    def reword(self, message: str) -> str:
        """Name the signal in an "interrupted" message when it was not Ctrl+C: "stopped by SIGTERM"."""
        if self.received is None or self.received == signal.SIGINT:
            return message
        name = signal.Signals(self.received).name
        if "interrupted" in message:
            return message.replace("interrupted", f"stopped by {name}", 1)
        return f"{message} ({name})"
