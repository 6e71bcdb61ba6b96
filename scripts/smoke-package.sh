#!/usr/bin/env bash
# Builds the .deb and .rpm (scripts/package.sh), installs the .deb on this
# machine, checks what it put where, launches the installed console under
# Xvfb and saves a screenshot (target/screenshots/installed.png), then
# removes the package again. Used by scripts/test.sh.
source "$(dirname "$0")/lib.sh"
bash scripts/package.sh
deb="$(ls -1 target/release/bundle/deb/*.deb | head -n 1)"
rpm="$(ls -1 target/release/bundle/rpm/*.rpm | head -n 1)"
[ -s "$rpm" ] || { echo "no .rpm was built" >&2; exit 1; }
name="$(dpkg-deb --field "$deb" Package)"
say "installing $deb ($name)"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$REPO_ROOT/$deb" >/dev/null
trap 'as_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$name" >/dev/null 2>&1 || true' EXIT
for f in /usr/bin/tenantry-console /usr/bin/tenantry \
  /usr/share/tenantry/deploy/systemd/tenantry-scan.service /usr/share/tenantry/deploy/systemd/tenantry-scan.timer; do
  dpkg -L "$name" | grep -qx "$f" || { echo "the package does not install $f" >&2; exit 1; }
done
desktop="$(dpkg -L "$name" | grep '^/usr/share/applications/.*\.desktop$' | head -n 1)"
[ -n "$desktop" ] || { echo "the package has no desktop entry" >&2; exit 1; }
grep -q '^Exec=tenantry-console' "$desktop" || { echo "the desktop entry does not start tenantry-console: $(grep ^Exec "$desktop")" >&2; exit 1; }
dpkg -L "$name" | grep -q '^/usr/share/icons/hicolor/.*/apps/.*\.png$' || { echo "the package has no icons" >&2; exit 1; }
/usr/bin/tenantry --version
bash scripts/smoke-window.sh /usr/bin/tenantry-console installed
