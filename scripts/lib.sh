# Shared by scripts/run and scripts/test: installs what is missing and makes sure PostgreSQL
# is there. Idempotent; prints each step; stops with a clear message on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
# Local settings (see .env.example); variables already set in the environment win, and
# commented-out lines are skipped.
load_env_file() {
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] && [ -z "${!key:-}" ] && export "$key=$value"
  done < "$1"
  return 0
}
[ -f .env ] && load_env_file .env

CARGO_LEPTOS_VERSION=0.3.9
BINARYEN_VERSION=132.0.0
PG_DIR="$ROOT/.postgres"          # private cluster: git-ignored, survives `cargo clean`
PG_PORT="${JOBDECK_PG_PORT:-54329}"

step() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif have sudo; then sudo "$@"; else die "need root for: $*"; fi
}

apt_install() {
  step "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
    || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; } \
    || die "apt-get install $* failed"
}

# Commands the scripts and tests call besides cargo: curl (health checks), python3 (seed
# 003's reporter, run unchanged by the tests) and openssl (the email test's certificates).
ensure_commands() {
  have curl || apt_install curl
  have python3 || apt_install python3
  have openssl || apt_install openssl
  have curl || die "curl is missing and could not be installed"
  have python3 || die "python3 is missing and could not be installed"
  have openssl || die "openssl is missing and could not be installed"
}

# Python packages the tests use beyond the standard library: aiosmtpd, the SMTP server the
# email test sends to. Installed into target/python (git-ignored, for the tests only) and
# put on PYTHONPATH.
ensure_python_packages() {
  local dir="$ROOT/target/python"
  if ! PYTHONPATH="$dir" python3 -c "import aiosmtpd" 2>/dev/null; then
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    step "installing aiosmtpd into target/python for the email test"
    python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$dir" "aiosmtpd==1.4.6" || die "pip install aiosmtpd failed"
  fi
  export PYTHONPATH="$dir${PYTHONPATH:+:$PYTHONPATH}"
}

# Dies unless nothing listens on 127.0.0.1:$1, so a script never talks to someone else's server.
ensure_port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    die "port $1 is already in use on 127.0.0.1; stop what listens there or set $2 to another port"
  fi
}

ensure_rust_tools() {
  have cargo || die "cargo is not installed (https://rustup.rs)"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown || die "rustup target add wasm32-unknown-unknown failed"
  fi
  if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    step "installing cargo-leptos $CARGO_LEPTOS_VERSION (takes about 12 minutes once)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked || die "cargo install cargo-leptos failed"
  fi
  local wbg
  wbg="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
  [ -n "$wbg" ] || die "no wasm-bindgen version in Cargo.lock"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg" ]; then
    step "installing wasm-bindgen-cli $wbg (the version in Cargo.lock)"
    # --locked fails for 0.2.130: one of its locked dependencies is no longer published.
    cargo install wasm-bindgen-cli --version "=$wbg" || die "cargo install wasm-bindgen-cli failed"
  fi
  if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    have npm || apt_install npm
    step "installing wasm-opt (npm binaryen@$BINARYEN_VERSION; Debian's is too old)"
    npm install -g --silent "binaryen@$BINARYEN_VERSION" || die "npm install -g binaryen failed"
  fi
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$dir" ]; then
    apt_install postgresql
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  fi
  [ -n "$dir" ] || die "PostgreSQL is not installed and could not be installed"
  echo "$dir"
}

# Runs a PostgreSQL server binary as a user it accepts (it refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# As root the server runs as `postgres`, which must be able to reach .postgres/ through every
# parent folder; grant it just that (an ACL when possible) where it is missing, and say so.
allow_postgres_into() {
  local dir="$1"
  runuser -u postgres -- test -x "$dir" && return
  local parent="$dir"
  while [ "$parent" != "/" ]; do
    parent="$(dirname "$parent")"
    if ! runuser -u postgres -- test -x "$parent"; then
      step "letting the postgres user traverse $parent"
      if have setfacl; then setfacl -m u:postgres:x "$parent"; else chmod o+x "$parent"; fi
    fi
  done
  runuser -u postgres -- test -x "$dir" || die "the postgres user cannot reach $dir"
}

