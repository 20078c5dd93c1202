#!/usr/bin/env bash
# Install what the browser tests of the interactive report need: the system Chromium and its
# driver (tests/test_interactive_report.py drives it through selenium). Idempotent: apt runs only
# when `chromium` or `chromedriver` is missing. Needs root (CI containers run as root) or sudo.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "install-browser: $(chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium chromium-driver
chromium --version
