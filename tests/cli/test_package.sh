# test_package.sh - the Debian packages.  Builds fieldsync and fieldsync-hq
# for the /usr prefix from the source tree into a scratch directory, runs
# `cpack -G DEB`, and checks both .debs: names, control fields (the
# library dependencies dpkg-shlibdeps found), files, conffiles, maintainer
# scripts, and that the binaries of an extracted package run and agree
# with the paths the package installs.  A deliberately broken package
# must fail the same checks.
#
# FS_TEST_DEB_INSTALL=1, as root, also installs both packages with
# apt-get, checks what sysusers.d and tmpfiles.d made, creates a store and
# HQ keys as the service users, and removes the packages again.  That
# changes the machine (it leaves the two system users), so it is off by
# default; without it this test changes nothing outside its directory.
set -e
. "$(dirname "$0")/lib.sh"

for tool in cmake cpack dpkg dpkg-deb dpkg-shlibdeps; do
	command -v "$tool" > /dev/null || fail "$tool is needed (make deps installs it)"
done

VERSION=$(sed -n 's/^project(fieldsync VERSION \([0-9][0-9.]*\).*/\1/p' "$FS_SOURCE_DIR/CMakeLists.txt")
ARCH=$(dpkg --print-architecture)
[ -n "$VERSION" ] || fail "no project version in CMakeLists.txt"
B="$T/build"

# ---- build the packages ----------------------------------------------------
# Only the two programs are built: the tests and benchmarks are not packaged.
run_logged() {
	local log=$1
	shift
	"$@" > "$log" 2>&1 || fail "'$*' failed: $(tail -n 25 "$log")"
}
# Through `make package`, the README's command, into the scratch directory.
command -v make > /dev/null || fail "make is needed"
run_logged "$T/package.log" make -C "$FS_SOURCE_DIR" --no-print-directory package PKG_BUILD="$B"

AGENT_DEB="$B/fieldsync_${VERSION}_${ARCH}.deb"
HQ_DEB="$B/fieldsync-hq_${VERSION}_${ARCH}.deb"
for deb in "$AGENT_DEB" "$HQ_DEB"; do
	[ -f "$deb" ] || fail "cpack made no $(basename "$deb"); it made: $(cd "$B" && ls ./*.deb 2>&1)"
done
[ "$(cd "$B" && ls ./*.deb | wc -l)" -eq 2 ] || fail "expected two .debs, got: $(cd "$B" && ls ./*.deb)"

# ---- checks on one package -------------------------------------------------

field() { dpkg-deb --field "$1" "$2"; }

