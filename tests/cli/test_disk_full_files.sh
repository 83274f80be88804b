# test_disk_full_files.sh - attached files on full disks (issue 17), on
# small tmpfs mounts in a private mount namespace (unshare -rm), handled
# as records are: a file on a laptop whose disk is full is refused with
# "the disk is full" and leaves nothing behind; HQ whose disk fills up
# while it makes a file answers 503, the laptop keeps the file and says
# so, and once HQ has room the next sync completes it from the chunks HQ
# kept, without sending them again.
set -e
if [ "${FS_IN_MNTNS:-}" != 1 ]; then
	command -v unshare > /dev/null || { echo "FAIL: unshare (util-linux) is needed" >&2; exit 1; }
	FS_IN_MNTNS=1 exec unshare -rm bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq; umount "$T/small" "$T/hq" 2> /dev/null'

mkdir -p "$T/small" "$T/hq"
mount -t tmpfs -o size=48m,mode=0700 tmpfs "$T/small"
mount -t tmpfs -o size=24m,mode=0700 tmpfs "$T/hq"
DATA="$T/small/data"
forms_with_files "$T/forms" \
	'{"name": "photo", "type": "attachment", "max_bytes": 100000000, "accept": ["application/pdf"]}'
fill() { dd if=/dev/zero of="$1/filler" bs=16k 2> /dev/null || true; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

hq_conf
hq_and_enrolled_store "Tim Kikinda" Kikinda
H=$(add_person "Petrović Milica" Kikinda)
expect_exit 0 fs sync

# ---- the laptop's disk is full ------------------------------------------------
scan_file "$T/scan.pdf" 3000000
fill "$T/small"
expect_exit 4 fs visit add "beneficiary_id=$H" visit_date=2026-11-20 visit_type=needs_assessment \
	"photo=@$T/scan.pdf"
must_contain "$ERR" "the disk is full"
rm "$T/small/filler"
expect_exit 2 fs attachment get "$(sha "$T/scan.pdf")"
expect_exit 0 fs check

# ---- HQ's disk fills up while it makes the file -------------------------------
# 8 MB: the chunks fit (HQ keeps them as they came), the sealed file
# beside them does not.
scan_file "$T/eight.pdf" 8000000
expect_exit 0 fs visit add "beneficiary_id=$H" visit_date=2026-11-21 visit_type=needs_assessment \
	"photo=@$T/eight.pdf"
V=$(printf '%s\n' "$OUT" | tail -n 1)
dd if=/dev/zero of="$T/hq/filler" bs=1M count=12 2> /dev/null
expect_exit 4 fs sync
must_contain "$ERR" "HQ's disk is full"
in_file "$T/hq.log" "No space left on device" || fail "HQ did not say its disk is full: $(tail -3 "$T/hq.log")"
# The record went first, whatever became of its file.
export_ids visits | grep -qx "$V" || fail "the visit waited for its file"
expect_exit 0 fs status
must_contain "$OUT" "files       1 attached files waiting to be sent, 8000000 bytes"
held=$(find "$T/hq/attachments/incoming" -type f ! -name '.*' | wc -l)
[ "$held" -eq 31 ] || fail "HQ kept $held of the 31 chunks"
# Room again: the next sync asks, HQ makes the file from what it kept.
rm "$T/hq/filler"
expect_exit 0 fs sync
must_contain "$OUT" "sent 1 files (0 chunks"
hq attachment get "$(sha "$T/eight.pdf")" | cmp -s - "$T/eight.pdf" || fail "HQ's file differs"
[ -z "$(find "$T/hq/attachments" -name '.*' -type f)" ] || fail "a temporary file was left at HQ"
echo "ok"
