#!/bin/sh
# Portable TinyOps (.tar.gz): install the udev rule so boards work without root, and put
# `tinyops` on PATH. Run from the unpacked folder: sudo ./install-udev.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
install -m 0644 "$here/60-tinyops.rules" /etc/udev/rules.d/60-tinyops.rules
udevadm control --reload-rules && udevadm trigger --subsystem-match=tty --subsystem-match=usb || true
ln -sf "$here/tinyops" /usr/local/bin/tinyops
echo "udev rule installed; replug your board. Over ssh (not at the seat): sudo usermod -aG dialout \$USER"
