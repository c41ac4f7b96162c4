"""A small error hierarchy. The command-line front ends turn these into one-line messages and exit codes;
anything else that escapes is a bug and keeps its traceback."""

from __future__ import annotations


class RealtimeError(Exception):
    """An expected failure caused by input, environment or configuration: reported in one line."""

    exit_code = 1


class InputError(RealtimeError):
    """The input file is missing, unreadable, corrupt or has no usable video stream."""


class OutputError(RealtimeError):
    """The output cannot be written (exists, same as input, folder missing or not writable)."""


class ModelError(RealtimeError):
    """A style model is unknown, not ONNX, or has an unexpected signature."""


class DeviceError(RealtimeError):
    """The requested execution device (e.g. CUDA) is not available."""


class DataError(RealtimeError):
    """Training data or weights are missing or unusable."""


class Interrupted(RealtimeError):
    """The user pressed Ctrl+C; partial outputs have been removed."""

    exit_code = 130
