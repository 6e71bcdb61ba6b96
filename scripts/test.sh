#!/usr/bin/env bash
# Sets up everything that is missing and runs the whole Tenantry test suite:
# formatting, lints, the Rust tests against the real PostgreSQL, MariaDB and
# SQLite, the TypeScript type check, the IPC-bindings freshness check, and a
# real-window smoke run of the console under Xvfb, the end-to-end tests
# that drive the real window over real PostgreSQL tenants, and the packages
# (.deb and .rpm built, the .deb installed and its console started).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/services.sh"

ensure_apt "${APP_APT_PACKAGES[@]}" xvfb xauth imagemagick x11-utils postgresql-client mariadb-client \
  dbus dbus-x11 gnome-keyring systemd
ensure_rust
ensure_postgres
ensure_mariadb
build_ui

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

say "cargo test (real PostgreSQL, MariaDB, SQLite)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
# run_tests CMD...: runs a test command, appending its output to the log.
run_tests() {
  set +e
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || status=1
}
run_tests cargo test --workspace --lib --bins --tests

say "the registry suite again, on a PostgreSQL registry (a team's shared registry)"
# --workspace, as above: the same features, so nothing is compiled again.
run_tests env TENANTRY_TEST_REGISTRY=postgres cargo test --workspace --test registry

say "the data key in the real OS keyring, across processes (Secret Service)"
run_tests bash scripts/with-keyring.sh cargo test --workspace --test keyring -- --ignored

say "end to end: the real window, tauri-driver + WebKitWebDriver + WebdriverIO, real PostgreSQL and MariaDB"
run_tests bash scripts/e2e.sh

say "IPC bindings are up to date"
if ! git diff --quiet -- ui/src/bindings || [ -n "$(git ls-files --others --exclude-standard ui/src/bindings)" ]; then
  echo "ui/src/bindings changed when the tests regenerated them: commit the new bindings" >&2
  git status --short ui/src/bindings >&2
  status=1
fi

say "TypeScript type check"
npm --prefix ui run --silent typecheck || status=1

say "UI component tests (IPC mocked)"
run_tests env NO_COLOR=1 npm --prefix ui test --silent

say "the console opens a real window (Xvfb)"
bash scripts/smoke-window.sh || status=1

say "the packages: .deb and .rpm built, the .deb installed, its console started (Xvfb)"
bash scripts/smoke-package.sh || status=1

# cargo's "test result: ok. N passed; M failed", vitest's "Tests  N passed"
# and node's "# pass N" / "# fail M".
plain="$(mktemp)"
sed 's/\x1b\[[0-9;]*m//g' "$log" > "$plain"
passed=$(awk '/^test result:|^ *Tests  / { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) p += $i } /^# pass / { p += $3 } END { print p + 0 }' "$plain")
failed=$(awk '/^test result:|^ *Tests  / { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) f += $i } /^# fail / { f += $3 } END { print f + 0 }' "$plain")
rm -f "$plain"
[ "$status" -eq 0 ] || [ "${failed:-0}" -gt 0 ] || failed=$(( ${failed:-0} + 1 ))
echo
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
