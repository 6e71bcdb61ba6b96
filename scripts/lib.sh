# Shared set-up steps for scripts/run.sh and scripts/test.sh. Sourced, not run.
# Each step checks first and installs only what is missing, so a second run is fast.

set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
# ensure_apt PKG...: installs the Debian/Ubuntu packages that are not installed yet.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing apt packages: ${missing[*]}"
  if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The system packages the desktop app needs to build and run.
APP_APT_PACKAGES=(build-essential pkg-config curl ca-certificates file libwebkit2gtk-4.1-dev libdbus-1-dev)

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    say "installing the Rust toolchain (rustup, stable)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
      rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null 2>&1 || true
    done
  fi
}

ensure_node() {
  if ! command -v npm >/dev/null 2>&1; then
    ensure_apt nodejs npm
  fi
}

# npm_install DIR: installs DIR's npm packages from its lock file. npm 11
# sometimes leaves other platforms' optional packages (rollup's) out of the
# lock file and then refuses `npm ci`; `npm install` honours the same lock.
npm_install() {
  npm --prefix "$1" ci --no-audit --no-fund --loglevel=error 2>/dev/null \
    || npm --prefix "$1" install --no-audit --no-fund --loglevel=error
}

# Installs the frontend's npm packages (from the lock file) and builds ui/dist,
# which the app embeds at compile time.
build_ui() {
  ensure_node
  if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    say "installing npm packages for ui/"
    npm_install ui
  fi
  say "building ui/dist"
  npm --prefix ui run --silent build
}

# The end-to-end tools: tauri-driver (crates.io) and tests/e2e's npm packages.
ensure_e2e_tools() {
  if ! command -v tauri-driver >/dev/null 2>&1; then
    say "installing tauri-driver (crates.io)"
    cargo install tauri-driver --locked --quiet
  fi
  if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    say "installing npm packages for tests/e2e"
    npm_install tests/e2e
  fi
}
