#!/usr/bin/env bash
# Starts the real console under Xvfb on a throwaway data directory, waits for
# its window, saves a screenshot to target/screenshots/, and checks that the
# app is still alive (it did not crash on start-up). Used by scripts/test.sh.
# Usage: smoke-window.sh [BINARY [SHOT]] — by default the debug build, saved
# as fleet.png; scripts/smoke-package.sh passes the installed binary.
source "$(dirname "$0")/lib.sh"
ensure_apt xvfb xauth imagemagick x11-utils

bin="${1:-}"
shot="${2:-fleet}"
if [ -z "$bin" ]; then
  cargo build -p tenantry-app --quiet
  bin="$REPO_ROOT/target/debug/tenantry-console"
fi
data="$(mktemp -d)"
shots="$REPO_ROOT/target/screenshots"
mkdir -p "$shots"

export TENANTRY_DATA_DIR="$data"
xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
  "$0" & app=$!
  for _ in $(seq 1 60); do
    if xwininfo -root -tree 2>/dev/null | grep -q "\"Tenantry\""; then break; fi
    if ! kill -0 $app 2>/dev/null; then echo "the console exited during start-up" >&2; exit 1; fi
    sleep 0.5
  done
  xwininfo -root -tree | grep -q "\"Tenantry\"" || { echo "no Tenantry window appeared" >&2; kill $app; exit 1; }
  sleep 3
  import -window root "$1/$2.png"
  kill -0 $app || { echo "the console died after opening its window" >&2; exit 1; }
  kill $app; wait $app 2>/dev/null || true
' "$bin" "$shots" "$shot"
test -f "$data/demo-fleet/tenants/acme.db" || { echo "the demo fleet was not generated" >&2; exit 1; }
rm -rf "$data"
echo "window smoke test passed ($bin); screenshot: $shots/$shot.png"
