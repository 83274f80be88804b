#!/bin/sh
# Install the Debian packages fieldsync needs to build, test or run the demo.
# Prints the apt-get line it runs; when not root, prints the exact command
# to run and stops, so that `make demo` and `make test` never half-work.
set -eu

# Build: compiler, CMake, pkg-config and the libraries.  Tests: the stock
# sqlite3 shell (it must fail to read a store), python3 (checks JSON
# output), script(1) from bsdutils (gives import a terminal), curl (a
# second HTTP client against HQ), openssl (test certificates) and systemd
# (systemd-analyze scores the units), faketime (devices with clocks years
# off) and util-linux (unshare, mount: a small filesystem that fills
# up), and PostgreSQL 15's server (postgresql-15: HQ's PostgreSQL
# backend is tested against a real server the tests start and stop as an
# unprivileged user; the package's own cluster is not used), and
# clang-format-14 (make format-check), and libseccomp-dev (the network
# helper's system-call filter, agent/sandbox.h), and chromium,
# chromium-driver and python3-selenium (the field app is tested in
# headless Chromium) with fonts-dejavu-core (Latin and Cyrillic glyphs for
# its screenshots), and time (GNU time: the benchmarks' maximum RSS of a
# short command, scripts/bench_agent.sh).  Packages: dpkg-dev (dpkg-shlibdeps
# fills in the library dependencies of the .debs that `make package` builds).
PKGS="build-essential cmake pkg-config dpkg-dev \
libsqlite3-dev libsodium-dev libcjson-dev libcurl4-openssl-dev \
libinih-dev libcsv-dev libzstd-dev libjpeg62-turbo-dev libturbojpeg0-dev libexif-dev libmicrohttpd-dev libsystemd-dev libgnutls28-dev libpq-dev libseccomp-dev clang libclang-rt-14-dev clang-format-14 \
sqlite3 python3 bsdutils curl openssl systemd faketime util-linux iproute2 file time postgresql-15 \
chromium chromium-driver python3-selenium fonts-dejavu-core"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "fieldsync: missing Debian packages:$missing" >&2
	echo "fieldsync: run this as root, then try again:" >&2
	echo "  apt-get update && $cmd" >&2
	exit 1
fi
echo "+ apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
echo "+ $cmd"
DEBIAN_FRONTEND=noninteractive $cmd
