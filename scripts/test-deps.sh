#!/usr/bin/env bash
# Installs what the test suite needs beyond PyPI (Debian tools such as wsl, tmux, PostgreSQL) when missing.
set -eu
need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v wsl >/dev/null 2>&1 || need+=(wsl)
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
command -v uuidgen >/dev/null 2>&1 || need+=(uuid-runtime)
command -v curl >/dev/null 2>&1 || need+=(curl)
# the repository suite runs on a real PostgreSQL too (tests/pgcluster.py starts one from these binaries)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || \
      echo "test-deps: could not install ${need[*]}; the tests that need them will say so" >&2
  else
    echo "test-deps: ${need[*]} missing and not root; the tests that need them will say so" >&2
  fi
fi