# Sets DATABASE_URL: the caller's, or a private cluster in .postgres/ started on demand.
ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    step "using DATABASE_URL from the environment"
    "$(pg_bin)/psql" "$DATABASE_URL" -qAtc "SELECT 1" >/dev/null \
      || die "cannot connect to DATABASE_URL (unset it to use a private cluster in .postgres/)"
    return
  fi
  local bin data="$PG_DIR/data" sock="$PG_DIR/run"
  bin="$(pg_bin)"
  mkdir -p "$PG_DIR" "$sock"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$PG_DIR"
    allow_postgres_into "$PG_DIR"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    step "creating a private PostgreSQL cluster in .postgres/"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null \
      || die "initdb failed"
  fi
  if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    ensure_port_free "$PG_PORT" JOBDECK_PG_PORT
    step "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$bin/pg_ctl" -D "$data" -l "$PG_DIR/postgres.log" -w -t 30 \
      -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
      || die "PostgreSQL did not start; see .postgres/postgres.log"
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/jobdeck"
  if ! "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'jobdeck'" postgres | grep -q 1; then
    step "creating database jobdeck"
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres jobdeck || die "createdb jobdeck failed"
  fi
}

# Whether the private cluster in .postgres/ is running.
private_postgres_running() {
  [ -f "$PG_DIR/data/PG_VERSION" ] && as_pg "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1
}

# Stops the private cluster in .postgres/ if it is running.
stop_private_postgres() {
  if private_postgres_running; then
    step "stopping the private PostgreSQL cluster"
    as_pg "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
  fi
}

# The webhook secret for local runs: the caller's, or one kept in .postgres/ (git-ignored).
ensure_webhook_secret() {
  if [ -z "${TC_PORTAL_WEBHOOK_SECRET:-}" ]; then
    local file="$PG_DIR/webhook-secret"
    [ -s "$file" ] || { mkdir -p "$PG_DIR"; (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$file"); }
    TC_PORTAL_WEBHOOK_SECRET="$(cat "$file")"
    export TC_PORTAL_WEBHOOK_SECRET
  fi
}

# The first admin for local runs: the caller's JOBDECK_ADMIN_*, or an admin@jobdeck.local
# whose password is generated once into .postgres/ (git-ignored, mode 0600). The portal
# uses them only while the database has no user at all.
ensure_first_admin() {
  if [ -z "${JOBDECK_ADMIN_EMAIL:-}" ]; then
    local file="$PG_DIR/admin-password"
    if [ ! -s "$file" ]; then
      mkdir -p "$PG_DIR"
      (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 20 > "$file")
    fi
    chmod 600 "$file"
    JOBDECK_ADMIN_EMAIL="admin@jobdeck.local"
    JOBDECK_ADMIN_PASSWORD="$(cat "$file")"
    export JOBDECK_ADMIN_EMAIL JOBDECK_ADMIN_PASSWORD
  fi
}

# Debian's Chromium (Playwright's own download cannot run here), a Japanese font so
# screenshots are legible, and the Playwright runner from end2end/package-lock.json.
ensure_browser() {
  [ -x /usr/bin/chromium ] || apt_install chromium
  fc-list 2>/dev/null | grep -qi "ipagothic\|noto sans cjk" || apt_install fonts-ipafont-gothic
  have npm || apt_install npm
  if [ ! -x end2end/node_modules/.bin/playwright ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    step "installing Playwright (npm ci in end2end/)"
    (cd end2end && npm ci --no-audit --no-fund --silent) || die "npm ci in end2end/ failed"
  fi
}

# Waits until a Jobdeck at $1 answers /healthz, or fails after $2 seconds.
wait_for_server() {
  local url="$1" seconds="$2" i
  for ((i = 0; i < seconds * 10; i++)); do
    curl -sf "$url/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
