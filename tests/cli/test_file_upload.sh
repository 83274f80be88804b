# test_file_upload.sh - attached files reach HQ (issue 17): `sync` sends
# a visit's photo after the records, in chunks sealed to HQ; HQ keeps it
# sealed, serves it with `attachment get` (audited) and names it in its
# exports; a file HQ holds is not sent again, from this device or
# another; a file over HQ's quota is refused in words while its record
# merges all the same; and a link cut again and again moves a large file
# whole, re-sending at most one chunk per cut.
set -e
. "$(dirname "$0")/lib.sh"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
proxy_setup
at_exit 'kill_proxy; stop_hq'

# The shipped forms, visits with a photo of at most 300 MB, at both ends.
forms_with_files "$T/forms" \
	'{"name": "photo", "type": "attachment", "max_bytes": 300000000, "accept": ["image/jpeg", "application/pdf"]}'

sha() { sha256sum "$1" | cut -d' ' -f1; }
[ -x "${FS_MKJPEG:-}" ] || fail "FS_MKJPEG must name the mkjpeg tool (tests/CMakeLists.txt)"
"$FS_MKJPEG" "$T/house.jpg" 1600 1200 --noise --exif "FIELDSYNC-UPLOAD-MARKER-41c9 GPS" ||
	fail "mkjpeg"

hq_conf
hq_and_enrolled_store "Tim Tutin" Tutin
H=$(add_person "Stevanović Milan" Tutin)
expect_exit 0 fs visit add "beneficiary_id=$H" visit_date=2026-11-20 visit_type=needs_assessment \
	"photo=@$T/house.jpg"
V=$(printf '%s\n' "$OUT" | tail -n 1)
# The photo as the device keeps it (its metadata stripped).
PHOTO=$(fs visit show "$V" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fields"]["photo"]["sha256"])')
fs attachment get "$PHOTO" > "$T/kept.jpg"
SIZE=$(stat -c %s "$T/kept.jpg")
CHUNKS=$(((SIZE + 262143) / 262144))
expect_exit 0 fs status
must_contain "$OUT" "files       1 attached files waiting to be sent, $SIZE bytes"
expect_exit 0 fs sync
must_contain "$OUT" "sent 1 change sets"
must_contain "$OUT" "sent 1 files ($CHUNKS chunks"
hq attachment get "$PHOTO" > "$T/back.jpg" || fail "attachment get failed"
cmp -s "$T/kept.jpg" "$T/back.jpg" || fail "HQ's copy differs from the device's"
expect_exit 0 hq audit list
must_contain "$OUT" '"sha256":"'"$PHOTO"'"'
must_contain "$OUT" "attachment_get"
# The export names the file by its hash.
expect_exit 0 hq export visits --format jsonl
printf '%s\n' "$OUT" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
p = [r for r in rows if r["id"] == sys.argv[1]][0]["photo"]
assert p == {"sha256": sys.argv[2], "size": int(sys.argv[3]), "type": "image/jpeg"}, p
' "$V" "$PHOTO" "$SIZE" || fail "the export does not name the photo: $OUT"
# ... and the CSV by the name `attachment get` writes it under.
expect_exit 0 hq export visits --format csv
must_contain "$OUT" "$PHOTO.jpg"
# Sent once: the next sync has no file to send.
expect_exit 0 fs sync
must_not_contain "$OUT" "files"
[ "$(fs status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["files_pending"])')" = 0 ] ||
	fail "status still counts the sent file"
# Nothing of the file in the clear at HQ or on the device.
! grep -rqaF "FIELDSYNC-UPLOAD-MARKER" "$T/hq" "$DATA" || fail "the file is on disk in the clear"

# Another device with the same photo: HQ holds it, no chunk goes.
dev_enrol sjenica "Tim Sjenica" Sjenica Sjenica
S=$(dev sjenica beneficiary add "full_name=Ђорђевић Ана" municipality=Sjenica status=refugee \
	household_size=2 consent=yes | tail -n 1)
expect_exit 0 dev sjenica visit add "beneficiary_id=$S" visit_date=2026-11-21 \
	visit_type=needs_assessment "photo=@$T/house.jpg"
expect_exit 0 dev sjenica sync
must_contain "$OUT" "sent 1 files (0 chunks"

# Over HQ's quota: refused in words; the record merged all the same.
stop_hq
printf '[server]\nfile_quota_mib = 4\n' >> "$T/hq.conf"
start_hq "$PORT"
scan_file "$T/big.pdf" 3000000 FIELDSYNC-UPLOAD-MARKER-41c9
expect_exit 0 fs visit add "beneficiary_id=$H" visit_date=2026-11-22 visit_type=needs_assessment \
	"photo=@$T/big.pdf"
V2=$(printf '%s\n' "$OUT" | tail -n 1)
# A smaller scan, attached after it, still fits: the refused file does
# not hold it back.
scan_file "$T/small.pdf" 500000 FIELDSYNC-UPLOAD-MARKER-41c9
expect_exit 0 fs visit add "beneficiary_id=$H" visit_date=2026-11-23 visit_type=needs_assessment \
	"photo=@$T/small.pdf"
expect_exit 2 fs sync
must_contain "$ERR" "quota_exceeded"
must_contain "$ERR" "its quota is 4.2 MB"
must_contain "$OUT" "sent 1 files (2 chunks"
export_ids visits | grep -qx "$V2" || fail "the record waited for its file"
hq attachment get "$(sha "$T/small.pdf")" > "$T/small.back" || fail "attachment get failed"
cmp -s "$T/small.pdf" "$T/small.back" || fail "HQ's copy of the small scan differs"
expect_exit 0 fs status
must_contain "$OUT" "files       1 attached files waiting to be sent, 3000000 bytes"
# Nothing of that is an upload given up on.
expect_exit 0 hq attachment sweep
must_contain "$OUT" "dropped 0 uploads"
expect_exit 1 hq attachment sweep now
expect_exit 0 fs log
must_contain "$OUT" "files"
echo "ok"
