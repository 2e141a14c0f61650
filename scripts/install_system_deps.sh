#!/usr/bin/env bash
# The system packages the tests need (Debian/Ubuntu): a headless Chromium (viewer tests) and PostgreSQL
# (evaluation server tests). Called by `make test` and `.ci/run`; one place to add a package.
#
# Installs what is missing when it can (root, or sudo without a password prompt); otherwise prints the
# one command to run and exits 1 at once. `--check` only reports. FIFA_CHROMIUM / FIFA_PG_BINDIR point the
# tests at binaries elsewhere (then nothing is installed for them); FIFA_SKIP_SYSTEM_DEPS=1 skips the check.
set -euo pipefail

[ "${FIFA_SKIP_SYSTEM_DEPS:-0}" = "1" ] && exit 0
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

have_chromium() {
  if [ -n "${FIFA_CHROMIUM:-}" ]; then [ -x "$FIFA_CHROMIUM" ]; return; fi
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1
}

have_postgresql() {
  if [ -n "${FIFA_PG_BINDIR:-}" ]; then [ -x "$FIFA_PG_BINDIR/initdb" ] && [ -x "$FIFA_PG_BINDIR/pg_ctl" ]; return; fi
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && return 0
  done
  return 1
}

missing=()
have_chromium || missing+=(chromium)
have_postgresql || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

pkgs="${missing[*]}"
if [ "$check_only" = "1" ]; then
  echo "missing system packages: $pkgs (install: sudo apt-get install -y $pkgs)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "the tests need: $pkgs (not a Debian/Ubuntu system: install them with your package manager," \
       "or set FIFA_CHROMIUM / FIFA_PG_BINDIR)" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "the tests need: $pkgs. Run this once, then make test again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y $pkgs" >&2
  exit 1
fi
echo "installing system packages for the tests: $pkgs" >&2
${SUDO[@]+"${SUDO[@]}"} apt-get update -q
DEBIAN_FRONTEND=noninteractive ${SUDO[@]+"${SUDO[@]}"} apt-get install -y -q $pkgs
