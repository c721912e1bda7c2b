#!/usr/bin/env bash
# The demo: a busybox image with the custos tarball, two services (web, and a worker that
# depends on it), a cont-init script, and CMD `svctl status`-then-wait. Uses Docker when an
# engine answers, else runs the same rootfs with /init as PID 1 of fresh namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=$(ls -t dist/custos-*-amd64.tar.xz dist/custos-*-arm64.tar.xz 2>/dev/null | head -n 1 || true)
[ -n "$tarball" ] || { echo "demo: fatal: no tarball in dist/: run ./release.sh first" >&2; exit 100; }
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "demo: fatal: busybox is missing (apt-get install busybox-static)" >&2; exit 100; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,proc,dev,run,tmp,var/log,root}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
cp -R demo/rootfs/. "$root/"
show='svctl status; echo; echo "CMD: the web service says: $(wget -q -O - http://127.0.0.1:8080/)"; sleep 3; svctl check && echo "CMD: healthy; exiting 0"'

if docker info >/dev/null 2>&1; then
  tar -C "$root" -c . | docker import - custos-demo-base >/dev/null
  ctx=$(mktemp -d)
  cp "$tarball" "$ctx/"
  printf 'FROM custos-demo-base\nADD %s /\nENV GREETING=docker\nENTRYPOINT ["/init"]\n' "$(basename "$tarball")" > "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t custos-demo "$ctx" >/dev/null 2>"$ctx.log" || { cat "$ctx.log" >&2; echo "demo: fatal: docker build failed" >&2; exit 111; }
  rm -f "$ctx.log"
  rm -rf "$ctx"
  echo "demo: docker run --rm --tmpfs /run custos-demo sh -c '...'"
  docker run --rm --tmpfs /run -e CUSTOS_VERBOSITY=2 custos-demo sh -c "$show"
else
  echo "demo: no Docker engine answers: running the same rootfs in fresh namespaces instead"
  tar -C "$root" -xJf "$tarball"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin GREETING=namespaces CUSTOS_VERBOSITY=2 \
    unshare --pid --fork --mount --kill-child --mount-proc="$root/proc" -- /bin/sh -c \
    'mount --rbind /dev "$1/dev" && mount -t tmpfs -o noexec tmpfs "$1/run" && r=$1 && shift && exec chroot "$r" /init "$@"' \
    sh "$root" sh -c "$show"
fi
