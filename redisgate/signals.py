"""SIGINT/SIGTERM handling shared by every long-running command.

The first signal asks for a graceful stop, the second for an immediate one: `first` and
`second` are events a main coroutine can wait on.
"""

from __future__ import annotations

import asyncio
import logging
import signal

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Counts SIGINT/SIGTERM on the running loop while installed (a context manager)."""

    def __init__(self) -> None:
        self.first = asyncio.Event()
        self.second = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.first.is_set():
            log.info("%s: shutting down gracefully (send it again to force)", sig.name)
            self.first.set()
        else:
            log.warning("%s again: stopping now", sig.name)
            self.second.set()

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig in STOP_SIGNALS:
            self._loop.remove_signal_handler(sig)
