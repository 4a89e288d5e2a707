#!/usr/bin/env bash
# Smoke test of the INSTALLED app (not the source tree): installs dist/tinyops_*.deb with
# dpkg -i (as root; otherwise unpacks it with dpkg-deb -x), then, from an empty directory,
# with an environment that has no project venv and no PYTHONPATH:
#   tinyops --version; analyze on the bundled example; a virtual board (tinyops sim) with
#   flash and monitor; the GUI under Xvfb until its window shows (xdotool search).
# Prints one JSON line of timings at the end (SMOKE_JSON=FILE also writes it there).
# Usage: packaging/smoke.sh [path/to/tinyops_X_amd64.deb]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
deb=${1:-$(ls -t "$here"/dist/tinyops_*.deb | head -1)}
work=$(mktemp -d /tmp/tinyops-smoke.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
t_start=$(now)
[ -z "${SMOKE_JSON:-}" ] || SMOKE_JSON=$(realpath -m "$SMOKE_JSON")

if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
  dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; exit 1; }
  tinyops=/usr/bin/tinyops
  prefix=/opt/tinyops
  [ -f /usr/share/applications/tinyops.desktop ] || { echo "no desktop entry"; exit 1; }
  [ -f /usr/lib/udev/rules.d/60-tinyops.rules ] || { echo "no udev rule"; exit 1; }
  [ -f /usr/share/icons/hicolor/scalable/apps/tinyops.svg ] || { echo "no icon"; exit 1; }
  grep -q "Serial access" "$work/dpkg.log" || { echo "postinst said nothing about serial"; exit 1; }
else
  dpkg-deb -x "$deb" "$work/root"
  tinyops=$work/root/opt/tinyops/tinyops
  prefix=$work/root/opt/tinyops
fi
installed_bytes=$(du -sb "$prefix" | cut -f1)
t_installed=$(now)

# The installed app only: a clean environment, an empty working directory.
mkdir -p "$work/cwd" "$work/home"
cd "$work/cwd"
run() { env -i PATH=/usr/bin:/bin HOME="$work/home" TINYOPS_HOME="$work/home/tinyops" \
          LANG=C.UTF-8 ${DISPLAY:+DISPLAY=$DISPLAY} "$tinyops" "$@"; }
# In the background, started directly (not through a subshell running run()), so that $! is
# the app itself and the cleanup's kill reaches it (a subshell's kill left `sim` running).
bg() { env -i PATH=/usr/bin:/bin HOME="$work/home" TINYOPS_HOME="$work/home/tinyops" \
         LANG=C.UTF-8 ${DISPLAY:+DISPLAY=$DISPLAY} "$tinyops" "$@" & pids+=($!); }
[ "$(readlink -f "$tinyops")" = "$(readlink -f "$prefix/tinyops")" ] \
  || { echo "tinyops is not the installed app"; exit 1; }

echo "== installed: $(run --version)"
example=$prefix/_internal/resources/examples/vibration/model_int8.tflite
run analyze "$example" --json >"$work/analyze.json"
python3 - "$work/analyze.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["arena_bytes"] > 0 and d["ops"], d
print(f"== analyze: {d['macs']} MACs, arena {d['arena_bytes']} B ({d['arena_method']}); "
      f"missing here: {sorted(d['unavailable'])}")
EOF
run features --json >/dev/null

# A virtual board: flash the example model, then monitor its live inference.
bg sim --json >"$work/sim.json" 2>"$work/sim.log"
for _ in $(seq 1 300); do [ -s "$work/sim.json" ] && break; sleep 0.2; done
port=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['port'])" \
       "$work/sim.json") || { cat "$work/sim.log"; exit 1; }
run flash "$example" --port "$port" --json >"$work/flash.json"
python3 - "$work/flash.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("ok") and d.get("verified", True), d
print("== flash: ok, device-verified")
EOF
run monitor --port "$port" --duration 4 --start-stream --json >"$work/monitor.json"
python3 - "$work/monitor.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
total = sum(c["count"] for c in d.get("channels", {}).values())
assert d.get("ok") and d.get("parsed", 0) > 0 and total > 0, d
assert any(k.startswith("score/") for k in d["channels"]), d  # the flashed model infers
print(f"== monitor: {d['parsed']} lines, {total} samples, top label {d.get('top_label')}")
EOF
kill "${pids[-1]}" 2>/dev/null || true
t_cli=$(now)

# The GUI under Xvfb, until its window is visible.
gui_s=null
if command -v Xvfb >/dev/null && command -v xdotool >/dev/null; then
  # Xvfb picks a free display itself and writes its number once it accepts clients
  # (-displayfd): no collision with another X server, no guessing when it is ready.
  Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$work/xvfb.display" \
    >"$work/xvfb.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [ -s "$work/xvfb.display" ] && break; sleep 0.1; done
  disp=":$(head -n1 "$work/xvfb.display" 2>/dev/null)"
  [ "$disp" != ":" ] || { cat "$work/xvfb.log"; echo "error: Xvfb did not start in 30 s"; exit 1; }
  DISPLAY=$disp xdotool getdisplaygeometry >/dev/null || { echo "error: $disp answers no X client"; exit 1; }
  g0=$(now)
  DISPLAY=$disp bg gui >"$work/gui.log" 2>&1
  gpid=${pids[-1]}
  for _ in $(seq 1 1200); do
    if DISPLAY=$disp xdotool search --onlyvisible --name '^TinyOps' >/dev/null 2>&1; then
      gui_s=$(python3 -c "print(round($(now) - $g0, 3))"); break
    fi
    kill -0 "$gpid" 2>/dev/null || { cat "$work/gui.log"; echo "the GUI exited"; exit 1; }
    sleep 0.05
  done
  [ "$gui_s" != null ] || { cat "$work/gui.log"; echo "no TinyOps window within 60 s"; exit 1; }
  echo "== gui: window visible after $gui_s s"
else
  echo "error: Xvfb/xdotool missing: cannot check the GUI"; exit 1
fi
t_end=$(now)
summary=$(python3 -c "import json; print(json.dumps({'installed_bytes': $installed_bytes,
  'install_s': round($t_installed - $t_start, 2), 'cli_s': round($t_cli - $t_installed, 2),
  'gui_window_s': $gui_s, 'total_s': round($t_end - $t_start, 2)}))")
echo "$summary"
[ -z "${SMOKE_JSON:-}" ] || echo "$summary" >"$SMOKE_JSON"
