#!/bin/sh
# macOS: TinyOps.app (PyInstaller's BUNDLE in packaging/tinyops.spec) into a DMG with an
# Applications link. Called by packaging/build.py on macOS: make_dmg.sh VERSION
# Unsigned: Gatekeeper asks once (right-click > Open). Signing and notarization need an
# Apple Developer ID (codesign --deep -s "Developer ID Application: ..."; xcrun notarytool),
# which this project does not have. USB serial needs no extra step on macOS (/dev/cu.*).
# NOT TESTED HERE: built by .github/workflows/installers.yml on a hosted macos-14 runner.
set -eu
version=${1:-0.1.0}
root=$(cd "$(dirname "$0")/../.." && pwd)
app="$root/build/dist/TinyOps.app"
[ -d "$app" ] || { echo "missing $app: run PyInstaller first (packaging/build.py)"; exit 1; }
stage=$(mktemp -d)
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
mkdir -p "$root/dist"
hdiutil create -volname "TinyOps $version" -srcfolder "$stage" -ov -format UDZO \
  "$root/dist/TinyOps-$version.dmg"
rm -rf "$stage"
