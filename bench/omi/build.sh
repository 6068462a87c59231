#!/bin/bash
# Build Microsoft OMI (github.com/microsoft/omi, v1.9.1-0) plus the Bench_Item
# provider, install everything under OUTDIR/install and register the provider.
#
#   usage: bench/omi/build.sh OMI_SRC OUTDIR
#     OMI_SRC  OMI source tree (the repo top that holds Unix/, or Unix/ itself)
#     OUTDIR   output dir (made if missing; must not already hold a build)
#
# Needs root: apt-get install of build deps, users 'omi' (OMI's service
# account) and 'bench' (password bench-Pa55, for Basic auth via PAM),
# /etc/pam.d/omi.  Start the server afterwards with bench/omi/run.sh.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 OMI_SRC OUTDIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$1" && pwd)
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
if [ ! -d "$SRC/Unix" ] && [ -f "$SRC/configure" ] && [ -d "$SRC/wsman" ]; then
    SRC=$(dirname "$SRC")
fi
[ -f "$SRC/Unix/configure" ] || { echo "no OMI Unix/configure under $1" >&2; exit 2; }
[ ! -e "$OUT/src" ] || { echo "$OUT/src exists; use a clean OUTDIR" >&2; exit 2; }
PREFIX=$OUT/install
JOBS=${JOBS:-2}

echo "== build deps (apt)"
export DEBIAN_FRONTEND=noninteractive
PKGS="build-essential gawk pkg-config openssl libpam0g-dev libssl-dev libkrb5-dev passwd"
apt-get install -y -q $PKGS || { apt-get update -q && apt-get install -y -q $PKGS; }

echo "== copy source to $OUT/src"
mkdir -p "$OUT/src"
cp -a "$SRC/Unix" "$OUT/src/Unix"
# configure reads ../../omi.version (relative to Unix/) for the version number
cat > "$OUT/omi.version" <<'V'
OMI_BUILDVERSION_MAJOR=1
OMI_BUILDVERSION_MINOR=9
OMI_BUILDVERSION_PATCH=1
OMI_BUILDVERSION_BUILDNR=0
V

echo "== patch: httpbindaddress option (listen on 127.0.0.1 only)"
(cd "$OUT/src" && patch -p1 < "$HERE/omi-bind-address.patch")

echo "== configure + make -j$JOBS"
cd "$OUT/src/Unix"
./configure --prefix="$PREFIX" --httpport=5985 --httpsport=5986 > "$OUT/configure.log" 2>&1 \
    || { tail -30 "$OUT/configure.log"; exit 1; }
# OMI's installpam edits /etc/pam.conf with a RedHat 'system-auth' stack,
# which Debian ignores (it uses /etc/pam.d); we write /etc/pam.d/omi below.
printf '#!/bin/sh\nexit 0\n' > output/installpam
make -j"$JOBS" > "$OUT/make.log" 2>&1 || { tail -40 "$OUT/make.log"; exit 1; }
make install > "$OUT/install.log" 2>&1 || { tail -40 "$OUT/install.log"; exit 1; }

echo "== users and PAM"
id omi >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin omi
id bench >/dev/null 2>&1 || useradd -m -s /bin/bash bench
echo 'bench:bench-Pa55' | chpasswd
if [ ! -f /etc/pam.d/omi ]; then
    printf '#%%PAM-1.0\n# OMI (openmi bench): standard Debian auth stack\nauth     include  common-auth\naccount  include  common-account\n' > /etc/pam.d/omi
fi

echo "== server config"
CONF=$PREFIX/etc/omiserver.conf
sed -i 's/^service=.*/service=omi/' "$CONF"
cat >> "$CONF" <<'C'

# openmi bench: HTTP only, loopback only (httpbindaddress comes from
# bench/omi/omi-bind-address.patch); run.sh passes --httpport.
httpbindaddress=127.0.0.1
httpsport=0
C
# as OMI's own package does: omiengine runs as 'omi' and needs these
chown omi:omi "$PREFIX/var/log" "$PREFIX/var/run" "$PREFIX/etc/ssl/certs/omikey.pem" "$PREFIX/etc/sockets"
chmod 700 "$PREFIX/etc/sockets"

echo "== provider Bench_Item (omigen + our Bench_Item.c)"
P=$OUT/provider
mkdir -p "$P"
cp "$HERE/Bench_Item.mof" "$P/"
(cd "$P" && "$PREFIX/bin/omigen" -m BenchItem Bench_Item.mof Bench_Item)
cp "$HERE/Bench_Item.c" "$P/Bench_Item.c"
make -C "$P" CFLAGS="-O2 -g -fPIC -Wall -fvisibility=hidden -D_GNU_SOURCE"
"$PREFIX/bin/omireg" -n root/cimv2 "$P/libBenchItem.so"

echo "== done: $PREFIX"
echo "   start: $HERE/run.sh $OUT PORT"
