#!/usr/bin/env bash
# The whole test set-up: checks, installs (Debian and npm packages) and starts
# what the tests need — PostgreSQL, NATS with JetStream, RabbitMQ, Chromium, DuckDB's npm package, Python 3
# (an independent Parquet reader), versitygw (a real S3-compatible server), the sqlite3 shell (bench's
# reference for SQLite loads) —
# then runs every Go test with the race detector. A service that cannot be started fails the run; no test skips.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done; return 1; }

say "Go"
command -v go >/dev/null || die "Go is not installed: install Go 1.26 or newer (https://go.dev/doc/install)"
go version

say "PostgreSQL on 127.0.0.1:5432"
PGURL=${SLUICE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
if ! command -v pg_isready >/dev/null || ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages"
    apt_install postgresql
    v=$(ls /etc/postgresql | sort -V | tail -1)
    # A test machine: trust local TCP connections, as the tests connect without a password.
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "/etc/postgresql/$v/main/pg_hba.conf"
  fi
  v=$(ls /etc/postgresql | sort -V | tail -1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432 || die "PostgreSQL did not start on 127.0.0.1:5432"
fi
if ! psql "$PGURL" -qAtc 'select 1' >/dev/null 2>&1; then
  # The database may be missing on a fresh install.
  as_root su postgres -c "createdb test" 2>/dev/null || psql -h 127.0.0.1 -U postgres -qc 'create database test' 2>/dev/null || true
  psql "$PGURL" -qAtc 'select 1' >/dev/null || die "cannot connect to $PGURL"
fi
echo "ok: $(psql "$PGURL" -qAtc 'show server_version')"

say "NATS with JetStream on 127.0.0.1:4222"
if ! port_open 4222; then
  command -v nats-server >/dev/null || { echo "installing nats-server from Debian's packages"; apt_install nats-server; }
  mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222 || die "nats-server did not start on 127.0.0.1:4222 (see /var/log/nats-server.log)"
fi
echo ok

say "RabbitMQ on 127.0.0.1:5672 (guest/guest)"
# The rabbitqueue tests also start private nodes of their own with the same
# installation (rabbitmq-server and rabbitmqctl), on other ports.
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || { echo "installing rabbitmq-server from Debian's packages"; apt_install rabbitmq-server; }
  as_root rabbitmq-server -detached
  for _ in $(seq 1 240); do port_open 5672 && break; sleep 0.5; done
  port_open 5672 || die "rabbitmq-server did not open 127.0.0.1:5672 within 120s (see /var/log/rabbitmq/)"
fi
command -v rabbitmqctl >/dev/null && { rabbitmqctl await_startup >/dev/null 2>&1 || die "RabbitMQ on 127.0.0.1:5672 did not finish starting (rabbitmqctl await_startup)"; }
echo ok

say "versitygw (a real S3-compatible server) for the s3:// store tests"
VGW_VERSION=v1.8.0
gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if ! command -v versitygw >/dev/null && [ ! -x "$gobin/versitygw" ]; then
  echo "installing versitygw $VGW_VERSION with go install"
  go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION" || die "could not install versitygw"
fi
echo ok

say "Chromium (headless) for the web console's browser test"
command -v chromium >/dev/null || { echo "installing chromium from Debian's packages"; apt_install chromium; }
command -v chromium >/dev/null || die "chromium is not installed and apt could not install it"
echo ok

say "DuckDB (npm @duckdb/node-api) for reading curated Parquet independently"
if [ -f tools/duckcheck/package.json ]; then
  command -v node >/dev/null || { echo "installing Node.js from Debian's packages"; apt_install nodejs npm; }
  # npm install, not npm ci: with this machine's npm settings the lock file
  # omits other platforms' optional DuckDB bindings, which npm ci rejects.
  # Versions are pinned exactly in package.json and the lock.
  (cd tools/duckcheck && { [ -d node_modules/@duckdb/node-api ] || npm install --no-audit --no-fund --loglevel=error; }) \
    || die "npm could not install tools/duckcheck's packages"
  echo ok
fi

say "sqlite3 (the SQLite shell: bench's reference for loads into SQLite)"
command -v sqlite3 >/dev/null || { echo "installing sqlite3 from Debian's packages"; apt_install sqlite3; }
sqlite3 -version

say "Python 3 (the PySpark example's syntax check and its Spark-free helpers)"
command -v python3 >/dev/null || { echo "installing python3 from Debian's packages"; apt_install python3; }
python3 --version

say "go vet"
go vet ./...

say "go test -race -count=1 ./..."
go test -race -count=1 -timeout 30m ./... "$@"
