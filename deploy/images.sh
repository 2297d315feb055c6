#!/usr/bin/env bash
# Builds the vaxbook container image with podman from the release binaries and reports its size.
#   deploy/images.sh            build target/release binaries (cargo build --release --bins) and the image
#   VAXBOOK_SKIP_BUILD=1        use the release binaries already built
#   VAXBOOK_IMAGE=name:tag      image name (default localhost/vaxbook:latest)
# The image is FROM scratch: the six binaries, the shared libraries `ldd` lists for them, and a
# passwd entry for the unprivileged user 65532. podman reads deploy/podman/containers.conf
# (runc, host network, no default ulimits) unless CONTAINERS_CONF is set.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
image="${VAXBOOK_IMAGE:-localhost/vaxbook:latest}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/deploy/podman/containers.conf}"
binaries=(vaxbook gateway auth-svc session-svc scheduling-svc booking-svc)

command -v podman >/dev/null || { echo "podman is missing: apt-get install -y podman runc" >&2; exit 1; }
if [ "${VAXBOOK_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --bins
fi

context="$root/target/image"
rm -rf "$context"
mkdir -p "$context/rootfs/usr/local/bin" "$context/rootfs/etc" "$context/rootfs/tmp"
chmod 1777 "$context/rootfs/tmp"
for bin in "${binaries[@]}"; do
  [ -x "target/release/$bin" ] || { echo "target/release/$bin is missing" >&2; exit 1; }
  cp "target/release/$bin" "$context/rootfs/usr/local/bin/"
  strip "$context/rootfs/usr/local/bin/$bin" 2>/dev/null || true
done
# The libraries the binaries link, at the paths the loader looks for them.
for lib in $(for bin in "${binaries[@]}"; do ldd "target/release/$bin"; done |
  grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$context/rootfs$(dirname "$lib")"
  cp -L "$lib" "$context/rootfs$lib"
done
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$context/rootfs/etc/passwd"
printf 'nonroot:x:65532:\n' >"$context/rootfs/etc/group"
cp deploy/Containerfile "$context/Containerfile"

# Docker format: the OCI image format has no HEALTHCHECK.
podman build --quiet --format docker --tag "$image" --file "$context/Containerfile" "$context" >/dev/null
# The image must run as built: the probe answers and the binaries start.
podman run --rm --no-healthcheck "$image" /usr/local/bin/booking-svc --version
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "built $image: $((size / 1024 / 1024)) MiB ($size bytes)"
for bin in "${binaries[@]}"; do
  printf '  %-15s %6s KiB\n' "$bin" "$(( $(stat -c %s "$context/rootfs/usr/local/bin/$bin") / 1024 ))"
done
