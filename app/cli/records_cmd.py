"""``tinyops records``: the provisioning records, on this station or the shared server.

The store is the configured one (``--records URL`` / ``$TINYOPS_RECORDS_URL`` / the
station setting; the local SQLite file by default). With a PostgreSQL store the command
first delivers what waits in the station's outbox and says how many records still wait.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from device_drivers.errors import TinyOpsError


def register(sub: Any) -> None:
    rc = sub.add_parser("records", help="provisioning records (one per flash or validate)")
    rc.add_argument("--limit", type=int, default=50, help="newest N (0: all)")
    rc.add_argument("--serial", help="only this USB serial number")
    rc.add_argument("--operation", choices=["flash", "validate", "quantize", "export", "drift"])
    rc.add_argument("--export", metavar="FILE.csv", help="write every record to a CSV file")
    rc.add_argument("--json", action="store_true", help="print one JSON object")
    rc.set_defaults(func=cmd_records)


def deliver_pending(as_json: bool) -> dict[str, Any]:
    """Deliver what the outbox holds (PostgreSQL store only); report what still waits.

    A server that cannot be used raises its one-line ``TinyOpsError`` with the number of
    records still waiting added to it."""
    from fleet_ops.records import open_store, records_url

    if not records_url():
        return {"store": "sqlite"}
    store = open_store()
    try:
        delivered = store.deliver()  # type: ignore[attr-defined]
    except TinyOpsError as exc:
        waiting = store.pending_count()  # type: ignore[attr-defined]
        exc.message = f"{exc.message}; {waiting} records waiting for the server"
        raise
    waiting = store.pending_count()  # type: ignore[attr-defined]
    if not as_json and (delivered or waiting):
        print(f"delivered {delivered} records; {waiting} still waiting for the server",
              file=sys.stderr)
    return {"store": "postgresql", "delivered": delivered, "pending": waiting}


def cmd_records(args: argparse.Namespace) -> int:
    from fleet_ops.records import open_store

    status = deliver_pending(args.json)
    store = open_store()
    if args.export:
        count = store.export_csv(args.export)
        if args.json:
            print(json.dumps({"ok": True, "exported": count, "file": str(args.export), **status}))
        else:
            print(f"exported {count} records to {args.export}")
        return 0
    records = store.list(limit=args.limit or None, operation=args.operation,
                         usb_serial=args.serial)
    where = getattr(store, "url", None)
    if where:
        from fleet_ops.records.pg import describe

        where = describe(where)
    else:
        where = str(store.path)
    if args.json:
        print(json.dumps({"ok": True, "count": len(records), "path": where, **status,
                          "records": [r.to_dict() for r in records]}))
        return 0
    if not records:
        print(f"no records yet ({where})")
        return 0
    for r in records:
        when = (r.time or "")[:19].replace("T", " ")
        print(f"{r.id:5d} {when}  {r.operation:8s} {r.result:9s} {r.port or '-':18s} "
              f"{r.usb_serial or '-':14s} {r.backend or '-':7s} {r.artifact or '-'}  "
              f"{r.verify or r.error or ''}"[:200])
    return 0
