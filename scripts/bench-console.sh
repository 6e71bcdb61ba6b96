#!/usr/bin/env bash
# Benchmark: the console's fleet screen in the real window (debug build,
# under Xvfb, driven by tauri-driver) over registries of 10,000 and 100,000
# tenants, made by the registry_scale bench. Prints window start to first
# rows, the screen reopened, a jump to the middle, a search and a filter.
# Sizes: TENANTRY_BENCH_REGISTRY=10000,100000. TENANTRY_BENCH_BASE=/path/to/
# an earlier tenantry-console (e.g. the previous main, built in a worktree)
# runs the same steps with it first, on its own copy of each registry, for a
# side-by-side comparison. Not part of the test suite.
source "$(dirname "$0")/lib.sh"
ensure_apt "${APP_APT_PACKAGES[@]}" xvfb xauth webkit2gtk-driver dbus dbus-x11 gnome-keyring
ensure_rust
ensure_node
ensure_e2e_tools
build_ui
cargo build -q -p tenantry-app

sizes="${TENANTRY_BENCH_REGISTRY:-10000,100000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say "building registries of $sizes tenants (registry_scale)"
TENANTRY_BENCH_KEEP="$work/registries" TENANTRY_BENCH_REGISTRY="$sizes" TENANTRY_BENCH_CLI="" \
  cargo bench -q -p tenantry-tests --bench registry_scale >/dev/null
apps="head=$REPO_ROOT/target/debug/tenantry-console"
[ -n "${TENANTRY_BENCH_BASE:-}" ] && apps="base=$TENANTRY_BENCH_BASE $apps"
for n in ${sizes//,/ }; do
  for app in $apps; do
    label="${app%%=*}"
    data="$work/data-$n-$label"
    mkdir -p "$data"
    for end in "" -wal -shm; do
      [ -e "$work/registries/registry-$n.db$end" ] && cp "$work/registries/registry-$n.db$end" "$data/registry.db$end"
    done
    # A throwaway keyring session: the console never reaches the user's own.
    TENANTRY_DATA_DIR="$data" TENANTRY_KEYRING_SERVICE="dev.tenantry.bench.$$" \
      TENANTRY_E2E_APP="${app#*=}" TENANTRY_BENCH_TENANTS="$n" TENANTRY_BENCH_LABEL="$label" \
      scripts/with-keyring.sh xvfb-run -a -s "-screen 0 1280x800x24" node tests/e2e/fleet-scale.bench.mjs
  done
done
