#!/usr/bin/env bash
# Memory of the supervision tree, custos against Debian's s6, each run the same way: as PID 1 of
# fresh pid+mount namespaces chrooted into one busybox root (tmpfs on /run, /dev bound in),
# with 1, 10 and 100 services whose `run` is `#!/bin/sh` + `exec sleep 100000`:
#   custos: /init (no CMD) + every supervise process;
#   s6:     s6-svscan on /run/service-s6 (a copy of the same service folders) + every
#           s6-supervise (Debian's dynamically linked build, with its libraries copied in).
# Once all N `sleep` processes are up and the sum has settled, the `Pss:` (and `Rss:`) lines of
# /proc/PID/smaps_rollup are summed from the host over the tree's processes, services excluded.
# Also: SIGTERM to PID 1 with 10 such services, until unshare has exited (median of RUNS runs).
# s6-svscan 2.11 with no .s6-svscan/SIGTERM treats SIGTERM as `s6-svscanctl -t` (strace: it
# sends TERM to every s6-supervise, which take their service down and exit, reaps them, tries
# .s6-svscan/finish, absent, and exits 0), so both get the same plain SIGTERM, no s6-svscanctl.
# Both runs get the same setup (the s6 scan dir is also copied, unused, for custos).
# Usage: bash bench/pss.sh [RUNS]   (RUNS default 10)
# Needs root, busybox-static, s6, and the tarball of ./release.sh in $CUSTOS_DIST_DIR (default
# dist).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
dist=${CUSTOS_DIST_DIR:-dist}
die() { echo "pss.sh: fatal: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
tarball=$(ls -t "$dist"/custos-*-amd64.tar.xz 2>/dev/null | head -n 1) || true
[ -n "$tarball" ] || die "no $dist/custos-*-amd64.tar.xz (run ./release.sh)"
[ -x /bin/busybox ] || die "no /bin/busybox (apt-get install busybox-static)"
for b in s6-svscan s6-supervise; do [ -x "/usr/bin/$b" ] || die "no /usr/bin/$b (apt-get install s6)"; done

root=$(mktemp -d)
logs=$(mktemp -d)
u=
cleanup() {
  if [ -n "$u" ]; then kill -KILL "$u" 2>/dev/null || true; wait "$u" 2>/dev/null || true; fi
  rm -rf "$root" "$logs"
}
trap cleanup EXIT
mkdir -p "$root"/{bin,etc,proc,dev,run,tmp,usr/bin}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
tar -C "$root" -xJf "$tarball"
# s6: the binaries at their paths (s6-svscan runs /usr/bin/s6-supervise) and what ldd names
for b in s6-svscan s6-supervise; do
  cp "/usr/bin/$b" "$root/usr/bin/$b"
  for lib in $(ldd "/usr/bin/$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    mkdir -p "$root$(dirname "$lib")"
    [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
  done
done

services() { # N: /etc/services.d holds exactly N sleeping services
  rm -rf "$root/etc/services.d"
  mkdir -p "$root/etc/services.d"
  for i in $(seq -w 1 "$1"); do
    mkdir "$root/etc/services.d/s$i"
    printf '#!/bin/sh\nexec sleep 100000\n' > "$root/etc/services.d/s$i/run"
    chmod 0755 "$root/etc/services.d/s$i/run"
  done
}

# start KIND: runs the tree in the background as PID 1 of fresh namespaces; sets u (unshare's pid)
start() {
  local cmd
  case $1 in
    custos) cmd=(/init) ;;
    s6) cmd=(/usr/bin/s6-svscan /run/service-s6) ;;
  esac
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare --pid --fork --mount --kill-child \
    --mount-proc="$root/proc" -- /bin/sh -c '
      set -e; r=$1; shift
      mount --rbind /dev "$r/dev"
      mount -t tmpfs tmpfs "$r/run"
      mkdir "$r/run/service-s6"
      cp -R "$r/etc/services.d/." "$r/run/service-s6/"
      exec chroot "$r" "$@"' sh "$root" "${cmd[@]}" \
    </dev/null >"$logs/$1.out" 2>&1 &
  u=$!
}

tree() { # PID: PID and its descendants, one a line
  local p=$1 c
  echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
}
comm() { cat /proc/"$1"/comm 2>/dev/null || true; }

# up KIND N: waits until PID 1 is KIND's and N sleeps run under it; prints PID 1's host pid
up() {
  local want=$1 n=$2 deadline=$((SECONDS + 30)) p1 name s c
  [ "$want" = custos ] && name=init || name=s6-svscan
  while :; do
    kill -0 "$u" 2>/dev/null || { cat "$logs/$want.out" >&2; die "$want exited early"; }
    p1=$(cat /proc/"$u"/task/"$u"/children 2>/dev/null || true); p1=${p1%% *}
    if [ -n "$p1" ] && [ "$(comm "$p1")" = "$name" ]; then
      s=0
      for c in $(tree "$p1"); do [ "$(comm "$c")" = sleep ] && s=$((s + 1)); done
      [ "$s" -ge "$n" ] && { echo "$p1"; return; }
    fi
    [ "$SECONDS" -lt "$deadline" ] || { cat "$logs/$want.out" >&2; die "$want: $n services not up in 30 s (pid 1 ${p1:-none}, ${s:-0} up)"; }
    sleep 0.01
  done
}

# measure PID1 SUPERVISOR: "PSS RSS PROCS" in kB over PID1 + its SUPERVISOR processes
measure() {
  local p1=$1 sup=$2 pss=0 rss=0 k=0 c v r
  for c in $(tree "$p1"); do
    if [ "$c" = "$p1" ] || [ "$(comm "$c")" = "$sup" ]; then
      read -r v r < <(awk '$1 == "Pss:" {p=$2} $1 == "Rss:" {r=$2} END {print p+0, r+0}' /proc/"$c"/smaps_rollup)
      pss=$((pss + v)); rss=$((rss + r)); k=$((k + 1))
    fi
  done
  echo "$pss $rss $k"
}

# stop PID1: SIGTERM to PID 1 (host pid), appends the ms until unshare has exited to $stops
stop() {
  local t0 t1
  t0=$EPOCHREALTIME
  kill -TERM "$1"
  wait "$u" || true
  t1=$EPOCHREALTIME
  u=
  stops+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }') "
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

declare -A res
for n in 1 10 100; do
  services "$n"
  for kind in custos s6; do
    [ "$kind" = custos ] && sup=supervise || sup=s6-supervise
    start "$kind"
    p1=$(up "$kind" "$n")
    # settle: the same sum three reads in a row (at most 5 s)
    prev= same=0 deadline=$((SECONDS + 5))
    while :; do
      m=$(measure "$p1" "$sup")
      if [ "$m" = "$prev" ]; then same=$((same + 1)); else same=0; fi
      prev=$m
      [ "$same" -ge 2 ] || [ "$SECONDS" -ge "$deadline" ] && break
      sleep 0.05
    done
    read -r pss rss k <<<"$m"
    [ "$k" = $((n + 1)) ] || die "$kind with $n services: $k processes measured, expected $((n + 1))"
    res[$kind,$n]="$pss $rss"
    kill -KILL "$u"; wait "$u" 2>/dev/null || true; u=
  done
done

services 10
for kind in custos s6; do
  stops=
  for _ in $(seq "$runs"); do
    start "$kind"
    p1=$(up "$kind" 10)
    stop "$p1"
  done
  echo "pss.sh: $kind stop times (ms): $stops" >&2
  tr ' ' '\n' <<<"$stops" | grep . | median > "$logs/$kind.stop"
done

echo "custos $(basename "$tarball") vs s6 $(dpkg-query -W -f='${Version}' s6 2>/dev/null || echo '?'); $(date -u '+%F %T UTC'); nproc $(nproc); kernel $(uname -r)"
printf '%-26s %12s %12s %10s %12s %12s\n' "pid 1 + supervisors" "custos PSS" "s6 PSS" "custos/s6" "custos RSS" "s6 RSS"
for n in 1 10 100; do
  read -r cp cr <<<"${res[custos,$n]}"
  read -r sp sr <<<"${res[s6,$n]}"
  printf '%-26s %9d kB %9d kB %10s %9d kB %9d kB\n' "$n service$([ "$n" = 1 ] || echo s)" "$cp" "$sp" \
    "$(awk -v a="$cp" -v b="$sp" 'BEGIN { printf "%.2fx", a / b }')" "$cr" "$sr"
done
cs=$(cat "$logs/custos.stop"); ss=$(cat "$logs/s6.stop")
printf '%-26s %9s ms %9s ms %10s\n' "SIGTERM to exit, 10 svcs" "$cs" "$ss" \
  "$(awk -v a="$cs" -v b="$ss" 'BEGIN { printf "%.2fx", a / b }')"
printf '(PSS, RSS: sum of smaps_rollup over pid 1 + every supervise, services excluded; stop: median of %d runs)\n' "$runs"
