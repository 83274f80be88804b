# test_pg_multi.sh - several `fieldsync-hq serve` processes on one
# PostgreSQL database (issue 13).  Two and then four processes behind a
# round-robin proxy (tests/tools/rrproxy.py), four devices syncing at
# once through it, syncs killed with kill -9 so that their sets are sent
# again, each time perhaps to another process, one set sent to two
# processes at the same moment (stored once, the same receipt from both),
# two conflicting edits merged at the same moment by two processes (one
# conflict), and one serve process killed with kill -9 while devices
# push.  After each round: every
# record at HQ exactly once, each device's sets stored once, and the
# audit log one unbroken sequence that verifies.
set -e
FS_HQ_BACKEND=postgresql
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
DEVICES=4
ROUNDS=${FS_PG_MULTI_ROUNDS:-3}
PIDS=()
PXPID=
stop_all() {
	local p
	for p in "${PIDS[@]}" $PXPID; do kill "$p" 2> /dev/null || true; done
	for p in "${PIDS[@]}" $PXPID; do wait "$p" 2> /dev/null || true; done
	PIDS=()
	PXPID=
}
at_exit 'stop_all'

hq_conf
expect_exit 0 hq init

# serve N: N serve processes on ports of their own (PORTS, each picked
# by the kernel), and the proxy.
PORTS=()
serve() {
	local i port
	PORTS=()
	for i in $(seq "$1"); do
		"$HQ_BIN" -c "$T/hq.conf" serve --listen 127.0.0.1:0 2> "$T/serve.$i.log" &
		PIDS+=($!)
		listening() { in_file "$T/serve.$i.log" "listening on" || ! kill -0 "${PIDS[-1]}" 2> /dev/null; }
		until_ok 30 listening
		port=$(port_of "$T/serve.$i.log")
		[ -n "$port" ] || fail "serve $i: $(cat "$T/serve.$i.log")"
		PORTS+=("$port")
	done
	proxy
}

# proxy [ARGS...]: the round-robin proxy in front of PORTS, or with ARGS
# another mode of it on the same port.  The first one takes a port the
# kernel picks (PROXY_PORT), and every later one that port: the devices
# know HQ by it.
proxy() {
	: > "$T/proxy.log"
	if [ "$#" -gt 0 ]; then
		python3 "$FS_SOURCE_DIR/tests/tools/rrproxy.py" "$@" 2> "$T/proxy.log" &
	else
		python3 "$FS_SOURCE_DIR/tests/tools/rrproxy.py" "$PROXY_PORT" "${PORTS[@]}" 2> "$T/proxy.log" &
	fi
	PXPID=$!
	proxied() { in_file "$T/proxy.log" "listening on" || ! kill -0 "$PXPID" 2> /dev/null; }
	until_ok 30 proxied
	[ "$PROXY_PORT" != 0 ] || PROXY_PORT=$(port_of "$T/proxy.log")
	in_file "$T/proxy.log" "listening on 127.0.0.1:$PROXY_PORT" || fail "proxy: $(cat "$T/proxy.log")"
}

PROXY_PORT=0
serve 2
PORT=$PROXY_PORT
for d in $(seq $DEVICES); do
	dev_enrol "d$d" "Tim $d" Tutin Tutin > /dev/null
done
# dev_enrol used $PORT: point every device at the proxy instead.
[ "$(dev d1 status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hq_url"])')" = "http://127.0.0.1:$PROXY_PORT" ] ||
	fail "the devices are not enrolled through the proxy"

# pending D: changes device D has not had acknowledged.
pending() { dev "d$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending_changes"])'; }

# round TAG: each device adds 20 households (100 changes) and syncs them
# in sets of 10; once HQ has acknowledged some, the sync is killed with
# kill -9 and run again until it succeeds, so sets in flight are sent
# again, perhaps to another process.  All devices at once.
round() {
	local d pids=()
	for d in $(seq $DEVICES); do
		(
			for n in $(seq 20); do
				dev "d$d" beneficiary add "full_name=Ђорђевић $d-$1-$n" municipality=Tutin \
					status=idp household_size=2 consent=yes > /dev/null
			done
			before=$(pending "$d")
			"$FIELDSYNC" --data-dir "$T/d$d" --forms-dir "$FORMS" --passphrase-file "$PASS" \
				sync --max-changes 10 > /dev/null 2>&1 &
			sp=$!
			some_sent() { [ "$(pending "$d")" -lt "$before" ] || ! kill -0 "$sp" 2> /dev/null; }
			until_ok 60 some_sent || true
			kill -9 "$sp" 2> /dev/null || true
			wait "$sp" 2> /dev/null || true
			tries=0
			until "$FIELDSYNC" --data-dir "$T/d$d" --forms-dir "$FORMS" --passphrase-file "$PASS" \
				sync > /dev/null 2>> "$T/sync.$d.err"; do
				tries=$((tries + 1))
				[ "$tries" -lt 50 ] || exit 1
			done
		) &
		pids+=($!)
	done
	for d in "${pids[@]}"; do wait "$d" || fail "a device's syncs failed: $(cat "$T"/sync.*.err)"; done
}

