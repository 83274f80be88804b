# test_audit.sh - HQ's tamper-evident audit log.  Real pushes fill it;
# `audit verify` passes on the untouched log; then, each on a copy of the
# database, one row edited, removed, inserted or reordered with the
# sqlite3 shell (its triggers dropped first), the tail cut off, and a
# whole rewrite with every hash recomputed: verify fails and names the
# entry or the checkpoint.  The signed checkpoint and the tree root are
# also checked by an independent implementation written here (Python for
# the signed-note and RFC 6962 rules, openssl for Ed25519).
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
command -v sqlite3 > /dev/null || fail "the sqlite3 shell is needed"
command -v openssl > /dev/null || fail "openssl is needed"
at_exit 'stop_hq'

hq_conf
printf '[audit]\ncheckpoint_every = 4\n' >> "$T/hq.conf"
hq_and_enrolled_store "Tim Tutin" Tutin
for i in 1 2 3 4 5 6; do
	add_person "Ђорђевић $i" > /dev/null
	expect_exit 0 fs sync
done
# Many admin commands at once, each appending its entry: the numbering
# must stay whole (it once raced: max(id) + 1 read outside a transaction).
pids=
for i in $(seq 12); do
	hq devices > /dev/null 2> "$T/devices.$i.err" &
	pids="$pids $!"
done
for p in $pids; do
	wait "$p" || fail "a concurrent admin command failed: $(cat "$T"/devices.*.err)"
done
stop_hq

expect_exit 0 hq audit --help
must_contain "$OUT" "checkpoint"
expect_exit 0 hq audit verify
# The 2 forms HQ published when it first served, a token, an
# enrolment, 6 pushes, the 6 down-sets each sync pulled after it, and
# 12 admin commands.
must_contain "$OUT" "audit log ok: 28 entries"
expect_exit 0 hq audit list --event push --json
[ "$(printf '%s\n' "$OUT" | grep -c 'result\\":\\"accepted')" -eq 6 ] || fail "expected 6 pushes: $OUT"
DEVICE=$(fs status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])')
expect_exit 0 hq audit list --device "$DEVICE"
must_contain "$OUT" "enroll"
must_not_contain "$OUT" "token_created"
expect_exit 0 hq audit list --since 2999-01-01
[ -z "$OUT" ] || fail "--since in the future listed entries"
expect_exit 1 hq audit list --since yesterday
must_not_contain "$(hq audit list)" "Ђорђевић"
# Reading HQ's data is audited too: exports and admin commands.
hq export beneficiaries --format jsonl > /dev/null || fail "export failed"
hq devices > /dev/null || fail "devices failed"
expect_exit 0 hq audit list --event export --json
must_contain "$OUT" 'what\":\"beneficiaries'
expect_exit 0 hq audit list --event admin --json
must_contain "$OUT" 'command\":\"devices'
must_contain "$OUT" 'command\":\"audit verify'
must_contain "$OUT" 'what\":\"ok' 

# ---- an independent verifier ---------------------------------------------------
expect_exit 0 hq audit checkpoint
printf '%s\n' "$OUT" > "$T/checkpoint"
hq audit export > "$T/export.jsonl" || fail "audit export failed"
cat > "$T/verify.py" <<'PY'
import base64, hashlib, json, subprocess, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
head, entries = lines[0], [l for l in lines[1:] if "id" in l]
# The verifier key: name+hex(key id)+base64(0x01 || Ed25519 key).
name, keyid, b64 = head["verifier_key"].split("+", 2)
key = base64.b64decode(b64)
assert key[0] == 1 and len(key) == 33, "not an Ed25519 verifier key"
pk = key[1:]
assert hashlib.sha256(name.encode() + b"\n\x01" + pk).hexdigest()[:8] == keyid, "key id"
# RFC 6962 leaves and root.
def leaf(e):
    text = "fieldsync-audit-v1\n%d\n%d\n%s\n%s\n%s\n" % (
        e["id"], e["at_ms"], e["event"], e.get("device", "-"), e.get("detail", ""))
    return hashlib.sha256(b"\x00" + text.encode()).digest()
