# test_attachments.sh - files attached to visits (issue 17, first steps):
# photo=@FILE keeps the file in the encrypted store by its SHA-256, the
# record holds its reference, and `attachment get` gives back the same
# bytes; a file is what its first bytes say, not its name; too large is
# said in a person's words; a refused record leaves no file behind; and
# nothing of the file is on disk in the clear.  Both with the CLI on its
# own and through the agent, which is handed the file's descriptor.
set -e
. "$(dirname "$0")/lib.sh"

# The shipped visits form, with a photo (JPEG or PNG, at most 1 MB).
mkdir "$T/forms"
cp "$FORMS"/*.json "$T/forms/"
python3 - "$T/forms/visits.json" << 'PY'
import json, sys
f = json.load(open(sys.argv[1], encoding="utf-8"))
f["fields"].append({"name": "photo", "type": "attachment", "max_bytes": 1000000,
                    "accept": ["image/jpeg", "image/png"]})
json.dump(f, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
PY
FORMS="$T/forms"

# Synthetic files: a JPEG with an EXIF block and a marker no encryption
# would write by chance, one too large, a web page named .jpg, a PDF.
python3 - "$T" << 'PY'
import os, sys
t = sys.argv[1]
marker = b"FIELDSYNC-ATTACHMENT-MARKER-7f3a9c"
def jpeg(n):
    body = b"\xff\xd8\xff\xe1\x00\x20Exif\x00\x00" + marker
    return body + os.urandom(n - len(body) - 2) + b"\xff\xd9"
open(t + "/house.jpg", "wb").write(jpeg(300000))
open(t + "/roof.jpg", "wb").write(jpeg(120000))
open(t + "/big.jpg", "wb").write(jpeg(1500000))
open(t + "/lie.jpg", "wb").write(b"<html><body>" + marker + b"</body></html>\n")
open(t + "/scan.pdf", "wb").write(b"%PDF-1.7\n" + marker + b"\n%%EOF\n")
PY
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
expect_exit 0 fs visit show "$V" --json
python3 - "$OUT" "$(sha "$T/house.jpg")" << 'PY' || fail "the visit's photo reference: $OUT"
import json, sys
p = json.loads(sys.argv[1])["fields"]["photo"]
assert p == {"sha256": sys.argv[2], "size": 300000, "type": "image/jpeg"}, p
PY
fs attachment get "$(sha "$T/house.jpg")" > "$T/back.jpg"
cmp -s "$T/house.jpg" "$T/back.jpg" || fail "attachment get did not give back the same bytes"

# The same file again is kept once; a file is judged by its content.
WANT=0 visit "$T/house.jpg"
WANT=2 visit "$T/lie.jpg"
must_contain "$ERR" "is not a JPEG, PNG or PDF file by its content"
WANT=2 visit "$T/scan.pdf"
must_contain "$ERR" "a file of a type it does not take"
WANT=2 visit "$T/big.jpg"
must_contain "$ERR" "photo is 1.5 MB, the form allows 1.0 MB"
WANT=4 visit "$T/nowhere.jpg"
must_contain "$ERR" "nowhere.jpg: No such file"
# A record refused after its file was kept: the file goes too.
WANT=2 visit "$T/roof.jpg" construction_stage=walls
expect_exit 2 fs attachment get "$(sha "$T/roof.jpg")"
must_contain "$ERR" "no attachment"
expect_exit 1 fs attachment get
expect_exit 1 fs attachment get "$(sha "$T/roof.jpg")" extra
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

# ---- through the agent: the CLI hands it the file ------------------------
agent_conf
start_agent
at_exit 'stop_agent'
expect_exit 0 fa --passphrase-file "$PASS" unlock
expect_exit 0 fa visit add "beneficiary_id=$H" visit_date=2026-11-21 visit_type=needs_assessment \
	"photo=@$T/roof.jpg"
V2=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 fa visit show "$V2" --json
must_contain "$OUT" "$(sha "$T/roof.jpg")"
fa attachment get "$(sha "$T/roof.jpg")" > "$T/back2.jpg"
cmp -s "$T/roof.jpg" "$T/back2.jpg" || fail "the agent's attachment get did not give back the same bytes"
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