# check N: HQ holds every device's households exactly once, each set
# once, and a log that verifies.
check() {
	local d
	: > "$T/all.ids"
	for d in $(seq $DEVICES); do
		dev "d$d" beneficiary list --json | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["id"])' >> "$T/all.ids"
	done
	sort -u "$T/all.ids" > "$T/local.ids"
	export_ids beneficiaries > "$T/hq.ids"
	[ -z "$(uniq -d "$T/hq.ids")" ] || fail "households duplicated at HQ"
	cmp -s "$T/local.ids" "$T/hq.ids" || fail "HQ differs from the devices: $(diff "$T/local.ids" "$T/hq.ids" | head -5)"
	[ "$(wc -l < "$T/hq.ids")" -eq "$1" ] || fail "HQ holds $(wc -l < "$T/hq.ids") households, expected $1"
	expect_exit 0 hq audit verify
	must_contain "$OUT" "audit log ok"
}

for r in $(seq "$ROUNDS"); do round "a$r"; done
check $((DEVICES * 20 * ROUNDS))

# The same change set at both processes at the same moment: it is stored
# once, and both answer with the same signed receipt.  The set is one
# the device sent through a proxy that kept it and never passed it on.
kill "$PXPID"
wait "$PXPID" 2> /dev/null || true
proxy --capture "$T/set.http" "$PROXY_PORT"
expect_exit 0 dev d1 beneficiary add "full_name=Станковић Весна" municipality=Tutin status=idp \
	household_size=3 consent=yes
expect_exit 4 dev d1 sync
wait "$PXPID" 2> /dev/null || true
grep -aq "^POST /v1/changesets" "$T/set.http" || fail "the device's set was not captured"
python3 "$FS_SOURCE_DIR/tests/tools/rrproxy.py" --replay "$T/set.http" "${PORTS[@]}" > "$T/replay.out" ||
	fail "replay failed"
python3 - "$T/replay.out" <<'PY' || fail "the two answers differ: $(cat "$T/replay.out")"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 2, lines
answers = [l.split(" ", 1) for l in lines]
assert all(status == "200" for status, _ in answers), answers
receipts = [json.loads(body)["receipt"] for _, body in answers]
assert receipts[0] == receipts[1], "receipts differ"
PY
proxy
expect_exit 0 dev d1 sync
check $((DEVICES * 20 * ROUNDS + 1))

# Two devices edit one household from the same value, and their sets
# reach two processes at the same moment: HQ records the conflict once,
# whichever process merges first.
S=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f7
printf 'id,full_name,municipality,status,household_size,consent\n%s,Stanković Vesna,Tutin,refugee,4,yes\n' \
	"$S" > "$T/caseload.csv"
for d in d1 d2; do
	expect_exit 0 dev "$d" import beneficiaries "$T/caseload.csv"
	expect_exit 0 dev "$d" sync
done
expect_exit 0 dev d1 beneficiary edit "$S" household_size=5
expect_exit 0 dev d2 beneficiary edit "$S" household_size=6
for d in d1 d2; do
	kill "$PXPID" 2> /dev/null || true
	wait "$PXPID" 2> /dev/null || true
	proxy --capture "$T/$d.http" "$PROXY_PORT"
	expect_exit 4 dev "$d" sync
	wait "$PXPID" 2> /dev/null || true
	grep -aq "^POST /v1/changesets" "$T/$d.http" || fail "$d's set was not captured"
done
python3 "$FS_SOURCE_DIR/tests/tools/rrproxy.py" --send "$T/d1.http:${PORTS[0]}" \
	"$T/d2.http:${PORTS[1]}" > "$T/send.out" || fail "send failed"
[ "$(grep -c '^200 ' "$T/send.out")" -eq 2 ] || fail "the two edits were not both taken: $(cat "$T/send.out")"
proxy
for d in d1 d2; do expect_exit 0 dev "$d" sync; done
expect_exit 0 hq conflicts --json
[ "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 1 ] ||
	fail "expected one conflict: $OUT"
must_contain "$OUT" "$S"
check $((DEVICES * 20 * ROUNDS + 2))

# Four processes; one of them killed with kill -9 while devices push.
stop_all
serve 4
round b1 &
RP=$!
kill -9 "${PIDS[1]}"
wait "$RP" || fail "the devices did not get their sets in past a dead process"
check $((DEVICES * 20 * (ROUNDS + 1) + 2))
echo "ok: several serve processes on one PostgreSQL database"
