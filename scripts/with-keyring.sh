#!/usr/bin/env bash
# Runs a command inside a throwaway Secret Service: a private D-Bus session
# with a gnome-keyring whose files live in a temporary directory, unlocked
# with a throwaway password. Nothing touches the user's own keyring.
#   usage: scripts/with-keyring.sh COMMAND [ARGS...]
set -euo pipefail
if [ -z "${TENANTRY_IN_KEYRING_SESSION:-}" ]; then
  export TENANTRY_IN_KEYRING_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi
keyring_home="$(mktemp -d)"
trap 'rm -rf "$keyring_home"' EXIT
export XDG_DATA_HOME="$keyring_home/data" XDG_RUNTIME_DIR="$keyring_home/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
# A non-empty password is required for the login keyring to be created unlocked.
printf '%s' "throwaway-$$" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
"$@"
