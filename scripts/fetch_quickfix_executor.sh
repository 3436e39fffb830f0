#!/usr/bin/env bash
# Fetches QuickFIX C++'s own example FIX venue -- the "executor" built and shipped in
# Debian's libquickfix-doc, with the libquickfix.so it links against from libquickfix17 --
# into a cache folder, and prints that folder. The trading tests run it on loopback as the
# counterparty nobody here wrote (tests/trading/test_trading_executor.py).
#
#   scripts/fetch_quickfix_executor.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $PYPLATFORM_QUICKFIX_EXECUTOR_DIR, else ~/.cache/pyplatform/quickfix-executor.
# It holds: executor (the binary), lib/libquickfix.so.17 (run with LD_LIBRARY_PATH=CACHE_DIR/lib),
# and VERSION (the package versions). A filled cache is reused without touching the network.
# Needs apt-get and dpkg (Debian/Ubuntu); no root unless the package lists need updating.
set -euo pipefail
dir="${1:-${PYPLATFORM_QUICKFIX_EXECUTOR_DIR:-$HOME/.cache/pyplatform/quickfix-executor}}"
if [ -x "$dir/executor" ] && [ -e "$dir/lib/libquickfix.so.17" ]; then
  echo "$dir"
  exit 0
fi
for tool in apt-get dpkg zcat; do
  command -v "$tool" >/dev/null || { echo "fetch_quickfix_executor: $tool not found (needs a Debian-based system)" >&2; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download libquickfix-doc libquickfix17 >download.log 2>&1; then
  # fresh CI images ship without package lists
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q >/dev/null
  apt-get download libquickfix-doc libquickfix17 >download.log 2>&1 || { cat download.log >&2; exit 1; }
fi
for deb in ./*.deb; do dpkg -x "$deb" root; done
bin="root/usr/share/doc/libquickfix-doc/examples/executor/C++/.libs/executor.gz"
lib="$(find root/usr/lib -name 'libquickfix.so.17*' -type f | head -n 1)"
[ -f "$bin" ] || { echo "fetch_quickfix_executor: $bin not in libquickfix-doc" >&2; exit 1; }
[ -n "$lib" ] || { echo "fetch_quickfix_executor: libquickfix.so.17 not in libquickfix17" >&2; exit 1; }
mkdir -p "$dir/lib"
zcat "$bin" >"$dir/executor.tmp"
chmod +x "$dir/executor.tmp"
cp "$lib" "$dir/lib/libquickfix.so.17"
dpkg-deb -f ./libquickfix-doc_*.deb Package Version >"$dir/VERSION"
dpkg-deb -f ./libquickfix17_*.deb Package Version >>"$dir/VERSION"
mv "$dir/executor.tmp" "$dir/executor"  # last: a cache with the binary is a complete cache
echo "$dir"
