"""A request to stop a recording that any thread may make, and SIGINT/SIGTERM turned into
one: what lets Ctrl-C stop an emulator that never returns to Python."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

# What the shell reports for a process a signal ended (128 + the signal number); a recording
# stopped by one exits with it, so scripts and `timeout` see the usual status.
EXIT_STATUS = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}


class StopRequest:
    """A "please stop" for the recording in progress.

    Thread-safe: a signal watcher, a GUI or a test may call `request` from any thread. A
    recording subscribes while its emulator runs; a request made before that is kept and
    honoured as soon as it subscribes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.reason: str | None = None  # e.g. "SIGINT"; the first request wins

    def request(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
            for listener in self._listeners:
                listener()

    @contextlib.contextmanager
    def subscribed(self, listener: Callable[[], None]) -> Iterator[None]:
        """Calls `listener` on each request while inside the block (at once if one was made).

        On leaving, the listener is never called again: its owner may free what it touches.
        """
        with self._lock:
            self._listeners.append(listener)
            if self.reason is not None:
                listener()
        try:
            yield
        finally:
            with self._lock:
                self._listeners.remove(listener)


@contextlib.contextmanager
def stop_on_signals(on_signal: Callable[[str], None] | None = None,
                    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
                    ) -> Iterator[StopRequest]:
    """Turns SIGINT and SIGTERM into a StopRequest for the duration of the block.

    Why a watcher thread: while Unicorn runs, the main thread is inside one ctypes call
    (`uc_emu_start`) and, in a loop with no syscall, never runs Python bytecode again, so a
    Python signal handler would never run. Python's C-level handler still writes the signal
    number to the wakeup fd at once; a thread blocked on that fd wakes and makes the request,
    which the native code hook sees before the next instruction. Signals stay Python's (no
    C handler to install and restore), and a second signal while the trace is being closed
    is only noted, so it cannot interrupt the closing half-way.

    Must be entered from the main thread (where Python handles signals). Elsewhere it
    changes nothing and yields a StopRequest that only an explicit `request` sets.

    Args:
        on_signal: called (from the watcher thread) with the signal's name, on each signal.
        signals: the signals that stop the recording.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = {s: signal.getsignal(s) for s in signals}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def watch() -> None:
        while data := os.read(read_fd, 64):
            for number in data:
                if number in wanted:
                    name = signal.Signals(number).name
                    stop.request(name)
                    if on_signal is not None:
                        on_signal(name)

    wanted = {int(s) for s in signals}
    watcher = threading.Thread(target=watch, name="vmtrace-signals", daemon=True)
    try:
        for s in signals:
            # The handler itself does nothing: the watcher acts on the wakeup byte. It must
            # not raise (KeyboardInterrupt inside a syscall hook would end the run as an
            # internal error).
            signal.signal(s, lambda _signum, _frame: None)
        watcher.start()
        yield stop
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for s, handler in previous.items():
            # None: a handler installed outside Python; the default is the closest we can do.
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        os.close(write_fd)  # the watcher reads end-of-file and returns
        if watcher.is_alive():
            watcher.join()
        os.close(read_fd)
