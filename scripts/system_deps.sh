#!/usr/bin/env bash
# Installs the Debian packages the platform and its tests use, only where missing:
# redis-server (hot cache, tests start their own on a free port), chromium and
# chromium-driver (browser tests of the Dash app); and fetches QuickFIX's example executor.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if ((${#need[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "installing system packages: ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
# QuickFIX's example executor (a FIX 4.4 venue the trading tests trade against), cached
# under ~/.cache/pyplatform/quickfix-executor; the test fixture runs the same script.
"$(dirname "$0")/fetch_quickfix_executor.sh" >/dev/null
