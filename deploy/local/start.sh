#!/usr/bin/env bash
# Starts the five vaxbook services as separate processes against the local PostgreSQL and Redis
# (starting those when they are down). Logs and pid files go to $VAXBOOK_RUN_DIR
# (default deploy/local/run). Every variable of the README's configuration table is passed through.
#   VAXBOOK_PROFILE=release   build and run release binaries
#   VAXBOOK_SEED_DEMO=1       load the 2021 demo round after start-up
#   VAXBOOK_SKIP_BUILD=1      use the binaries already in target/
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
export VAXBOOK_ADMIN_KEY="${VAXBOOK_ADMIN_KEY:-$(secret_file "$run_dir/admin-key")}"
export AUTH_PERSON_KEY_SECRET="${AUTH_PERSON_KEY_SECRET:-$(secret_file "$run_dir/person-key-secret")}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
"$bin/vaxbook" migrate

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
    if [ "${VAXBOOK_SEED_DEMO:-0}" = 1 ]; then "$bin/vaxbook" seed-demo; fi
    exit 0
  fi
  sleep 0.5
done
echo "vaxbook did not become ready; see the logs in $run_dir" >&2
exit 1
