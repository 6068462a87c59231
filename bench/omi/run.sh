#!/bin/bash
# Start OMI's omiserver (built by bench/omi/build.sh) in the foreground,
# HTTP on 127.0.0.1:PORT only, no HTTPS, Basic auth via PAM (user bench).
#   usage: bench/omi/run.sh OUTDIR PORT [extra omiserver options...]
# Stop it with Ctrl-C / SIGTERM (it takes omiengine and omiagent down too).
# Processes: omiserver (root; auth, agent launch) -> omiengine (user omi;
# HTTP/WS-Man) -> omiagent (runs as the authenticated user; hosts providers).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUTDIR PORT [omiserver options]" >&2; exit 2; }
OUT=$(cd "$1" && pwd); PORT=$2; shift 2
BIN=$OUT/install/bin
[ -x "$BIN/omiserver" ] || { echo "no $BIN/omiserver (run build.sh first)" >&2; exit 2; }
grep -q '^httpbindaddress=127.0.0.1' "$OUT/install/etc/omiserver.conf" \
    || { echo "omiserver.conf lacks httpbindaddress=127.0.0.1" >&2; exit 2; }
# a pid file left by a killed server makes omiserver refuse to start
PIDF=$OUT/install/var/run/omiserver.pid
if [ -f "$PIDF" ] && ! kill -0 "$(cat "$PIDF")" 2>/dev/null; then rm -f "$PIDF"; fi
exec "$BIN/omiserver" --httpport "$PORT" --httpsport 0 "$@"
