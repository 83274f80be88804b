# test_hq_files.sh - HQ's files at rest (issue 19, item 7): under umask
# 022, every file HQ makes is 0600; a data directory or database others
# can read is refused with the chmod that fixes it, before any key is
# written; `serve` is not dumpable (its /proc files belong to root, so no
# other process of its user can read its memory or environment); and
# hq.key can live in a systemd credential instead of the data directory.
set -e
. "$(dirname "$0")/lib.sh"
at_exit 'stop_hq; [ -z "${NPID:-}" ] || kill "$NPID" 2> /dev/null'
umask 022
hq_conf

# An existing directory others can read: refused, and nothing written.
mkdir -m 755 "$T/hq"
expect_exit 4 hq init
must_contain "$ERR" "data directory $T/hq: others can read it (mode 0755); run chmod 700 $T/hq"
[ -z "$(ls -A "$T/hq")" ] || fail "init wrote into a directory others can read: $(ls "$T/hq")"
chmod 700 "$T/hq"
expect_exit 0 hq init

# Files made by init, serve and a push: all 0600 (directories, such as
# the attached files', 0700).
start_hq
init_store
TOKEN=$(hq enroll-token --team "Tim Vranje" --municipality Vranje | tail -n 1)
expect_exit 0 fs enroll "http://127.0.0.1:$PORT" "$TOKEN"
add_person "Stanković Милош" Vranje > /dev/null
expect_exit 0 fs sync
for f in "$T"/hq/*; do
	mode=$(stat -c %a "$f")
	want=600
	[ ! -d "$f" ] || want=700
	[ "$mode" = "$want" ] || fail "$f is mode $mode, expected $want"
done

# Not dumpable: /proc/PID/environ then belongs to root, not HQ's user.
# As root, HQ runs as nobody for this, on a copy of its data.
if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv > /dev/null || fail "setpriv (util-linux) is needed"
	stop_hq
	U="$T/nobody"
	mkdir -m 700 "$U"
	cp -a "$T/hq" "$U/data"
	cp "$HQ_BIN" "$U/fieldsync-hq"
	printf '[store]\ndata_dir = %s/data\n[forms]\ndir = %s\n' "$U" "$FORMS" > "$U/hq.conf"
	chown -R nobody:nogroup "$U"
	chmod 755 "$T"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$U/fieldsync-hq" -c "$U/hq.conf" \
		serve --listen 127.0.0.1:0 2> "$T/nobody.log" &
	NPID=$!
	wait_for 30 "HQ as nobody did not start: $(cat "$T/nobody.log")" in_file "$T/nobody.log" "listening on"
	owner=$(stat -c %U "/proc/$NPID/environ")
	kill "$NPID"
	wait "$NPID" || fail "HQ as nobody did not exit 0"
	NPID=
	[ "$owner" = root ] || fail "HQ is dumpable: /proc/PID/environ belongs to $owner"
else
	owner=$(stat -c %U "/proc/$HQPID/environ")
	[ "$owner" = root ] || fail "HQ is dumpable: /proc/PID/environ belongs to $owner"
fi

# hq.key off the disk: as the systemd credential fieldsync-hq-key
# (LoadCredentialEncrypted=), HQ serves and signs with no hq.key in its
# data directory; without the credential, commands say where it goes.
stop_hq
mkdir -m 700 "$T/creds"
mv "$T/hq/hq.key" "$T/creds/fieldsync-hq-key"
chmod 400 "$T/creds/fieldsync-hq-key"
expect_exit 4 hq enroll-token --team "Tim Vranje" --municipality Vranje
must_contain "$ERR" "pass the key as the systemd credential fieldsync-hq-key"
export CREDENTIALS_DIRECTORY="$T/creds"
# init with the key already given as a credential would make a second key.
mkdir -m 700 "$T/other"
expect_exit 2 "$HQ_BIN" --data-dir "$T/other" --forms-dir "$FORMS" init
must_contain "$ERR" "already given as the credential"
[ ! -e "$T/other/hq.key" ] || fail "init wrote a key beside the credential"
start_hq "$PORT" # the device pinned this address
add_person "Đorđević Јелена" Vranje > /dev/null
expect_exit 0 fs sync
must_contain "$OUT" "1 change set"
expect_exit 0 hq audit verify
unset CREDENTIALS_DIRECTORY
[ ! -e "$T/hq/hq.key" ] || fail "hq.key came back"

# A database others can read: refused by every command.
chmod 644 "$T/hq/hq.db"
expect_exit 4 hq devices
must_contain "$ERR" "database $T/hq/hq.db: others can read it (mode 0644); run chmod 600"
echo "ok: HQ's files"