def mth(hs):
    if len(hs) == 0: return hashlib.sha256(b"").digest()
    if len(hs) == 1: return hs[0]
    k = 1
    while k * 2 < len(hs): k *= 2
    return hashlib.sha256(b"\x01" + mth(hs[:k]) + mth(hs[k:])).digest()
leaves = [leaf(e) for e in entries]
for e, h in zip(entries, leaves):
    assert e["leaf"] == h.hex(), "leaf of entry %d" % e["id"]
# The signed note: text, blank line, "— name base64(keyid || sig)".
note = open(sys.argv[2], encoding="utf-8").read()
text, _, sigs = note.rpartition("\n\n")
text += "\n"
sig = None
for line in sigs.splitlines():
    dash, n, blob = line.split(" ")
    assert dash == "\u2014", "signature line"
    raw = base64.b64decode(blob)
    if n == name and raw[:4].hex() == keyid:
        sig = raw[4:]
assert sig and len(sig) == 64, "no signature by HQ's key"
d = sys.argv[3]
open(d + "/pk.der", "wb").write(bytes.fromhex("302a300506032b6570032100") + pk)
open(d + "/msg", "wb").write(text.encode())
open(d + "/sig", "wb").write(sig)
subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey",
                d + "/pk.der", "-rawin", "-in", d + "/msg", "-sigfile", d + "/sig"],
               check=True, stdout=subprocess.DEVNULL)
origin, size, root = text.split("\n")[:3]
assert origin == name, "origin"
assert base64.b64decode(root) == mth(leaves[: int(size)]), "root"
print("independent check: %d entries, checkpoint of size %s verified" % (len(leaves), size),
      file=sys.stderr)
PY
python3 "$T/verify.py" "$T/export.jsonl" "$T/checkpoint" "$T" || fail "independent verification failed"
# The same verifier refuses a checkpoint claiming another root.
python3 - "$T/checkpoint" > "$T/checkpoint.bad" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
lines[2] = "A" + lines[2][1:] if lines[2][0] != "A" else "B" + lines[2][1:]
sys.stdout.write("\n".join(lines))
PY
! python3 "$T/verify.py" "$T/export.jsonl" "$T/checkpoint.bad" "$T" 2> /dev/null ||
	fail "the independent verifier accepted a forged checkpoint"

