"""Delivering the station's outbox while the app runs, not only on the next command.

The GUI (its "N records waiting for the server" note, every few seconds, off the GUI
thread) and ``tinyops bridge`` (a :class:`BackgroundDelivery` thread) call
:func:`deliver_waiting`: when a PostgreSQL store is configured and records wait, it sends
them (not again within ``outbox.RETRY_AFTER_S`` of a failure), and says how many still wait.
A failure is logged, never raised: the records stay in the outbox for the next attempt.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from device_drivers.errors import TinyOpsError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 10.0
_stores: dict[str, Any] = {}
_lock = threading.Lock()


def deliver_waiting() -> int:
    """Send what waits for the records server if it can be reached; return how many still
    wait (0 with the local SQLite store)."""
    from fleet_ops.records import pending_count, records_url

    waiting = pending_count()
    try:
        url = records_url()
    except TinyOpsError as exc:  # a bad stored URL: the records page says so
        log.info("records not delivered: %s", exc.message)
        return waiting
    if not url or not waiting:
        return waiting
    with _lock:
        store = _stores.get(url)
        if store is None:
            from fleet_ops.records.pg import SharedRecordStore

            store = _stores[url] = SharedRecordStore(url=url)
        try:
            sent = store.deliver(automatic=True)
            if sent:
                log.info("delivered %d waiting records in the background", sent)
        except TinyOpsError as exc:
            log.info("records still waiting: %s", exc.message)
    return pending_count()


class BackgroundDelivery:
    """A daemon thread calling :func:`deliver_waiting` every ``interval_s`` until
    :meth:`stop`."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="records-delivery",
                                        daemon=True)

    def start(self) -> BackgroundDelivery:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                deliver_waiting()
            except Exception:  # the thread must go on (a disk error is logged, retried)
                log.exception("background delivery of records failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
