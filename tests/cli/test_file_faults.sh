# test_file_faults.sh - a large attached file (a scan) over a link that fails
# (issue 17): `sync` killed with SIGKILL 100 times while it sends chunks,
# then a link cut again and again by faultproxy; the file arrives whole
# (its hash checked at HQ), no cut or kill costs more than the chunk in
# flight (counted on the wire: the bytes the proxy forwarded to HQ), and
# the visit merged before its file did.  Then the agent: a record written
# while it sends a large file goes to HQ before the file's last chunk.
# FS_UPLOAD_TEST_MB sets the first file's size (default 200).
set -e
. "$(dirname "$0")/lib.sh"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
proxy_setup
at_exit '[ -z "$HQPID" ] || kill -CONT "$HQPID" 2> /dev/null; kill_agent; kill_proxy; stop_hq; [ -z "${SPID:-}" ] || kill -9 "$SPID" 2> /dev/null'
MB=${FS_UPLOAD_TEST_MB:-200}
SIZE=$((MB * 1000 * 1000))
CHUNK=262144
KILLS=100

forms_with_files "$T/forms" \
	'{"name": "photo", "type": "attachment", "max_bytes": 300000000, "accept": ["application/pdf"]}'
scan_file "$T/big.pdf" "$SIZE"
[ "$(stat -c %s "$T/big.pdf")" = "$SIZE" ] || fail "the test file is not $SIZE bytes"
HASH=$(sha256sum "$T/big.pdf" | cut -d' ' -f1)

hq_conf
init_store
expect_exit 0 hq init
start_hq
start_proxy "$T/proxy-enrol.log" pass
TOKEN=$(hq enroll-token --team "Tim Tutin" --municipality Tutin | tail -n 1)
expect_exit 0 fs enroll "http://127.0.0.1:$PXPORT" "$TOKEN"
stop_proxy
H=$(add_person "Stevanović Milan" Tutin)
expect_exit 0 fs visit add "beneficiary_id=$H" visit_date=2026-11-20 visit_type=needs_assessment \
	"photo=@$T/big.pdf"
V=$(printf '%s\n' "$OUT" | tail -n 1)

# held: chunks HQ keeps of the upload in progress.
held() {
	find "$T/hq/attachments/incoming" -type f ! -name '.*' 2> /dev/null | wc -l
}
# up LOG: bytes the proxy forwarded to HQ, and connections, in LOG.
up() { awk '{ b += $6; n++ } END { printf "%d %d\n", b, n }' "$1"; }
complete() { hq attachment list | grep -q "^$HASH "; }

# ---- SIGKILL while chunks go, 100 times -------------------------------------
start_proxy "$T/proxy-kill.log" pass
kills=0
while [ "$kills" -lt "$KILLS" ] && ! complete; do
	before=$(held)
	# The binary itself, not fs(): $! must be the process killed.
	"$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$PASS" sync \
		> /dev/null 2>&1 &
	SPID=$!
	# Until HQ has kept one more chunk (the sync is mid-file), or the
	# sync ended on its own.
	until [ "$(held)" -gt "$before" ] || ! kill -0 "$SPID" 2> /dev/null; do sleep 0.02; done
	kill -9 "$SPID" 2> /dev/null || true
	wait "$SPID" 2> /dev/null || true
	SPID=
	kills=$((kills + 1))
done
stop_proxy
[ "$kills" -eq "$KILLS" ] || fail "the file arrived after $kills kills; the test wants $KILLS (a larger file)"
# The visit merged before its file: records go first.
export_ids visits | grep -qx "$V" || fail "the visit did not merge while its file was on its way"
complete && fail "the file completed during the kills"
read -r bytes conns < <(up "$T/proxy-kill.log")
chunks=$(held)
# Every byte forwarded is a chunk HQ keeps, or at most one chunk and a
# few requests' worth per connection (one connection per killed sync).
limit=$((chunks * (CHUNK + 512) + conns * (CHUNK + 32768)))
[ "$bytes" -le "$limit" ] || fail "$bytes bytes went up for $chunks chunks kept over $conns connections (limit $limit)"
echo "$KILLS kills: $chunks chunks kept, $bytes bytes up over $conns connections" >&2

