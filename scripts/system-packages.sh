#!/usr/bin/env bash
# Install the Debian packages named as arguments when they are missing, e.g.
#   scripts/system-packages.sh chromium wrk libpostgresql-jdbc-java
# Needs root (or sudo). Without either it says what is missing and exits 0: the tests that need
# a package then skip with the reason (or fail under CI=true).
set -uo pipefail
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    echo "coursemart: not a Debian system: install $* yourself (tests that need them skip)" >&2
    exit 0
fi
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    run=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    run=(sudo)
else
    echo "coursemart: missing Debian packages: ${missing[*]} (install them as root)" >&2
    exit 0
fi
echo "coursemart: installing Debian packages: ${missing[*]}"
if ! { "${run[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null; }; then
    echo "coursemart: could not install ${missing[*]}: the tests that need them skip" \
        "(and fail under CI=true)" >&2
fi
exit 0
