#!/usr/bin/env bash
# Makes headless Chromium available for the report's browser test
# (report/browser_test.go): installs Debian's chromium package when no
# Chromium is on PATH. Needs root or sudo to install (CI runs as root);
# safe to run more than once. Pair with SPATE_REQUIRE_BROWSER=1 so the
# test fails instead of skipping when the browser is still missing.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

for name in chromium chromium-browser google-chrome google-chrome-stable headless_shell; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "browser: $(command -v "$name") ($("$name" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
  fi
done

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "browser.sh: chromium is missing and installing it needs root or sudo" >&2
  exit 1
fi
echo "browser.sh: installing chromium" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "browser: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
