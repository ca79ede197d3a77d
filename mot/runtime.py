"""Process settings chosen once at start-up (per worker): threads and the compute device.

PyTorch and OpenCV each start a thread per core by default. On a machine shared with other work,
or with several worker processes, those threads fight for the cores and a run slows down several
times over, so a tracking process uses ``runtime.torch_threads`` threads (one by default) and sets
them here, once, before any network is built. Constructors never change process settings.
"""

from __future__ import annotations

import os

from mot.errors import UserError

_configured: int | None = None   # the thread count this process was set to (None: not yet)


def threads_for(requested: int, workers: int = 1) -> int:
    """The threads one process should use: ``requested`` when > 0, else the cores split across
    ``workers`` (at least one)."""
    if requested > 0:
        return requested
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def configure(threads: int) -> None:
    """Sets PyTorch's and OpenCV's CPU threads for this process (a repeat with the same count is a
    no-op). Call once per process before building networks."""
    global _configured
    if _configured == threads:
        return
    import cv2
    import torch
    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
    if _configured is None:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:   # settable only before the first parallel work in the process
            pass
    _configured = threads


def configure_once(threads: int) -> None:
    """:func:`configure`, unless this process's threads were set already (by the runner, or by the
    user calling :func:`configure`): the public ``Tracker`` calls it, so a library user never
    gets PyTorch's every-core default by accident, and a choice made before is kept."""
    if _configured is None:
        configure(threads)


def resolve_device(device: str):
    """``auto`` is CUDA when available, else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given.

    Returns:
        torch.device

    Raises:
        UserError: CUDA asked for but not available.
    """
    import torch
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but CUDA is not available")
    return torch.device(device)
