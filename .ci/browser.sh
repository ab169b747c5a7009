#!/usr/bin/env bash
# Makes headless Chromium available for the report's browser test
# (report/browser_test.go): installs Debian's chromium package when no
# Chromium is on PATH. Run as root (CI is). Pair with
# SPATE_REQUIRE_BROWSER=1 so the test fails instead of skipping when the
# browser is still missing.
set -euo pipefail

for name in chromium chromium-browser google-chrome google-chrome-stable headless_shell; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "browser: $(command -v "$name") ($("$name" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
  fi
done

if [ "$(id -u)" -ne 0 ]; then
  echo "browser.sh: chromium is missing and installing it needs root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "browser: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
