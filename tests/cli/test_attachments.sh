# test_attachments.sh - files attached to visits (issue 17): photo=@FILE
# keeps the file in the encrypted store by its SHA-256, the record holds
# its reference, and `attachment get` gives back what was kept: a JPEG
# without the camera's EXIF and comment (the same picture), or with its
# EXIF when the form keeps the location, or scaled down to the form's
# longest side; other files byte for byte.  A file is what its first
# bytes say, not its name; too large is said in a person's words; a
# refused record leaves no file behind; and nothing of the file is on
# disk in the clear.  Both with the CLI on its own and through the
# agent, which is handed the file's descriptor.
set -e
. "$(dirname "$0")/lib.sh"

# The shipped visits form, with a photo (JPEG or PNG, at most 1 MB).
forms_with_files "$T/forms" \
	'{"name": "photo", "type": "attachment", "max_bytes": 1000000, "accept": ["image/jpeg", "image/png"]}' \
	'{"name": "site_photo", "type": "attachment", "max_bytes": 1000000, "max_side": 800, "quality": 70}' \
	'{"name": "location_photo", "type": "attachment", "keep_location": true}'

# Synthetic files: JPEG photos with a camera's EXIF and comment holding
# a marker no encryption would write by chance, one too large, a web
# page named .jpg, a "JPEG" that is not one, a PNG, a PDF.
[ -x "${FS_MKJPEG:-}" ] || fail "FS_MKJPEG must name the mkjpeg tool (tests/CMakeLists.txt)"
MARKER=FIELDSYNC-ATTACHMENT-MARKER-7f3a9c
"$FS_MKJPEG" "$T/house.jpg" 640 480 --exif "$MARKER GPS 43.27N 20.00E" || fail "mkjpeg"
"$FS_MKJPEG" "$T/big.jpg" 1400 1000 --noise --exif "$MARKER" || fail "mkjpeg"
python3 - "$T" << 'PY'
import os, sys
t = sys.argv[1]
marker = b"FIELDSYNC-ATTACHMENT-MARKER-7f3a9c"
open(t + "/roof.png", "wb").write(b"\x89PNG\r\n\x1a\n" + marker + os.urandom(120000))
open(t + "/lie.jpg", "wb").write(b"<html><body>" + marker + b"</body></html>\n")
open(t + "/broken.jpg", "wb").write(b"\xff\xd8\xff\xe0" + marker + os.urandom(5000))
open(t + "/scan.pdf", "wb").write(b"%PDF-1.7\n" + marker + b"\n%%EOF\n")
PY
# dims FILE: a JPEG's width and height, from its frame header.
dims() {
	python3 - "$1" << 'PY'
import sys
d = open(sys.argv[1], "rb").read()
i = 2
while i < len(d):
    m, n = d[i + 1], int.from_bytes(d[i + 2:i + 4], "big")
    if m in (0xC0, 0xC1, 0xC2):
        print(int.from_bytes(d[i + 7:i + 9], "big"), int.from_bytes(d[i + 5:i + 7], "big"))
        break
    i += 2 + n
PY
}
# ref VISIT FIELD: the visit's reference for FIELD, as "sha256 size type".
ref() {
	fs visit show "$1" --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["fields"][sys.argv[1]]
print(p["sha256"], p["size"], p["type"])' "$2"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

init_store
H=$(add_person "Stevanović Milan" Tutin)
visit() { # visit FILE [FIELD=VALUE...]: a visit to $H with a photo
	local file=$1
	shift
	expect_exit "$WANT" fs visit add "beneficiary_id=$H" visit_date=2026-11-20 \
		visit_type=needs_assessment "photo=@$file" "$@"
}

WANT=0 visit "$T/house.jpg"
V=$(printf '%s\n' "$OUT" | tail -n 1)
read -r HSHA HSIZE HTYPE < <(ref "$V" photo)
[ "$HTYPE" = image/jpeg ] || fail "the photo's type: $HTYPE"
fs attachment get "$HSHA" > "$T/back.jpg"
[ "$(sha "$T/back.jpg")" = "$HSHA" ] && [ "$(stat -c %s "$T/back.jpg")" = "$HSIZE" ] ||
	fail "attachment get did not give back what the reference names"
# The camera's metadata is gone; the picture is the same size.
! grep -qaF "$MARKER" "$T/back.jpg" || fail "the kept photo still holds the camera's EXIF or comment"
! grep -qaF "Exif" "$T/back.jpg" || fail "the kept photo still holds an EXIF block"
[ "$(dims "$T/back.jpg")" = "640 480" ] || fail "the kept photo is $(dims "$T/back.jpg"), not 640 480"
# A form that keeps the location keeps the EXIF; one with a longest
# side scales a photo down to it.
WANT=0 visit "$T/roof.png" "location_photo=@$T/house.jpg"
read -r LSHA _ _ < <(ref "$(printf '%s\n' "$OUT" | tail -n 1)" location_photo)
fs attachment get "$LSHA" | grep -qaF "$MARKER" || fail "keep_location did not keep the EXIF"
WANT=0 visit "$T/roof.png" "site_photo=@$T/big.jpg"
read -r SSHA SSIZE _ < <(ref "$(printf '%s\n' "$OUT" | tail -n 1)" site_photo)
fs attachment get "$SSHA" > "$T/site.jpg"
[ "$(dims "$T/site.jpg")" = "700 500" ] || fail "the scaled photo is $(dims "$T/site.jpg"), not 700 500"
[ "$SSIZE" -lt "$(stat -c %s "$T/big.jpg")" ] || fail "the scaled photo is not smaller"

# The same file again is kept once; a file is judged by its content.
WANT=0 visit "$T/house.jpg"
WANT=2 visit "$T/lie.jpg"
must_contain "$ERR" "is not a JPEG, PNG or PDF file by its content"
WANT=2 visit "$T/scan.pdf"
must_contain "$ERR" "a file of a type it does not take"
WANT=2 visit "$T/big.jpg"
must_contain "$ERR" "photo is 1."
must_contain "$ERR" "MB, the form allows 1.0 MB"
WANT=2 visit "$T/broken.jpg"
must_contain "$ERR" "not a JPEG libjpeg can read"
WANT=4 visit "$T/nowhere.jpg"
must_contain "$ERR" "nowhere.jpg: No such file"
# A record refused after its file was kept: the file goes too.
ROOF=$(sha "$T/roof.png")
expect_exit 2 fs attachment get "$(sha "$T/scan.pdf")"
python3 -c 'import os,sys; open(sys.argv[1],"wb").write(b"\x89PNG\r\n\x1a\n" + os.urandom(9000))' "$T/porch.png"
WANT=2 visit "$T/porch.png" construction_stage=walls
expect_exit 2 fs attachment get "$(sha "$T/porch.png")"
must_contain "$ERR" "no attachment"
expect_exit 1 fs attachment get
expect_exit 1 fs attachment get "$ROOF" extra
expect_exit 1 fs attachment get not-a-hash
expect_exit 0 fs attachment --help
# An attachment given as text must be a reference, and a valid one.
expect_exit 2 fs visit add "beneficiary_id=$H" visit_date=2026-11-20 \
	visit_type=needs_assessment photo=house.jpg
must_contain "$ERR" "an attachment is given as its JSON reference"
expect_exit 0 fs check

# Nothing of the files is on disk in the clear: not the marker, not the
# JPEG's first bytes, not its EXIF.
! grep -rqaF "FIELDSYNC-ATTACHMENT-MARKER" "$DATA" || fail "a file is in the data directory in the clear"
! grep -rqaF "$(printf 'Exif\000\000FIELDSYNC')" "$DATA" || fail "EXIF is in the data directory"
# ... nor a JPEG's first bytes (its start of image and JFIF header).
! LC_ALL=C grep -rqaP '\xff\xd8\xff\xe0\x00\x10JFIF' "$DATA" || fail "a JPEG is in the data directory in the clear"
LC_ALL=C grep -qaP '\xff\xd8\xff\xe0\x00\x10JFIF' "$T/house.jpg" || fail "the JPEG pattern does not match a JPEG"

# ---- through the agent: the CLI hands it the file ------------------------
agent_conf
start_agent
at_exit 'stop_agent'
expect_exit 0 fa --passphrase-file "$PASS" unlock
"$FS_MKJPEG" "$T/yard.jpg" 320 240 --exif "$MARKER" || fail "mkjpeg"
expect_exit 0 fa visit add "beneficiary_id=$H" visit_date=2026-11-21 visit_type=needs_assessment \
	"photo=@$T/yard.jpg"
V2=$(printf '%s\n' "$OUT" | tail -n 1)
read -r YSHA _ _ < <(fa visit show "$V2" --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["fields"]["photo"]
print(p["sha256"], p["size"], p["type"])')
fa attachment get "$YSHA" > "$T/back2.jpg"
[ "$(sha "$T/back2.jpg")" = "$YSHA" ] || fail "the agent's attachment get did not give back what was kept"
! grep -qaF "$MARKER" "$T/back2.jpg" || fail "the agent kept the camera's metadata"
[ "$(dims "$T/back2.jpg")" = "320 240" ] || fail "the agent's photo is $(dims "$T/back2.jpg")"
expect_exit 2 fa visit add "beneficiary_id=$H" visit_date=2026-11-21 visit_type=needs_assessment \
	"photo=@$T/lie.jpg"
must_contain "$ERR" "is not a JPEG, PNG or PDF file by its content"
# A text that starts with @ and names no file is still a text.
expect_exit 0 fa visit add "beneficiary_id=$H" visit_date=2026-11-21 \
	visit_type=needs_assessment "notes=@nowhere is a handle"
stop_agent
at_exit ''
! grep -rqaF "FIELDSYNC-ATTACHMENT-MARKER" "$DATA" || fail "a file is in the data directory in the clear"
echo "ok"