# rewrite_log DB N: set entry 5's (the first push's) change count to N and recompute every
# stored hash (leaves and the tree's nodes), as a forger with write access
# would; "and-checkpoints"
# also drops the signed checkpoints (an HQ holding its key re-signs).
rewrite_log() {
	python3 - "$1" "$2" "${3:-}" <<'PY' || fail "rewrite failed"
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("DROP TRIGGER events_no_update;")
db.execute("UPDATE events SET detail = replace(detail, '\"changes\":5', '\"changes\":%d') WHERE id = 5"
           % int(sys.argv[2]))
leaves = []
for i, at, t, d, det in db.execute("SELECT id, at, type, device, detail FROM events ORDER BY id").fetchall():
    text = "fieldsync-audit-v1\n%d\n%d\n%s\n%s\n%s\n" % (i, at, t, d or "-", det or "")
    leaves.append(hashlib.sha256(b"\x00" + text.encode()).digest())
    db.execute("UPDATE events SET leaf = ? WHERE id = ?", (leaves[-1], i))
# ... and the tree's stored interior nodes (audit_nodes), level by level.
db.executescript("DROP TRIGGER audit_nodes_no_delete; DELETE FROM audit_nodes;")
cur, level = leaves, 1
while len(cur) >= 2:
    cur = [hashlib.sha256(b"\x01" + cur[2 * j] + cur[2 * j + 1]).digest() for j in range(len(cur) // 2)]
    db.executemany("INSERT INTO audit_nodes(level, idx, hash) VALUES (?, ?, ?)",
                   [(level, j, h) for j, h in enumerate(cur)])
    level += 1
if sys.argv[3]:
    db.executescript("DROP TRIGGER checkpoints_no_delete; DELETE FROM checkpoints;")
db.commit()
PY
}

# ---- tampering, each on a copy ------------------------------------------------------
# tamper NAME SQL: apply SQL to a copy of HQ's database; verify must exit 3.
tamper() {
	rm -rf "$T/copy"
	cp -a "$T/hq" "$T/copy"
	sqlite3 "$T/copy/hq.db" "$2" || fail "sqlite3 failed for $1"
	expect_exit 3 "$HQ_BIN" --data-dir "$T/copy" --forms-dir "$FORMS" audit verify
	echo "$1: $ERR" >&2
}
NOTRIG="DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; DROP TRIGGER events_in_order;"

tamper edited "$NOTRIG UPDATE events SET detail = replace(detail, '\"changes\":5', '\"changes\":6') WHERE id = 7;"
must_contain "$ERR" "audit entry 7"
tamper removed "$NOTRIG DELETE FROM events WHERE id = 3;"
must_contain "$ERR" "audit entry 3: missing"
tamper inserted "$NOTRIG UPDATE events SET id = id + 100 WHERE id >= 4; UPDATE events SET id = id - 99 WHERE id >= 104;
	INSERT INTO events(id, at, type, device, detail) VALUES (4, 1, 'revoke', NULL, NULL);"
must_contain "$ERR" "audit entry 4"
tamper reordered "$NOTRIG UPDATE events SET id = 100 WHERE id = 6; UPDATE events SET id = 6 WHERE id = 7;
	UPDATE events SET id = 7 WHERE id = 100;"
must_contain "$ERR" "audit entry 6"
tamper appended "$NOTRIG INSERT INTO events(id, at, type) SELECT max(id) + 1, 1, 'enroll' FROM events;"
must_contain "$ERR" "does not match its hash"
tamper node "DROP TRIGGER audit_nodes_no_update; UPDATE audit_nodes SET hash = zeroblob(32)
	WHERE level = 2 AND idx = 1;"
must_contain "$ERR" "audit tree node 2/1 (entries 5 to 8): missing or does not match"
# A database of schema version 1 (no stored tree) is upgraded when
# opened: the tree is built from the entries, and verifies.
rm -rf "$T/copy"
cp -a "$T/hq" "$T/copy"
sqlite3 "$T/copy/hq.db" "DROP TABLE files; DROP TABLE uploads; DROP TABLE resolutions; DROP TABLE users; DROP TABLE login_failures;
	ALTER TABLE devices DROP COLUMN health; ALTER TABLE devices DROP COLUMN health_at;
	DROP TABLE audit_nodes; ALTER TABLE devices DROP COLUMN unbound_ok;
	DROP TABLE device_scopes; ALTER TABLE tokens DROP COLUMN scope;
	DROP TABLE form_versions;
	DROP TABLE counters; DROP TABLE scope_moves; DROP TABLE down_state; DROP TABLE down_cursors;
	DROP TABLE scope_fields;
	DROP INDEX fields_by_scope; DROP INDEX fields_by_rev; DROP INDEX records_by_parent;
	DROP INDEX records_by_scope;
	DROP INDEX conflicts_by_rev; DROP INDEX conflicts_by_record; ALTER TABLE conflicts DROP COLUMN rev;
	ALTER TABLE fields DROP COLUMN rev; ALTER TABLE fields DROP COLUMN scope_key;
	ALTER TABLE records DROP COLUMN scope_key; ALTER TABLE records DROP COLUMN scope_parent;
	PRAGMA user_version = 1;" || fail "sqlite3"
expect_exit 0 "$HQ_BIN" --data-dir "$T/copy" --forms-dir "$FORMS" audit verify
[ "$(sqlite3 "$T/copy/hq.db" "PRAGMA user_version")" = 8 ] || fail "schema version 1 not upgraded"
# Each device enrolled before scopes may write its municipality.
[ "$(sqlite3 "$T/copy/hq.db" "SELECT count(*) FROM devices d JOIN device_scopes s
	ON s.device = d.id AND s.name = d.municipality")" = \
	"$(sqlite3 "$T/copy/hq.db" "SELECT count(*) FROM devices")" ] || fail "scopes not given"
[ "$(sqlite3 "$T/copy/hq.db" "SELECT count(*) FROM audit_nodes")" -gt 0 ] || fail "no tree built"
tamper truncated "$NOTRIG DELETE FROM events WHERE id > 6;"
must_contain "$ERR" "audit checkpoint at size"
must_contain "$ERR" "were removed"
# A careful forger recomputes every stored hash: the signed root still
# gives it away.
rm -rf "$T/copy"
cp -a "$T/hq" "$T/copy"
rewrite_log "$T/copy/hq.db" 7
expect_exit 3 "$HQ_BIN" --data-dir "$T/copy" --forms-dir "$FORMS" audit verify
must_contain "$ERR" "audit checkpoint at size"
must_contain "$ERR" "rewritten"
# A checkpoint with a forged signature.
rm -rf "$T/copy"
cp -a "$T/hq" "$T/copy"
sqlite3 "$T/copy/hq.db" "DROP TRIGGER checkpoints_no_update;
	UPDATE checkpoints SET note = replace(note, '— ', '— x')
	WHERE size = (SELECT min(size) FROM checkpoints);" || fail "sqlite3"
expect_exit 3 "$HQ_BIN" --data-dir "$T/copy" --forms-dir "$FORMS" audit verify
must_contain "$ERR" "signature does not verify"

# The original still verifies.
expect_exit 0 hq audit verify

# ---- devices hold HQ to its history ---------------------------------------------
# The device kept the checkpoint that came with its last receipt.
start_hq "$PORT"
expect_exit 0 fs status --verify-hq
must_contain "$OUT" "hq history  consistent"
add_person "Ђорђевић 7" > /dev/null
expect_exit 0 fs sync
expect_exit 0 hq audit checkpoint
expect_exit 0 fs status --verify-hq --json
must_contain "$OUT" '"hq_history_consistent":true'
# A pull brings HQ's newest checkpoint, and an honest HQ's passes the
# consistency check from the one held.
expect_exit 0 hq scope "$DEVICE" --municipality "Tutin, Novi Pazar"
expect_exit 0 hq audit checkpoint
expect_exit 0 fs pull
must_contain "$OUT" "received 1 down-sets"
# A malicious HQ, with its real key, rewrites one old entry and signs a
# fresh, self-consistent log: its own verify passes; the device objects.
stop_hq
rewrite_log "$T/hq/hq.db" 4 and-checkpoints
expect_exit 0 hq audit checkpoint
expect_exit 0 hq audit verify
start_hq "$PORT"
# A pull's answer carries HQ's checkpoint too: the device refuses the
# down-set, and applies nothing of it.
down() { fs status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["down_sets_applied"])'; }
BEFORE=$(down)
expect_exit 0 hq scope "$DEVICE" --municipality "Tutin, Sjenica"
expect_exit 3 fs pull
must_contain "$ERR" "REWRITTEN"
[ "$(down)" = "$BEFORE" ] || fail "a down-set from an HQ that rewrote its history was applied"
expect_exit 3 fs status --verify-hq
must_contain "$ERR" "REWRITTEN"
add_person "Ђорђевић 8" > /dev/null
expect_exit 3 fs sync
must_contain "$ERR" "REWRITTEN"
must_not_contain "$ERR" "Ђорђевић"
stop_hq
echo "ok: audit log"