# files DEB: the paths of its regular files and links, without the leading "."
files() { dpkg-deb --fsys-tarfile "$1" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$'; }

# has_file DEB PATH
has_file() { files "$1" | grep -qxF "$2" || fail "$(basename "$1") lacks $2"; }

# unit_dir DEB: where it put systemd units; exactly one of the two places.
unit_dir() {
	local dirs
	dirs=$(files "$1" | sed -En 's#^(/lib/systemd/system|/usr/lib/systemd/system)/[^/]+\.service$#\1#p' |
		sort -u)
	[ "$(printf '%s\n' "$dirs" | grep -c .)" -eq 1 ] ||
		fail "$(basename "$1"): units not in exactly one of /lib/systemd/system, /usr/lib/systemd/system: ${dirs:-none}"
	printf '%s\n' "$dirs"
}

# check_deb DEB PACKAGE BINARY UNIT CONFFILE DEPENDS-PATTERN...: fields,
# files, control archive and maintainer scripts of one package.
check_deb() {
	local deb=$1 pkg=$2 bin=$3 unit=$4 conf=$5 name dir ctl f depends udir
	shift 5
	name=$(basename "$deb")
	[ "$(field "$deb" Package)" = "$pkg" ] || fail "$name: Package is $(field "$deb" Package)"
	[ "$(field "$deb" Version)" = "$VERSION" ] || fail "$name: Version is $(field "$deb" Version)"
	[ "$(field "$deb" Architecture)" = "$ARCH" ] ||
		fail "$name: Architecture is $(field "$deb" Architecture)"
	[ "$(field "$deb" Maintainer)" = "fieldsync developers <dev@fieldsync.invalid>" ] ||
		fail "$name: Maintainer is $(field "$deb" Maintainer)"
	[ "$(field "$deb" Description | grep -c .)" -ge 3 ] ||
		fail "$name: no long description: $(field "$deb" Description)"
	depends=$(field "$deb" Depends)
	for pat in "$@"; do
		printf '%s\n' "$depends" | tr ',' '\n' | grep -Eq "^ *($pat)( |$)" ||
			fail "$name: Depends lacks $pat: $depends"
	done

	has_file "$deb" "/usr/bin/$bin"
	udir=$(unit_dir "$deb") || exit 1
	has_file "$deb" "$udir/$unit"
	has_file "$deb" "/usr/lib/sysusers.d/$pkg.conf"
	has_file "$deb" "/usr/lib/tmpfiles.d/$pkg.conf"
	has_file "$deb" "$conf"
	has_file "$deb" "/usr/share/doc/fieldsync/examples/$(basename "$conf")"
	files "$deb" | grep -q '^/usr/local/' && fail "$name: ships files under /usr/local"

	ctl="$T/ctl-$pkg"
	rm -rf "$ctl"
	dpkg-deb --control "$deb" "$ctl"
	grep -qxF "$conf" "$ctl/conffiles" 2> /dev/null ||
		fail "$name: $conf is not in DEBIAN/conffiles: $(cat "$ctl/conffiles" 2>&1)"
	while read -r f; do
		has_file "$deb" "$f"
	done < "$ctl/conffiles"
	for f in postinst prerm postrm; do
		[ -x "$ctl/$f" ] || fail "$name: no executable maintainer script $f"
		sh -n "$ctl/$f" || fail "$name: $f is not valid sh"
	done
	# The scripts name the files and the unit this package ships.
	grep -q "systemd-sysusers $pkg\.conf" "$ctl/postinst" ||
		fail "$name: postinst does not run systemd-sysusers $pkg.conf"
	grep -q "systemd-tmpfiles --create $pkg\.conf" "$ctl/postinst" ||
		fail "$name: postinst does not run systemd-tmpfiles --create $pkg.conf"
	grep -q "daemon-reload" "$ctl/postinst" || fail "$name: postinst does not reload systemd"
	grep -qE "deb-systemd-invoke stop '?$unit" "$ctl/prerm" ||
		fail "$name: prerm does not stop $unit"
	grep -q "daemon-reload" "$ctl/postrm" || fail "$name: postrm does not reload systemd"
}

# check_unit ROOT UNIT-PATH BINARY CONFFILE SYSUSERS: the unit, as
# installed under ROOT, starts the installed binary with the conffile, as
# a user the package's sysusers.d file creates.
check_unit() {
	local root=$1 unit=$2 bin=$3 conf=$4 sysusers=$5 exec user
	[ -f "$root$unit" ] || fail "no $unit in the extracted package"
	exec=$(sed -n 's/^ExecStart=//p' "$root$unit")
	[ "$(printf '%s\n' "$exec" | grep -c .)" -eq 1 ] || fail "$unit: not one ExecStart=: $exec"
	set -- $exec
	[ "$1" = "$bin" ] || fail "$unit: ExecStart runs $1, the package installs $bin"
	[ -x "$root$1" ] || fail "$unit: ExecStart's $1 is not an executable in the package"
	[ "$2" = -c ] && [ "$3" = "$conf" ] || fail "$unit: ExecStart does not read $conf: $exec"
	[ -f "$root$3" ] || fail "$unit: ExecStart's $3 is not in the package"
	user=$(sed -n 's/^User=//p' "$root$unit")
	grep -Eq "^u +$user( |$)" "$root$sysusers" ||
		fail "$unit: User=$user is not created by $sysusers"
}

check_deb "$AGENT_DEB" fieldsync fieldsync fieldsync-agent.service /etc/fieldsync/agent.conf \
	'libc6' 'libsodium[0-9]+' 'libsqlite3-[0-9]+' 'libcurl[0-9]+' 'libsystemd0' 'libzstd1' \
	'libseccomp2' 'systemd'
check_deb "$HQ_DEB" fieldsync-hq fieldsync-hq fieldsync-hq.service /etc/fieldsync/hq.conf \
	'libc6' 'libsodium[0-9]+' 'libsqlite3-[0-9]+' 'libmicrohttpd[0-9]+' 'libgnutls[0-9]+' \
	"fieldsync \\(= $VERSION\\)" 'systemd'

# The documentation, and every form as an example to start from (the
# programs have them built in), are in fieldsync.
for form in "$FS_SOURCE_DIR"/conf/forms/*.json; do
	has_file "$AGENT_DEB" "/usr/share/fieldsync/forms/$(basename "$form")"
done
for doc in README.md PROTOCOL.md SECURITY.md DEPLOY.md; do
	has_file "$AGENT_DEB" "/usr/share/doc/fieldsync/$doc"
done
# dpkg refuses two packages that own one file: the two must not overlap.
files "$AGENT_DEB" | sort > "$T/agent.files"
files "$HQ_DEB" | sort > "$T/hq.files"
common=$(comm -12 "$T/agent.files" "$T/hq.files")
[ -z "$common" ] || fail "both packages ship: $common"

# ---- the extracted packages ------------------------------------------------
R="$T/root"
dpkg-deb -x "$AGENT_DEB" "$R"
dpkg-deb -x "$HQ_DEB" "$R"
UNITDIR=$(unit_dir "$AGENT_DEB")

# Built with Debian's hardening flags: full RELRO (relro and now), the
# stack protector and _FORTIFY_SOURCE's checked functions.
NET="$R/usr/libexec/fieldsync/fieldsync-net"
for bin in "$R/usr/bin/fieldsync" "$R/usr/bin/fieldsync-hq" "$NET"; do
	readelf -lW "$bin" | grep -q GNU_RELRO || fail "$(basename "$bin") has no RELRO segment"
	readelf -dW "$bin" | grep -Eq 'BIND_NOW|FLAGS.*NOW' || fail "$(basename "$bin") is not linked with -z now"
	readelf -sW --dyn-syms "$bin" | grep -q '__stack_chk_fail' ||
		fail "$(basename "$bin") is not built with -fstack-protector-strong"
	readelf -sW --dyn-syms "$bin" | grep -Eq '__[a-z_]+_chk@' ||
		fail "$(basename "$bin") calls no _FORTIFY_SOURCE checked function"
done
expect_exit 0 "$R/usr/bin/fieldsync" --version
[ "$OUT" = "fieldsync $VERSION" ] || fail "fieldsync --version: $OUT"
expect_exit 0 "$R/usr/bin/fieldsync-hq" --version
[ "$OUT" = "fieldsync-hq $VERSION" ] || fail "fieldsync-hq --version: $OUT"
# The network helper is where the agent looks for it when installed.
expect_exit 0 "$NET" --help
must_contain "$OUT" "network helper"
grep -aq "/usr/libexec/fieldsync" "$R/usr/bin/fieldsync" ||
	fail "fieldsync does not look for its helper in /usr/libexec/fieldsync"
# The field app's pages are where the agent looks for them when installed.
for f in index.html app.js app.css strings.js; do
	[ -f "$R/usr/share/fieldsync/web/$f" ] || fail "the package lacks the field app's $f"
done
grep -aq "/usr/share/fieldsync/web" "$R/usr/bin/fieldsync" ||
	fail "fieldsync does not look for its pages in /usr/share/fieldsync/web"
expect_exit 0 "$R/usr/bin/fieldsync" agent --help
must_contain "$OUT" "Usage: fieldsync agent"
must_contain "$OUT" "/run/fieldsync/agent.sock"

# The paths compiled in are the paths the packages install.
expect_exit 0 "$R/usr/bin/fieldsync" --help
must_contain "$OUT" "default /etc/fieldsync/agent.conf"
must_contain "$OUT" "forms built into fieldsync"
expect_exit 0 "$R/usr/bin/fieldsync-hq" --help
must_contain "$OUT" "default /etc/fieldsync/hq.conf"
must_contain "$OUT" "forms built into fieldsync-hq"
# Neither configuration points away from the built-in forms.
! grep -q '^dir *=' "$R/etc/fieldsync/hq.conf" || fail "hq.conf sets a forms dir"
! grep -q '^dir *=' "$R/etc/fieldsync/agent.conf" || fail "agent.conf sets a forms dir"

# The packaged units start the packaged binaries with the packaged
# configuration, as the users the packaged sysusers.d files create.
check_unit "$R" "$UNITDIR/fieldsync-agent.service" /usr/bin/fieldsync /etc/fieldsync/agent.conf \
	/usr/lib/sysusers.d/fieldsync.conf
check_unit "$R" "$UNITDIR/fieldsync-hq.service" /usr/bin/fieldsync-hq /etc/fieldsync/hq.conf \
	/usr/lib/sysusers.d/fieldsync-hq.conf
# For the /usr prefix they are the units of the source tree unchanged.
cmp -s "$R$UNITDIR/fieldsync-agent.service" "$FS_SOURCE_DIR/systemd/fieldsync-agent.service" ||
	fail "the packaged fieldsync-agent.service differs from systemd/"
cmp -s "$R$UNITDIR/fieldsync-hq.service" "$FS_SOURCE_DIR/systemd/fieldsync-hq.service" ||
	fail "the packaged fieldsync-hq.service differs from systemd/"
# The tmpfiles.d entries name only users the packages create.
for f in "$R"/usr/lib/tmpfiles.d/*.conf; do
	for u in $(awk '!/^#/ && NF >= 5 && $4 != "-" { print $4; print $5 }' "$f" | sort -u); do
		[ "$u" = root ] || grep -Eq "^u +$u( |$)" "$R"/usr/lib/sysusers.d/*.conf ||
			fail "$(basename "$f") names $u, which no sysusers.d file creates"
	done
done

# The packaged binary makes a store and takes a record with its built-in
# forms, and with the packaged example forms as a directory.
PKGDATA="$T/pkgdata"
expect_exit 0 "$R/usr/bin/fieldsync" --data-dir "$PKGDATA" \
	--passphrase-file "$PASS" init --kdf interactive
expect_exit 0 "$R/usr/bin/fieldsync" --data-dir "$PKGDATA" \
	--passphrase-file "$PASS" beneficiary add "full_name=Test Package" municipality=Tutin \
	status=idp household_size=2 consent=yes
expect_exit 0 "$R/usr/bin/fieldsync" --data-dir "$PKGDATA" \
	--forms-dir "$R/usr/share/fieldsync/forms" \
	--passphrase-file "$PASS" beneficiary add "full_name=Test Package 2" municipality=Tutin \
	status=idp household_size=2 consent=yes

# ---- the checks can fail ---------------------------------------------------
# A fieldsync package whose unit starts a binary it does not install, and
# one without its conffile, must both be refused.
BAD="$T/bad"
dpkg-deb -R "$AGENT_DEB" "$BAD"
sed -i 's|^ExecStart=/usr/bin/fieldsync |ExecStart=/usr/sbin/fieldsync |' \
	"$BAD$UNITDIR/fieldsync-agent.service"
dpkg-deb --root-owner-group -b "$BAD" "$T/bad-unit.deb" > /dev/null
rm -rf "$T/badroot"
dpkg-deb -x "$T/bad-unit.deb" "$T/badroot"
if out=$( (check_unit "$T/badroot" "$UNITDIR/fieldsync-agent.service" /usr/bin/fieldsync \
	/etc/fieldsync/agent.conf /usr/lib/sysusers.d/fieldsync.conf) 2>&1); then
	fail "a unit starting /usr/sbin/fieldsync passed the unit check"
fi
must_contain "$out" "ExecStart runs /usr/sbin/fieldsync"
sed -i 's|^ExecStart=/usr/sbin/fieldsync |ExecStart=/usr/bin/fieldsync |' \
	"$BAD$UNITDIR/fieldsync-agent.service"
: > "$BAD/DEBIAN/conffiles"
dpkg-deb --root-owner-group -b "$BAD" "$T/bad-conf.deb" > /dev/null
if out=$( (check_deb "$T/bad-conf.deb" fieldsync fieldsync fieldsync-agent.service \
	/etc/fieldsync/agent.conf 'libc6') 2>&1); then
	fail "a package without its conffile passed the package check"
fi
must_contain "$out" "is not in DEBIAN/conffiles"

echo "package: $(basename "$AGENT_DEB") and $(basename "$HQ_DEB") ok"

# ---- optional: install them for real ----------------------------------------
[ "${FS_TEST_DEB_INSTALL:-0}" = 1 ] || exit 0
[ "$(id -u)" -eq 0 ] || fail "FS_TEST_DEB_INSTALL=1 needs root"
command -v apt-get > /dev/null || fail "FS_TEST_DEB_INSTALL=1 needs apt-get"
# Never touch an existing installation or its data.
for p in fieldsync fieldsync-hq; do
	if dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "installed"; then
		fail "package $p is already installed; not touching it"
	fi
done
for d in /etc/fieldsync /var/lib/fieldsync /var/lib/fieldsync-hq; do
	[ ! -e "$d" ] || fail "$d exists already; not touching it"
done

# tmpfiles.d creates /etc/credstore.encrypted, which is systemd's, not
# the package's: remove it afterwards only if it is new and still empty.
CREDSTORE_NEW=
[ -e /etc/credstore.encrypted ] || CREDSTORE_NEW=1
INSTALLED=
uninstall() {
	[ -n "$INSTALLED" ] || return 0
	INSTALLED=
	DEBIAN_FRONTEND=noninteractive apt-get purge -y fieldsync-hq fieldsync > "$T/purge.log" 2>&1 ||
		echo "warning: apt-get purge failed: $(tail -5 "$T/purge.log")" >&2
	rm -rf /var/lib/fieldsync /var/lib/fieldsync-hq /etc/fieldsync
	[ -z "$CREDSTORE_NEW" ] || rmdir /etc/credstore.encrypted 2> /dev/null || true
}
at_exit 'uninstall'

# apt reads the files as _apt, which cannot enter $T (mode 0700).
chmod 755 "$T" "$B"
INSTALLED=1
# apt_get ARGS...: run apt-get, show its output, fail if it fails.
apt_get() {
	local rc=0
	echo "+ apt-get $*"
	DEBIAN_FRONTEND=noninteractive apt-get "$@" > "$T/apt.log" 2>&1 || rc=$?
	cat "$T/apt.log"
	[ "$rc" -eq 0 ] || fail "apt-get $1 exited $rc"
}
apt_get install -y "$AGENT_DEB" "$HQ_DEB"
for p in fieldsync fieldsync-hq; do
	dpkg-query -W -f='${Status}\n' "$p" | grep -qx "install ok installed" ||
		fail "$p is not installed: $(dpkg-query -W -f='${Status}' "$p" 2>&1)"
done

expect_exit 0 fieldsync --version
echo "fieldsync --version: $OUT"
[ "$OUT" = "fieldsync $VERSION" ] || fail "installed fieldsync --version: $OUT"
[ "$(command -v fieldsync)" = /usr/bin/fieldsync ] || fail "fieldsync is $(command -v fieldsync)"
expect_exit 0 fieldsync-hq --version
[ "$OUT" = "fieldsync-hq $VERSION" ] || fail "installed fieldsync-hq --version: $OUT"

# sysusers.d made the users, tmpfiles.d their directories.
for u in fieldsync fieldsync-hq; do
	ent=$(getent passwd "$u") || fail "no user $u: systemd-sysusers did not run"
	echo "getent passwd $u: $ent"
	[ "$(echo "$ent" | cut -d: -f6)" = "/var/lib/$u" ] || fail "$u's home is not /var/lib/$u: $ent"
done
mode_owner() { stat -c '%a %U:%G' "$1"; }
for want in "/var/lib/fieldsync 700 fieldsync:fieldsync" "/var/lib/fieldsync-hq 700 fieldsync-hq:fieldsync-hq" \
	"/etc/fieldsync 750 root:fieldsync" "/etc/credstore.encrypted 700 root:root"; do
	set -- $want
	[ -d "$1" ] || fail "$1 was not created (systemd-tmpfiles)"
	got=$(mode_owner "$1")
	echo "$1: $got"
	[ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
done
# hq.conf is readable by the HQ user through /etc/fieldsync's ACL, but
# the HQ user is not in the agent's group and cannot list the directory.
runuser -u fieldsync-hq -- cat /etc/fieldsync/hq.conf > /dev/null ||
	fail "fieldsync-hq cannot read /etc/fieldsync/hq.conf"
if runuser -u fieldsync-hq -- ls /etc/fieldsync > /dev/null 2>&1; then
	fail "fieldsync-hq can list /etc/fieldsync"
fi
id -nG fieldsync-hq | tr ' ' '\n' | grep -qx fieldsync && fail "fieldsync-hq is in group fieldsync"
# The conffiles are registered with dpkg.
dpkg-query -W -f='${Conffiles}\n' fieldsync | grep -q "/etc/fieldsync/agent.conf" ||
	fail "dpkg has no conffile /etc/fieldsync/agent.conf"

# docs/DEPLOY.md's first steps, as the service users, without systemd.
expect_exit 0 env -u FIELDSYNC_CONFIG runuser -u fieldsync -- fieldsync keygen /var/lib/fieldsync/store.keyfile
expect_exit 0 env -u FIELDSYNC_CONFIG runuser -u fieldsync -- fieldsync --key-file /var/lib/fieldsync/store.keyfile init
expect_exit 0 env -u FIELDSYNC_CONFIG runuser -u fieldsync -- fieldsync --key-file /var/lib/fieldsync/store.keyfile status
echo "store as fieldsync: ok"
expect_exit 0 runuser -u fieldsync-hq -- fieldsync-hq init
expect_exit 0 runuser -u fieldsync-hq -- fieldsync-hq devices
echo "HQ as fieldsync-hq: ok"

apt_get remove -y fieldsync fieldsync-hq
[ ! -e /usr/bin/fieldsync ] && [ ! -e /usr/bin/fieldsync-hq ] || fail "binaries left after remove"
[ -f /etc/fieldsync/agent.conf ] || fail "remove (not purge) deleted the conffile agent.conf"
[ -f /var/lib/fieldsync/store.db ] || fail "remove deleted the store"
uninstall
echo "package install: ok"
