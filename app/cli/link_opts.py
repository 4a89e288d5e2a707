"""Link options shared by every command that talks to a board over SMP."""

from __future__ import annotations

import argparse

from device_drivers.link.options import TRANSPORTS, LinkOptions
from tinyops_base.validators import positive_int


def add_link_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "link (experts; by default everything comes from what the device reports)")
    group.add_argument("--transport", choices=TRANSPORTS, default="auto",
                       help="SMP transport: console framing, raw (unencoded) UART, UDP "
                            "(udp://HOST:PORT); auto detects console vs raw")
    group.add_argument("--mtu", type=positive_int, default=None, metavar="BYTES",
                       help="largest SMP message to send (default: the device's buffer, "
                            "measured)")
    group.add_argument("--window", type=positive_int, default=None, metavar="N",
                       help="requests in flight during uploads (default: measured)")
    group.add_argument("--line-length", type=positive_int, default=None, metavar="BYTES",
                       help="console line limit (default 128, the SMP convention)")


def link_options(args: argparse.Namespace) -> LinkOptions:
    """LinkOptions from the parsed arguments (InputError for impossible values)."""
    return LinkOptions(transport=getattr(args, "transport", "auto"),
                       baudrate=getattr(args, "baud", 115200),
                       mtu=getattr(args, "mtu", None), window=getattr(args, "window", None),
                       line_length=getattr(args, "line_length", None))
