#!/usr/bin/env bash
# Builds the console as .deb and .rpm packages with Tauri's bundler:
# target/release/bundle/deb/*.deb and target/release/bundle/rpm/*.rpm. Each
# holds the console (/usr/bin/tenantry-console, its desktop entry and icons),
# the command-line tool (/usr/bin/tenantry) and the systemd units of
# deploy/systemd (/usr/share/tenantry/deploy/systemd/). Nothing is fetched
# while bundling (no AppImage: it downloads its tools).
source "$(dirname "$0")/lib.sh"
ensure_apt "${APP_APT_PACKAGES[@]}"
ensure_rust
ensure_node
build_ui   # npm ci in ui/: also installs the Tauri CLI (@tauri-apps/cli) from the lock file

say "building the release CLI"
cargo build --release --locked -q -p tenantry-cli
say "building and bundling the console (.deb, .rpm)"
rm -rf target/release/bundle/deb target/release/bundle/rpm
(cd src-tauri && "$REPO_ROOT/ui/node_modules/.bin/tauri" build --ci --bundles deb,rpm -- --locked)
ls -1 target/release/bundle/deb/*.deb target/release/bundle/rpm/*.rpm
