#!/usr/bin/env bash
# Install the Debian packages given as arguments that are not installed yet.
# As root: apt-get installs them. Otherwise: list them and stop, since tests would fail.
set -euo pipefail
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "note: not a Debian-like system; make sure these are installed: $*" >&2
    exit 0
fi
missing=()
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "error: these system packages are missing and installing them needs root:" >&2
    echo "    sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
