#!/usr/bin/env bash
# Starts the five vaxbook services as separate processes against the local PostgreSQL and Redis
# (starting those when they are down). Logs and pid files go to $VAXBOOK_RUN_DIR
# (default deploy/local/run). Every variable of the README's configuration table is passed through.
#   VAXBOOK_PROFILE=release   build and run release binaries
#   VAXBOOK_SEED_DEMO=1       load the 2021 demo round after start-up (as the operator below)
#   VAXBOOK_SKIP_BUILD=1      use the binaries already in target/
# There is no operator key: admin calls take an operator token. The script keeps an operator
# account, operator.local of vaxbook-ops, in auth-svc's database (AUTH_DATABASE_URL, default:
# DATABASE_URL's database name + _auth), created once with its password and TOTP secret in the
# run directory (operator-password, operator-totp-secret), logs it in after start-up and writes
# the token to $VAXBOOK_RUN_DIR/operator-token (30 minutes; `export VAXBOOK_OPERATOR_TOKEN=$(cat
# …/operator-token)` for the vaxbook commands). booking-svc and scheduling-svc share a generated
# internal service key (VAXBOOK_SERVICE_KEY).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
run_dir="${VAXBOOK_RUN_DIR:-$root/deploy/local/run}"
profile="${VAXBOOK_PROFILE:-debug}"
mkdir -p "$run_dir"

bash scripts/ensure-services
if [ "${VAXBOOK_SKIP_BUILD:-0}" != 1 ]; then
  if [ "$profile" = release ]; then cargo build --release --bins; else cargo build --bins; fi
fi
bin="$root/target/$profile"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/vaxbook}"
# One signing key for every auth-svc replica, kept across restarts so tokens stay valid.
if [ -z "${AUTH_SIGNING_KEY_FILE:-}" ]; then
  export AUTH_SIGNING_KEY_FILE="$run_dir/auth-signing-key.pem"
  [ -s "$AUTH_SIGNING_KEY_FILE" ] || (umask 077 && "$bin/vaxbook" keygen >"$AUTH_SIGNING_KEY_FILE")
fi
# One signing key for every session-svc replica (admission grants), kept across restarts.
if [ -z "${SESSION_SIGNING_KEY_FILE:-}" ]; then
  export SESSION_SIGNING_KEY_FILE="$run_dir/session-signing-key.pem"
  [ -s "$SESSION_SIGNING_KEY_FILE" ] || (umask 077 && "$bin/vaxbook" keygen >"$SESSION_SIGNING_KEY_FILE")
fi
# auth-svc asks the carriers' identity-verification agency before sending a code: production
# binaries refuse to start without it (`vaxbook dev` has a stand-in of its own).
if [ -z "${AUTH_CARRIER_CHECK_URL:-}" ]; then
  echo "AUTH_CARRIER_CHECK_URL must name the carriers' identity-verification agency (auth-svc refuses to start without it; see auth-svc/README.md)" >&2
  exit 2
fi
# Production binaries refuse the development secrets: make local ones once, kept across restarts.
secret_file() {
  [ -s "$1" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1")
  cat "$1"
}
export VAXBOOK_SERVICE_KEY="${VAXBOOK_SERVICE_KEY:-$(secret_file "$run_dir/service-key")}"
export AUTH_PERSON_KEY_SECRET="${AUTH_PERSON_KEY_SECRET:-$(secret_file "$run_dir/person-key-secret")}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
# auth-svc's staff accounts and audit trail: its own database on the same server (query kept).
if [ -z "${AUTH_DATABASE_URL:-}" ]; then
  database_name="${DATABASE_URL##*/}"
  query=""
  case "$database_name" in *\?*) query="?${database_name#*\?}" ;; esac
  export AUTH_DATABASE_URL="${DATABASE_URL%/*}/${database_name%%\?*}_auth$query"
fi
"$bin/vaxbook" migrate
# The operator account, created once (its TOTP secret is printed only at creation).
operator=operator.local
operator_password="$(secret_file "$run_dir/operator-password")"
totp_file="$run_dir/operator-totp-secret"
if [ ! -s "$totp_file" ]; then
  "$bin/vaxbook" accounts create --role operator --org vaxbook-ops --name "$operator" \
    --password "$operator_password" |
    awk 'next_line { print; exit } /^TOTP secret/ { next_line = 1 }' >"$totp_file.new"
  [ -s "$totp_file.new" ] || { echo "creating the operator account printed no TOTP secret" >&2; exit 1; }
  chmod 600 "$totp_file.new"
  mv "$totp_file.new" "$totp_file"
  echo "created the operator account $operator (password and TOTP secret in $run_dir)"
fi

for svc in session-svc auth-svc scheduling-svc booking-svc gateway; do
  if [ -f "$run_dir/$svc.pid" ] && kill -0 "$(cat "$run_dir/$svc.pid")" 2>/dev/null; then
    echo "$svc is already running (pid $(cat "$run_dir/$svc.pid"))"
    continue
  fi
  nohup "$bin/$svc" >"$run_dir/$svc.log" 2>&1 &
  echo $! >"$run_dir/$svc.pid"
  echo "started $svc (pid $!, log $run_dir/$svc.log)"
done

gateway="http://127.0.0.1:$(echo "${GATEWAY_LISTEN_ADDR:-0.0.0.0:8080}" | sed 's/.*://')"
for _ in $(seq 1 120); do
  if curl -fsS "$gateway/readyz" >/dev/null 2>&1; then
    echo "vaxbook is ready at $gateway"
    auth_listen="${AUTH_LISTEN_ADDR:-0.0.0.0:50051}"
    auth_url="${VAXBOOK_AUTH_URL:-http://127.0.0.1:${auth_listen##*:}}"
    code="$("$bin/vaxbook" accounts totp --secret "$(cat "$totp_file")")"
    (umask 077 && "$bin/vaxbook" callcenter login --auth-url "${auth_url%%,*}" --username "$operator" \
      --password "$operator_password" --totp "$code" | tail -n 1 >"$run_dir/operator-token")
    echo "operator $operator logged in: export VAXBOOK_OPERATOR_TOKEN=\$(cat $run_dir/operator-token)"
    if [ "${VAXBOOK_SEED_DEMO:-0}" = 1 ]; then
      VAXBOOK_OPERATOR_TOKEN="$(cat "$run_dir/operator-token")" "$bin/vaxbook" seed-demo
    fi
    exit 0
  fi
  sleep 0.5
done
echo "vaxbook did not become ready; see the logs in $run_dir" >&2
exit 1
