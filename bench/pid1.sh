#!/usr/bin/env bash
# Measures /init against tini (and dumb-init, catatonit where installed), each run the same way
# as PID 1 of fresh pid+mount namespaces chrooted into a busybox root with no services:
#   start: from just before `exec chroot ROOT INIT CMD` (the namespaces are made) until CMD
#          prints the clock: chroot's exec, INIT's start and CMD's exec;
#   stop:  SIGTERM to the init until it has exited (CMD `sleep 100`, which dies on TERM).
# Prints the median of N runs (default 10) of each, side by side; the row `none` (CMD as PID 1
# itself) is the cost of chroot and CMD's own exec, common to all. Needs root, busybox-static,
# and dist/ from ./release.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
tarball=$(ls -t dist/custos-*-amd64.tar.xz | head -n 1)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,proc,dev,run,tmp}
cp "$(command -v busybox)" "$root/bin/busybox"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
tar -C "$root" -xJf "$tarball"
# the peers are Debian's dynamically linked builds: give them their libc
mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64"
cp /lib/x86_64-linux-gnu/libc.so.6 "$root/lib/x86_64-linux-gnu/" 2>/dev/null || true
cp /lib64/ld-linux-x86-64.so.2 "$root/lib64/" 2>/dev/null || true
# busybox's date has no %N: CMD prints the clock with coreutils' date
cp /bin/date "$root/bin/gdate"
for peer in tini dumb-init catatonit; do
  p=$(command -v "$peer" || true)
  [ -n "$p" ] && cp "$p" "$root/bin/$peer"
done

ns() { # ns INIT ARGS...: run INIT as PID 1 of fresh namespaces in the root
  exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare --pid --fork --mount --kill-child --mount-proc="$root/proc" -- /bin/sh -c \
    'r=$1; shift; mount -t tmpfs tmpfs "$r/run" && exec chroot "$r" "$@"' sh "$root" "$@"
}
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1e6}'; }

start_ms() { # INIT... : ms from the exec of chroot+INIT (namespaces already made) to CMD start
  for _ in $(seq "$runs"); do
    t1=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare --pid --fork --mount --kill-child --mount-proc="$root/proc" -- /bin/sh -c \
      'r=$1; shift; mount -t tmpfs tmpfs "$r/run" && date +%s%N > "$r/tmp/t0" && exec chroot "$r" "$@"' sh "$root" "$@" /bin/gdate +%s%N)
    echo $((t1 - $(cat "$root/tmp/t0")))
  done | median
}
stop_ms() { # INIT... : ms from SIGTERM to exit
  for _ in $(seq "$runs"); do
    ns "$@" /bin/sleep 100 & u=$!
    c=
    for _ in $(seq 2000); do
      c=$(awk '{print $1}' /proc/$u/task/$u/children 2>/dev/null || true)
      if [ -n "$c" ]; then
        case $(cat /proc/$c/comm 2>/dev/null) in
          sh|chroot|"") ;;
          *) g=$(awk '{print $1}' /proc/$c/task/$c/children 2>/dev/null || true)
             [ -n "$g" ] && [ "$(cat /proc/$g/comm 2>/dev/null)" = sleep ] && break ;;
        esac
      fi
      sleep 0.002
    done
    t0=$(now); kill -TERM "$c"; wait "$u" || true; t1=$(now); echo $((t1 - t0))
  done | median
}

printf '%-12s %12s %12s\n' init "start (ms)" "stop (ms)"
declare -A start stop
for init in none custos tini dumb-init catatonit; do
  case $init in
    none) cmd=() ;;  # CMD itself as PID 1: the cost of chroot and of CMD, to subtract
    custos) cmd=(/init) ;;
    tini) [ -x "$root/bin/tini" ] || continue; cmd=(/bin/tini --) ;;
    dumb-init) [ -x "$root/bin/dumb-init" ] || continue; cmd=(/bin/dumb-init) ;;
    catatonit) [ -x "$root/bin/catatonit" ] || continue; cmd=(/bin/catatonit --) ;;
  esac
  start[$init]=$(start_ms "${cmd[@]}")
  if [ "$init" = none ]; then
    stop[$init]=-  # sleep as PID 1 has no handler: SIGTERM from outside cannot stop it
  else
    stop[$init]=$(stop_ms "${cmd[@]}")
  fi
  printf '%-12s %12s %12s\n' "$init" "${start[$init]}" "${stop[$init]}"
done
if [ -n "${start[tini]:-}" ]; then
  awk -v a="${start[custos]}" -v b="${start[tini]}" -v c="${stop[custos]}" -v d="${stop[tini]}" -v z="${start[none]}" \
    'BEGIN { printf "custos/tini: start %.2fx, stop %.2fx (below 1 is faster); start less chroot+CMD alone: custos %.2f ms, tini %.2f ms\n", a/b, c/d, a-z, b-z }'
fi
