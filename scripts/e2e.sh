#!/usr/bin/env bash
# End-to-end tests of the real console window: builds the app and the CLI,
# prepares real PostgreSQL tenants with the CLI (one of them customized, with
# a canary password in its URL), then drives the window under Xvfb with
# tauri-driver + WebKitWebDriver + WebdriverIO inside a throwaway keyring.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/services.sh"
ensure_apt xvfb xauth webkit2gtk-driver dbus dbus-x11 gnome-keyring postgresql-client mariadb-client
ensure_rust
ensure_node
ensure_postgres
ensure_mariadb
ensure_e2e_tools
build_ui
cargo build -q -p tenantry-app -p tenantry-cli

work="$(mktemp -d)"
db="tenantry_e2e_$$"
mydb="tenantry_e2e_my_$$"
my() { mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root "$@"; }
cleanup() {
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  # The MariaDB tenant, and the quarantine its sync fills.
  for d in $(my -N -e "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$mydb' OR SCHEMA_NAME LIKE 'tenantry\\_q\\_${mydb}\\_%'" 2>/dev/null); do
    my -e "DROP DATABASE IF EXISTS \`$d\`" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
my -e "CREATE DATABASE \`$mydb\`"
mkdir -p "$work/template/1.0.0" "$work/template-my/1.0.0"
cp tests/fixtures/postgres/template.sql "$work/template/1.0.0/0001_init.sql"
cp tests/fixtures/mysql/template.sql "$work/template-my/1.0.0/0001_init.sql"

export TENANTRY_DATA_DIR="$work/data"
export TENANTRY_REGISTRY="$TENANTRY_DATA_DIR/registry.db"
export TENANTRY_KEYRING_SERVICE="dev.tenantry.e2e.$$"
export TENANTRY_E2E_CANARY="Canary-E2e-$$-pw"
export TENANTRY_E2E_CUSTOMIZED="beta"
export TENANTRY_E2E_APP="$REPO_ROOT/target/debug/tenantry-console"
mkdir -p "$TENANTRY_DATA_DIR"

export TENANTRY_E2E_CLI="$REPO_ROOT/target/debug/tenantry"
export TENANTRY_E2E_DB="$db"
export TENANTRY_E2E_MYDB="$mydb"
# The PostgreSQL template's folder: added through the console's Templates
# screen; the test writes its import file under the work directory.
export TENANTRY_E2E_TEMPLATE="$work/template"
export TENANTRY_E2E_WORK="$work"

# Everything that needs the key runs inside one throwaway keyring session.
# Only the MariaDB template is prepared here: the console opens on its
# first-run screen, the test adds the PostgreSQL template from its folder
# and the first tenant through the console's forms, imports three more from
# a CSV file, and uses the CLI beside it (the same registry, at the same time).
scripts/with-keyring.sh bash -c '
  set -euo pipefail
  cli="$0"; db="$1"; tpl="$2"; mydb="$3"; tplmy="$4"
  url="postgres://postgres:${TENANTRY_E2E_CANARY}@127.0.0.1:5432/$db"
  "$cli" template add "$tplmy" --name saas-my --engine mysql --scratch "mysql://root@127.0.0.1:3306/$mydb" >/dev/null
  xvfb-run -a -s "-screen 0 1280x800x24" npm --prefix tests/e2e test
' "$REPO_ROOT/target/debug/tenantry" "$db" "$work/template" "$mydb" "$work/template-my"
