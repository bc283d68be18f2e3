"""Ctrl-C and SIGTERM: a run stops within seconds, wherever its work runs.

The command line calls `install()`: the first SIGINT or SIGTERM sets a process-wide stop flag and raises
`Interrupted` (a KeyboardInterrupt, so Prefect reports the flow run as Crashed before the command ends).
Work outside the main thread, where no signal arrives (a training in a task runner's thread, an AutoML
trial), calls `check()` between batches and stops with `Interrupted` too. A checkpoint written at the end
of the last finished epoch stays, so a re-run resumes from it.
"""

from __future__ import annotations

import signal
import sys
import threading

_stop = threading.Event()
_received: list[int] = []  # the signal that stopped the run (one process, one run: the CLI's)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (Ctrl-C or SIGTERM); `signal_number` says which."""

    def __init__(self, signal_number: int = signal.SIGINT):
        self.signal_number = signal_number
        super().__init__(f"interrupted by {signal.Signals(signal_number).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def request_stop(signal_number: int = signal.SIGINT) -> None:
    """Ask every piece of work in this process to stop at its next check."""
    if not _received:
        _received.append(signal_number)
    _stop.set()


def stop_requested() -> bool:
    return _stop.is_set()


def clear() -> None:
    """Forget a stop request (a process that goes on to other work after an interrupted one: tests)."""
    _received.clear()
    _stop.clear()


def check() -> None:
    """Raise `Interrupted` when the run was asked to stop (call it between batches, images, trials)."""
    if _stop.is_set():
        raise Interrupted(_received[0] if _received else signal.SIGINT)


def received() -> int | None:
    """The signal that stopped this process's run, if one did."""
    return _received[0] if _received else None


def _handle(signal_number: int, frame) -> None:
    request_stop(signal_number)
    raise Interrupted(signal_number)


def install() -> None:
    """SIGINT and SIGTERM stop the run (main thread of the command line only)."""
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, _handle)


def stop_on_base_exception() -> None:
    """When an interrupt is unwinding the main thread (Prefect turns SIGTERM into its own exception while a
    flow runs, bypassing `install`'s handler), make every other thread stop too."""
    error = sys.exc_info()[1]
    if error is not None and not isinstance(error, Exception):
        request_stop(getattr(error, "signal", None) or getattr(error, "signal_number", signal.SIGINT))
