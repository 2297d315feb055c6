#!/usr/bin/env bash
# Runs the five vaxbook services as podman containers of the image deploy/images.sh built, on the
# host network, against the local PostgreSQL and Redis (what compose.yaml does with its own
# stores, for a machine that cannot pull third-party images).
#   deploy/containers.sh up     migrate, create the operator account (once), start the five, wait
#                               for the gateway's /readyz, log the operator in; prints
#                               GATEWAY_URL=, AUTH_URL=, SCHEDULING_URL=, BOOKING_URL=,
#                               OPERATOR_TOKEN=, REDIS_URL=, REDIS_KEY_PREFIX= lines
#   deploy/containers.sh down   stop and remove them
# There is no operator key: admin calls take an operator token (StaffAuthService.Login). The
# script keeps an operator account, operator.containers of vaxbook-ops, in auth-svc's database
# (AUTH_DATABASE_URL, default: DATABASE_URL's database name + _auth); its password and TOTP
# secret stay in the run directory (target/containers/<name>/operator-password,
# operator-totp-secret), and OPERATOR_TOKEN= is a fresh 30-minute operator token.
# booking-svc and scheduling-svc share a generated internal service key (VAXBOOK_SERVICE_KEY).
# AUTH_CARRIER_CHECK_URL (required) names the carriers' identity-verification agency auth-svc asks
# before sending a code (tests/tests/containers.rs starts a stand-in on the host network);
# DATABASE_URL and REDIS_URL default to the local stores.
# VAXBOOK_CONTAINERS_NAME (default vaxbook-c) prefixes container names and the Redis keys,
# VAXBOOK_CONTAINERS_PORT_BASE (default 18000) puts gRPC on base+51..54, the gateway on base+80
# and /metrics on base+101..104; VAXBOOK_IMAGE (default localhost/vaxbook:latest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/deploy/podman/containers.conf}"
name="${VAXBOOK_CONTAINERS_NAME:-vaxbook-c}"
base="${VAXBOOK_CONTAINERS_PORT_BASE:-18000}"
image="${VAXBOOK_IMAGE:-localhost/vaxbook:latest}"
run_dir="$root/target/containers/$name"
services=(session-svc scheduling-svc auth-svc booking-svc gateway)

down() {
  for svc in "${services[@]}"; do
    podman rm --force --time 10 "$name-$svc" >/dev/null 2>&1 || true
  done
}

if [ "${1:-}" = down ]; then down; exit 0; fi
[ "${1:-}" = up ] || { echo "usage: deploy/containers.sh up|down" >&2; exit 2; }

