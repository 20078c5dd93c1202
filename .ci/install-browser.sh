#!/usr/bin/env bash
# Install the system packages the tests need: the system Chromium and its driver (the interactive report's
# browser tests drive it through selenium) and zsh (the zsh completion test). Idempotent: apt runs only
# when one of them is missing. Needs root (CI containers run as root) or sudo.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && command -v zsh >/dev/null 2>&1; then
    echo "install-browser: $(chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium chromium-driver zsh
chromium --version
