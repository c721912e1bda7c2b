#!/usr/bin/env bash
# Builds the release tarball of SPEC section 1: static (musl) binaries at their image paths,
# the data files of rootfs-overlay/, everything owned 0:0, binaries and folders 0755.
# Writes dist/custos-<version>-<arch>.tar.xz and its .sha256, and prints the sizes.
set -euo pipefail
cd "$(dirname "$0")"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
machine=$(uname -m)
case "$machine" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "release.sh: fatal: unsupported machine $machine (expected x86_64 or aarch64)" >&2; exit 100 ;;
esac
target="$machine-unknown-linux-musl"

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "release.sh: fatal: the Rust target $target is missing (run: rustup target add $target)" >&2
  exit 111
fi

cargo build --quiet --release --target "$target" \
  -p custos-init -p custos-supervise -p custos-svctl -p custos-setuidgid \
  -p custos-fix-attrs -p custos-with-contenv -p custos-svlog

bin="${CARGO_TARGET_DIR:-target}/$target/release"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

cp -R rootfs-overlay/. "$stage/"
find "$stage" -name .keep -type f -delete
mkdir -p "$stage/usr/bin" "$stage/usr/libexec/custos"
install -m 0755 "$bin/init" "$stage/init"
install -m 0755 "$bin/supervise" "$stage/usr/libexec/custos/supervise"
for b in svctl setuidgid fix-attrs with-contenv svlog; do
  install -m 0755 "$bin/$b" "$stage/usr/bin/$b"
done
find "$stage" -type d -exec chmod 0755 {} +

dist="${CUSTOS_DIST_DIR:-dist}"
mkdir -p "$dist"
tarball="$dist/custos-$version-$arch.tar.xz"
# top-level entries only (no "./"), so extracting onto / never touches /'s own mode
entries=$(cd "$stage" && ls -A)
# shellcheck disable=SC2086
tar --owner=0 --group=0 --numeric-owner --sort=name --mtime='@0' \
  -C "$stage" -cJf "$tarball" $entries
(cd "$dist" && sha256sum "$(basename "$tarball")" > "$(basename "$tarball").sha256")

echo "release.sh: $tarball: $(stat -c %s "$tarball") bytes"
for b in init supervise svctl setuidgid fix-attrs with-contenv svlog; do
  printf 'release.sh:   %-14s %8d bytes\n' "$b" "$(stat -c %s "$bin/$b")"
done
