#!/usr/bin/env bash
# Stops the services deploy/local/start.sh started: SIGTERM (graceful drain), then SIGKILL after 20 s.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
run_dir="${VAXBOOK_RUN_DIR:-$root/deploy/local/run}"
for svc in gateway booking-svc scheduling-svc auth-svc session-svc; do
  pid_file="$run_dir/$svc.pid"
  [ -f "$pid_file" ] || continue
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$svc did not stop in 20 s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped $svc"
  fi
  rm -f "$pid_file"
done