# ---- a link cut again and again, until the file is whole ---------------------
start_proxy "$T/proxy-cut.log" cut-up --max-bytes $((8 * 1024 * 1024))
runs=0
until complete; do
	runs=$((runs + 1))
	[ "$runs" -le 1000 ] || fail "the file did not arrive in 1000 syncs"
	fs sync > /dev/null 2>&1 || true
done
stop_proxy
cuts=$(awk '$10 == "yes"' "$T/proxy-cut.log" | wc -l)
[ "$cuts" -ge 3 ] || fail "only $cuts cuts happened; the test wants several"
read -r bytes2 conns2 < <(up "$T/proxy-cut.log")
left=$((SIZE - chunks * CHUNK))
limit=$((left + left / CHUNK * 512 + conns2 * (CHUNK + 32768)))
[ "$bytes2" -le "$limit" ] || fail "$bytes2 bytes went up for $left bytes left over $conns2 connections (limit $limit)"
echo "$cuts cuts: $bytes2 bytes up for $left bytes over $conns2 connections, in $runs syncs" >&2

hq attachment get "$HASH" | sha256sum | grep -q "^$HASH " || fail "HQ's file does not hash to its name"
[ -z "$(find "$T/hq/attachments/incoming" -type f 2> /dev/null)" ] || fail "chunks left behind at HQ"
start_proxy "$T/proxy-end.log" pass
expect_exit 0 fs sync
must_not_contain "$OUT" "files"

# ---- the agent: records never wait for files ------------------------------
# A second file of 100 MB through the agent; once HQ holds a chunk of
# it, a new household.  Its change set must reach HQ's audit log before
# the file's file_received: the agent stops between two chunks for it.
scan_file "$T/second.pdf" 100000000
HASH2=$(sha256sum "$T/second.pdf" | cut -d' ' -f1)
agent_conf
start_agent
expect_exit 0 fa --passphrase-file "$PASS" unlock
expect_exit 0 fa visit add "beneficiary_id=$H" visit_date=2026-11-23 visit_type=needs_assessment \
	"photo=@$T/second.pdf"
wait_for 120 "HQ kept no chunk of the second file" sh -c "[ \"\$(find '$T/hq/attachments/incoming' -path '*$HASH2*' -type f ! -name '.*' 2> /dev/null | wc -l)\" -gt 0 ]"
# HQ stopped in its tracks, so the file is still on its way whatever the
# machine's load: a household (on the agent's loop), then a visit with a
# scan, which the agent keeps on its worker thread (reading and
# encrypting a file of any size never stalls its loop), parked behind
# the push; each makes the files give way.
kill -STOP "$HQPID"
expect_exit 0 fa beneficiary add "full_name=Јовановић Ана" municipality=Tutin status=refugee \
	household_size=3 consent=yes
B=$(printf '%s\n' "$OUT" | tail -n 1)
scan_file "$T/consent.pdf" 300000
fa visit add "beneficiary_id=$B" visit_date=2026-11-24 visit_type=needs_assessment \
	"photo=@$T/consent.pdf" > "$T/porch.out" 2>&1 &
PORCH=$!
wait_log "visit: on the worker thread"
kill -CONT "$HQPID"
wait "$PORCH" || fail "visit with a scan through the agent: $(cat "$T/porch.out")"
wait_hq_count beneficiaries 2 > /dev/null
wait_hq_count visits 3 > /dev/null
until_ok 300 sh -c "'$HQ_BIN' -c '$T/hq.conf' attachment list | grep -q '^$HASH2 '" ||
	fail "the second file did not arrive"
stop_agent
stop_proxy
export_ids beneficiaries | grep -qx "$B" || fail "the household did not reach HQ"
hq audit list --json > "$T/audit.jsonl"
python3 - "$T/audit.jsonl" "$HASH2" << 'PY' || fail "the household waited for the file"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
def detail(r):
    d = r.get("detail")
    return json.loads(d) if isinstance(d, str) else (d or {})
got = [i for i, r in enumerate(rows) if r["event"] == "file_received" and detail(r).get("sha256") == sys.argv[2]]
assert len(got) == 1, got
pushes = [i for i, r in enumerate(rows) if r["event"] == "push" and detail(r).get("result") == "accepted"]
# The household's set is the last push; it came before the file was whole.
assert pushes and pushes[-1] < got[0], (pushes[-3:], got)
PY
echo "ok"
