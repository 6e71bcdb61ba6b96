# Makes sure the PostgreSQL and MariaDB servers the tests use are running on
# 127.0.0.1 with the access the tests expect (PostgreSQL: user postgres,
# trust auth; MariaDB: root, empty password). Sourced by scripts/test.sh.
#
# A server that is already reachable is used as it is. One that is installed
# but stopped is started. One that is missing is installed from apt and, being
# a fresh throwaway install, configured for the tests' passwordless access.

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && pg_ready; then return 0; fi
  local fresh=0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    ensure_apt postgresql postgresql-client
    fresh=1
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ "$fresh" -eq 1 ]; then
    say "configuring the fresh PostgreSQL $version for local trust auth (test machine)"
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    as_root sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

mysql_ready() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }

ensure_mariadb() {
  if command -v mariadb-admin >/dev/null 2>&1 && mysql_ready; then return 0; fi
  local fresh=0
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    ensure_apt mariadb-server mariadb-client
    fresh=1
  fi
  say "starting MariaDB"
  as_root mkdir -p /run/mysqld
  as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null
  for _ in $(seq 1 30); do
    if mariadb-admin ping >/dev/null 2>&1 || mysql_ready; then break; fi
    sleep 1
  done
  if [ "$fresh" -eq 1 ]; then
    say "allowing root with an empty password on 127.0.0.1 (fresh test install)"
    as_root mariadb -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;" || true
  fi
  for _ in $(seq 1 30); do mysql_ready && return 0; sleep 1; done
  echo "MariaDB did not come up on 127.0.0.1:3306 for root with an empty password" >&2
  return 1
}
