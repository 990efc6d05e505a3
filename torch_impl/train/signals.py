"""Stopping a run on SIGINT (Ctrl-C) / SIGTERM (cluster pre-emption, ``kill``) without losing work.

The first signal only sets a flag: the loop finishes the step in flight, writes a checkpoint and returns
(``Result.stopped``); under DDP the flag rides on the step's all_reduce, so every rank stops after the same
step whichever rank was signalled. A second SIGINT/SIGTERM at least ``REPEAT_S`` (1 s) after the first
raises :class:`TrainingAborted` at once (Ctrl-C twice): nothing more is written. One sooner is the same
request delivered twice and is ignored: under torchrun a Ctrl-C reaches each worker from the terminal and
again forwarded by the agent (torch.distributed.elastic forwards the signal it receives), and a scheduler's
SIGTERM to every process of a job arrives the same way.

The handler does no I/O (a signal can arrive while the loop is printing); the loop reports the stop.
Handlers can only be installed from the main thread; elsewhere this is a no-op (then only a kill's
guarantees hold: the last checkpoint and ``--resume``).
"""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_S = 1.0      # a second signal sooner than this after the first is the same request delivered twice


class TrainingAborted(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: the run stopped at once; the message names the checkpoint to resume from."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class StopOnSignal:
    """Context manager: ``.signum`` is set by the first SIGINT/SIGTERM; the loop keeps ``.step`` and
    ``.last_good`` up to date so a second signal's message can name them."""

    def __init__(self):
        self.signum: int | None = None
        self._first_at = 0.0
        self.step = 0
        self.last_good: Path | None = None
        self._old: dict = {}

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum else None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def _handle(self, signum, frame) -> None:
        now = time.monotonic()
        if self.signum is None:
            self.signum, self._first_at = signum, now
            return
        if now - self._first_at < REPEAT_S:
            return
        name = signal.Signals(signum).name
        resume = (f"the last checkpoint is {self.last_good} (the same command plus --resume continues from it)"
                  if self.last_good else "no checkpoint was written yet")
        raise TrainingAborted(f"aborted at once by a second {name} during step {self.step}; nothing was saved "
                              f"for it; {resume}", signum)

