#!/usr/bin/env bash
# Every benchmark, side by side with the peers, in one run (needs root, busybox-static, s6,
# runit, tini, dumb-init, catatonit, and dist/ from ./release.sh). Results go in
# docs/performance.md by hand, with the date and the machine.
set -euo pipefail
cd "$(dirname "$0")"
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== /init against tini, dumb-init, catatonit (median of 10, ms)"
bash pid1.sh 10
echo "== svlog against s6-log and svlogd (1,000,000 lines of 100 bytes, T s1000000 n20)"
bash svlog.sh
if [ -f pss.sh ]; then
  echo "== memory (PSS) of init + supervise against s6-svscan + s6-supervise"
  bash pss.sh
fi