carrier_url="${AUTH_CARRIER_CHECK_URL:-}"
[ -n "$carrier_url" ] || {
  echo "AUTH_CARRIER_CHECK_URL must name the carriers' identity-verification agency (auth-svc refuses to start without it)" >&2
  exit 2
}
bash scripts/ensure-services >&2
mkdir -p "$run_dir"
chmod 700 "$run_dir"
secret() { [ -s "$1" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"; cat "$1"; }
service_key="$(secret "$run_dir/service-key")"
operator=operator.containers
operator_password="$(secret "$run_dir/operator-password")"
person_secret="$(secret "$run_dir/person-key-secret")"
key_file="$run_dir/auth-signing-key.pem"
[ -s "$key_file" ] || podman run --rm --no-healthcheck "$image" /usr/local/bin/vaxbook keygen >"$key_file"
chmod 644 "$key_file"
session_key_file="$run_dir/session-signing-key.pem"
[ -s "$session_key_file" ] || podman run --rm --no-healthcheck "$image" /usr/local/bin/vaxbook keygen >"$session_key_file"
chmod 644 "$session_key_file"

database_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/${name//-/_}}"
# auth-svc's own database on the same server: DATABASE_URL's name + _auth (query kept).
database_name="${database_url##*/}"
query=""
case "$database_name" in *\?*) query="?${database_name#*\?}" ;; esac
auth_database_url="${AUTH_DATABASE_URL:-${database_url%/*}/${database_name%%\?*}_auth$query}"
redis_url="${REDIS_URL:-redis://127.0.0.1:6379}"
prefix="vaxbook:${name}:"
common=(--detach --network host
  -e "DATABASE_URL=$database_url" -e "REDIS_URL=$redis_url" -e "REDIS_KEY_PREFIX=$prefix"
  -e "AUTH_PERSON_KEY_SECRET=$person_secret"
  -e "AUTH_SIGNING_KEY_FILE=/run/secrets/auth-signing-key.pem" -e "AUTH_CARRIER_CHECK_URL=$carrier_url"
  -v "$key_file:/run/secrets/auth-signing-key.pem:ro"
  -e "SESSION_SIGNING_KEY_FILE=/run/secrets/session-signing-key.pem"
  -v "$session_key_file:/run/secrets/session-signing-key.pem:ro"
  -e "AUTH_LISTEN_ADDR=127.0.0.1:$((base + 51))" -e "AUTH_METRICS_ADDR=127.0.0.1:$((base + 101))"
  -e "SESSION_LISTEN_ADDR=127.0.0.1:$((base + 52))" -e "SESSION_METRICS_ADDR=127.0.0.1:$((base + 102))"
  -e "SCHEDULING_LISTEN_ADDR=127.0.0.1:$((base + 53))" -e "SCHEDULING_METRICS_ADDR=127.0.0.1:$((base + 103))"
  -e "BOOKING_LISTEN_ADDR=127.0.0.1:$((base + 54))" -e "BOOKING_METRICS_ADDR=127.0.0.1:$((base + 104))"
  -e "GATEWAY_LISTEN_ADDR=127.0.0.1:$((base + 80))"
  -e "VAXBOOK_AUTH_URL=http://127.0.0.1:$((base + 51))"
  -e "VAXBOOK_SESSION_URL=http://127.0.0.1:$((base + 52))"
  -e "VAXBOOK_SCHEDULING_URL=http://127.0.0.1:$((base + 53))"
  -e "VAXBOOK_BOOKING_URL=http://127.0.0.1:$((base + 54))"
  -e "RUST_LOG=${RUST_LOG:-info}" -e "VAXBOOK_LOG_FORMAT=text")

down
podman run --rm --no-healthcheck --network host -e "DATABASE_URL=$database_url" "$image" /usr/local/bin/vaxbook migrate >&2
# The operator account, created once (its TOTP secret is printed only at creation).
totp_file="$run_dir/operator-totp-secret"
if [ ! -s "$totp_file" ]; then
  podman run --rm --no-healthcheck --network host -e "AUTH_DATABASE_URL=$auth_database_url" "$image" \
    /usr/local/bin/vaxbook accounts create --role operator --org vaxbook-ops --name "$operator" \
    --password "$operator_password" |
    awk 'next_line { print; exit } /^TOTP secret/ { next_line = 1 }' >"$totp_file.new"
  [ -s "$totp_file.new" ] || { echo "creating the operator account printed no TOTP secret" >&2; exit 1; }
  mv "$totp_file.new" "$totp_file"
  echo "created the operator account $operator" >&2
fi
port_of() {
  case "$1" in
    auth-svc) echo $((base + 51)) ;; session-svc) echo $((base + 52)) ;;
    scheduling-svc) echo $((base + 53)) ;; booking-svc) echo $((base + 54)) ;;
  esac
}
for svc in "${services[@]}"; do
  if [ "$svc" = gateway ]; then
    probe="http://127.0.0.1:$((base + 80))/readyz"
  else
    probe="grpc://127.0.0.1:$(port_of "$svc")"
  fi
  own=()
  case "$svc" in
    booking-svc | scheduling-svc) own=(-e "VAXBOOK_SERVICE_KEY=$service_key") ;;
    auth-svc) own=(-e "AUTH_DATABASE_URL=$auth_database_url") ;;
  esac
  podman run "${common[@]}" "${own[@]}" --name "$name-$svc" -e "VAXBOOK_HEALTHCHECK=$probe" \
    "$image" "/usr/local/bin/$svc" >/dev/null
  echo "started $name-$svc" >&2
done

gateway="http://127.0.0.1:$((base + 80))"
for _ in $(seq 1 120); do
  if podman exec "$name-gateway" /usr/local/bin/vaxbook healthcheck >/dev/null 2>&1; then
    code="$(podman run --rm --no-healthcheck "$image" /usr/local/bin/vaxbook accounts totp --secret "$(cat "$totp_file")")"
    token="$(podman run --rm --no-healthcheck --network host "$image" /usr/local/bin/vaxbook callcenter login \
      --auth-url "http://127.0.0.1:$((base + 51))" --username "$operator" --password "$operator_password" \
      --totp "$code" | tail -n 1)"
    [ -n "$token" ] || { echo "the operator could not log in" >&2; exit 1; }
    echo "GATEWAY_URL=$gateway"
    echo "AUTH_URL=http://127.0.0.1:$((base + 51))"
    echo "SCHEDULING_URL=http://127.0.0.1:$((base + 53))"
    echo "BOOKING_URL=http://127.0.0.1:$((base + 54))"
    echo "OPERATOR_TOKEN=$token"
    echo "REDIS_URL=$redis_url"
    echo "REDIS_KEY_PREFIX=$prefix"
    exit 0
  fi
  sleep 0.5
done
for svc in "${services[@]}"; do
  echo "---- $name-$svc" >&2
  podman logs --tail 20 "$name-$svc" >&2 || true
done
echo "the containerised gateway did not become ready" >&2
exit 1
