#!/usr/bin/env bash
# Makes sure this machine has what the build and the tests need: PostgreSQL server binaries
# (the integration tests start throwaway clusters), any extra Debian packages named as
# arguments (e.g. `ensure-deps.sh pgbouncer`), node_modules and dist/. Quiet and fast when
# everything is already there; safe with no stdin (CI).
set -eu

cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive

# --test: everything the test suite starts (the Patroni scenarios need etcd and Patroni, and
# HAProxy as the primary Service of the runbook topology; the benchmark smoke test PgBouncer).
# The metrics tests run Debian's prometheus-pgbouncer-exporter against PgBouncer and pgrelay, and
# check the alert rules with promtool (package prometheus). The TLS tests make their CA and
# certificates with openssl. The driver matrix (test/drivers) runs psycopg 3 and pgjdbc on a
# headless JRE.
if [ "${1:-}" = "--test" ]; then
  shift
  set -- patroni etcd-server etcd-client python3-etcd python3-psycopg2 haproxy pgbouncer \
    prometheus-pgbouncer-exporter prometheus openssl \
    python3-psycopg libpostgresql-jdbc-java default-jre-headless "$@"
fi

is_root() { [ "$(id -u)" -eq 0 ]; }

apt_updated=0
apt_install() {
  if ! is_root; then
    echo "ensure-deps: missing Debian packages: $*" >&2
    echo "ensure-deps: run as root (or: sudo apt-get install -y --no-install-recommends $*)" >&2
    exit 1
  fi
  if [ "$apt_updated" -eq 0 ]; then
    echo "ensure-deps: apt-get update" >&2
    apt-get update -qq </dev/null >/dev/null
    apt_updated=1
  fi
  echo "ensure-deps: apt-get install $*" >&2
  apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
}

# Some installed PostgreSQL version with both initdb and pg_ctl (the harness picks the newest).
have_pg_server() {
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      return 0
    fi
  done
  return 1
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=""
if ! have_pg_server; then
  missing="postgresql postgresql-contrib"
fi
for pkg in "$@"; do
  if ! is_installed "$pkg"; then
    missing="$missing $pkg"
  fi
done
if [ -n "$missing" ]; then
  # word splitting of $missing is intended: Debian package names have no spaces
  # shellcheck disable=SC2086
  apt_install $missing
  if ! have_pg_server; then
    echo "ensure-deps: PostgreSQL server binaries still missing under /usr/lib/postgresql/*/bin" >&2
    exit 1
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "ensure-deps: npm not found; Node.js 20 or newer is required" >&2
  exit 1
fi

# npm ci when node_modules is missing or older than the lock file. npm writes
# node_modules/.package-lock.json on every install, so it dates the tree better than the dir.
stamp=node_modules/.package-lock.json
[ -e "$stamp" ] || stamp=node_modules
if [ ! -e node_modules ] || [ package-lock.json -nt "$stamp" ]; then
  echo "ensure-deps: npm ci" >&2
  # npm ci also runs the `prepare` script, which builds dist/
  npm ci --no-audit --no-fund --loglevel=error </dev/null >&2
fi

# dist/ missing or older than src/ (tests that spawn dist/main.js must not run stale code).
if [ ! -e dist/main.js ] || [ -n "$(find src -newer dist/main.js -print -quit)" ]; then
  echo "ensure-deps: npm run build" >&2
  npm run --silent build </dev/null >&2
fi
