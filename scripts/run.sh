#!/usr/bin/env bash
# Sets up everything that is missing and runs the Tenantry console. With an
# empty registry it opens on the first-run screen, whose first choice is the
# built-in demo fleet (generated on first run, in a registry of its own).
source "$(dirname "$0")/lib.sh"

ensure_apt "${APP_APT_PACKAGES[@]}"
ensure_rust
build_ui

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  ensure_apt xvfb xauth
  say "no display found: running the console under Xvfb (headless)"
  exec xvfb-run -a -s "-screen 0 1280x800x24" cargo run -p tenantry-app "$@"
fi
say "starting the console"
exec cargo run -p tenantry-app "$@"
