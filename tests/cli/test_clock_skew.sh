# test_clock_skew.sh - devices whose clocks are years wrong (libfaketime):
# HQ quarantines what a clock far ahead stamps (kept, listed, never
# merged over others), a clock behind learns HQ's time from its receipts
# so its next edits order after what HQ had seen, a skew inside the HLC
# bound merges quietly, and every skew is reported to the device (sync,
# status, log) and in HQ's audit log and journal.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
command -v faketime > /dev/null || fail "faketime is not installed (scripts/deps.sh installs it)"
at_exit 'stop_hq'

# libfaketime is preloaded, so in the ASan build the sanitizer runtime is
# not first in the library list; the check is about interposition order
# and does not apply to a preload that only replaces clock calls.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export FAKETIME_DONT_FAKE_MONOTONIC=1
YEARS3_MS=$((1095 * 86400 * 1000))

# dev NAME OFFSET ARGS...: fieldsync on store $T/NAME with its wall clock
# moved by OFFSET (a faketime offset such as +1095d, or 0).
dev() {
	local name=$1 offset=$2
	shift 2
	if [ "$offset" = 0 ]; then
		"$FIELDSYNC" --data-dir "$T/$name" --forms-dir "$FORMS" --passphrase-file "$PASS" "$@"
	else
		faketime -f "$offset" "$FIELDSYNC" --data-dir "$T/$name" --forms-dir "$FORMS" \
			--passphrase-file "$PASS" "$@"
	fi
}
enrol() { # enrol NAME OFFSET TEAM
	expect_exit 0 dev "$1" "$2" init --kdf interactive
	TOKEN=$(hq enroll-token --team "$3" --municipality Kikinda | tail -n 1)
	expect_exit 0 dev "$1" "$2" enroll "http://127.0.0.1:$PORT" "$TOKEN"
	dev "$1" "$2" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])'
}
# audit_skews DEVICE: the clock_skew_ms of the device's push entries, one a line.
audit_skews() {
	hq audit list --device "$1" --event push --json | python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    items = json.loads(line)
    for e in items if isinstance(items, list) else [items]:
        d = e.get("detail") or {}
        if isinstance(d, str):
            d = json.loads(d) if d else {}
        print(d.get("clock_skew_ms", "none"))'
}

hq_conf
expect_exit 0 hq init
start_hq

# Sanity: faketime really moves the clock this binary reads.
[ "$(faketime -f +1095d date +%Y)" -ge $(($(date +%Y) + 2)) ] || fail "faketime does not move the clock"

printf 'id,full_name,municipality,status,household_size,consent\n0193a1b2-c3d4-7abc-8def-00000000c10c,"Петровић Милица",Kikinda,refugee,4,yes\n' > "$T/caseload.csv"
X=0193a1b2-c3d4-7abc-8def-00000000c10c

AHEAD=$(enrol ahead +1095d "Tim Napred")
BEHIND=$(enrol behind -1095d "Tim Nazad")
RIGHT=$(enrol right 0 "Tim Tačno")
NEAR=$(enrol near +120 "Tim Blizu")

# ---- three years ahead: quarantined, kept, reported --------------------------
expect_exit 0 dev ahead +1095d beneficiary add "full_name=Ђорђевић Јелена" municipality=Kikinda \
	status=idp household_size=2 consent=yes
expect_exit 0 dev ahead +1095d sync
must_contain "$OUT" "quarantined at HQ"
must_contain "$OUT" "warning: this device's clock is 1095 d 0 h ahead of HQ"
must_contain "$OUT" "quarantines changes stamped more than 5 min ahead"
must_not_contain "$OUT$ERR" "Ђорђевић"
expect_exit 0 dev ahead +1095d status
must_contain "$OUT" "clock       1095 d 0 h ahead of HQ"
must_contain "$OUT" "warning     this device's clock is 1095 d 0 h ahead of HQ"
expect_exit 0 dev ahead +1095d log
must_contain "$OUT" "1095 d 0 h ahead of HQ"
expect_exit 0 dev ahead +1095d status --json
skew=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["clock_skew_ms"]))')
[ "$skew" -gt $((YEARS3_MS - 60000)) ] && [ "$skew" -lt $((YEARS3_MS + 60000)) ] ||
	fail "device measured a skew of $skew ms, expected about +$YEARS3_MS"
# Nothing of it merged; all of it kept at HQ with the reason.
[ "$(hq_count beneficiaries)" -eq 0 ] || fail "changes stamped 3 years ahead were merged"
expect_exit 0 hq quarantine --json
n=$(printf '%s' "$OUT" | python3 -c '
import json, sys
rows = json.load(sys.stdin)
print(sum(1 for r in rows if r["device"] == sys.argv[1] and r["reason"] == "timestamp too far in the future"))' "$AHEAD")
[ "$n" -ge 5 ] || fail "expected the ahead device's 5+ changes in quarantine, found $n: $OUT"
must_not_contain "$OUT" "Ђорђевић"
expect_exit 0 hq quarantine
must_contain "$OUT" "timestamp too far in the future"
# HQ's audit says whose clock, by how much; so does its log.
s=$(audit_skews "$AHEAD" | head -n 1)
[ "$s" != none ] && [ "$s" -gt $((YEARS3_MS - 60000)) ] ||
	fail "HQ's audit entry for the ahead device has clock_skew_ms $s"
grep -q "device $AHEAD: clock is [0-9]* s ahead of HQ's" "$T/hq.log" ||
	fail "HQ's log does not report the ahead device's clock: $(tail -3 "$T/hq.log")"

# The clock is set right.  The first push after that finds the store's
# clock still three years ahead (its next change was stamped so, and is
# quarantined) and sets it back; from then on changes merge.
expect_exit 0 dev ahead 0 beneficiary add "full_name=Ђорђевић Марко" municipality=Kikinda \
	status=idp household_size=3 consent=yes
expect_exit 0 dev ahead 0 sync
must_not_contain "$OUT" "warning"
must_contain "$OUT" "5 quarantined at HQ"
expect_exit 0 dev ahead 0 beneficiary add "full_name=Ђорђевић Ана" municipality=Kikinda \
	status=idp household_size=3 consent=yes
expect_exit 0 dev ahead 0 sync
must_contain "$OUT" "0 quarantined at HQ"
[ "$(hq_count beneficiaries)" -eq 1 ] || fail "after the clock was set right, a new change did not merge"

# Or, right after setting the clock, `status --verify-hq` asks HQ's time
# and sets the store's clock back before anything new is recorded.
AHEAD2=$(enrol ahead2 +30d "Tim Napred 2")
expect_exit 0 dev ahead2 +30d beneficiary add "full_name=Илић Петар" municipality=Kikinda \
	status=idp household_size=1 consent=yes
expect_exit 0 dev ahead2 +30d sync
must_contain "$OUT" "warning: this device's clock is 30 d 0 h ahead of HQ"
expect_exit 0 dev ahead2 0 status --verify-hq
must_contain "$OUT" "clock       within 1 s of HQ"
must_not_contain "$OUT" "warning"
expect_exit 0 dev ahead2 0 beneficiary add "full_name=Илић Марија" municipality=Kikinda \
	status=idp household_size=1 consent=yes
expect_exit 0 dev ahead2 0 sync
must_contain "$OUT" "0 quarantined at HQ"
[ "$(hq_count beneficiaries)" -eq 2 ] || fail "after status --verify-hq, a new change did not merge"

# ---- three years behind: learns HQ's time, later edits win ----------------------
expect_exit 0 dev right 0 import beneficiaries "$T/caseload.csv"
expect_exit 0 dev right 0 sync
must_not_contain "$OUT" "warning"
expect_exit 0 dev right 0 beneficiary edit "$X" household_size=5
expect_exit 0 dev right 0 sync
expect_exit 0 dev behind -1095d import beneficiaries "$T/caseload.csv"
expect_exit 0 dev behind -1095d sync
must_contain "$OUT" "0 quarantined at HQ"
must_contain "$OUT" "warning: this device's clock is 1095 d 0 h behind HQ"
must_contain "$OUT" "new changes are ordered after HQ's time"
s=$(audit_skews "$BEHIND" | head -n 1)
[ "$s" != none ] && [ "$s" -lt $((60000 - YEARS3_MS)) ] ||
	fail "HQ's audit entry for the behind device has clock_skew_ms $s"
# Edited after it had heard from HQ: its clock now runs from HQ's time,
# so this edit orders after the other team's earlier one, and wins.
expect_exit 0 dev behind -1095d beneficiary edit "$X" household_size=7
expect_exit 0 dev behind -1095d sync
hq export beneficiaries --format jsonl > "$T/x.jsonl"
size=$(python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    if o["id"] == sys.argv[2]:
        print(o.get("household_size", o.get("fields", {}).get("household_size")))' "$T/x.jsonl" "$X")
[ "$size" = 7 ] || fail "the behind device's later edit lost to an earlier one (household_size $size)"
[ "$(audit_skews "$RIGHT" | sort -u)" = none ] || fail "a right clock was reported as skewed"

# ---- inside the bound: merged, told, no warning -------------------------------
expect_exit 0 dev near +120 beneficiary add "full_name=Živković Ana" municipality=Kikinda \
	status=refugee household_size=1 consent=yes
expect_exit 0 dev near +120 sync
must_contain "$OUT" "0 quarantined at HQ"
must_not_contain "$OUT" "warning"
expect_exit 0 dev near +120 status
must_contain "$OUT" "ahead of HQ"
must_not_contain "$OUT" "warning"
[ "$(audit_skews "$NEAR" | sort -u)" = none ] || fail "a skew inside the bound was audited"
[ "$(hq_count beneficiaries)" -eq 4 ] || fail "expected 4 merged beneficiaries, HQ has $(hq_count beneficiaries)"

# ---- the header is only a report -------------------------------------------
# A replayed set is a duplicate whatever the header says; a header HQ
# cannot read is ignored, one it can is audited.
sqlite3 "$T/hq/hq.db" "SELECT writefile('$T/set.bin', body) FROM changesets WHERE device = '$RIGHT' AND seq = 1" > /dev/null
[ -s "$T/set.bin" ] || fail "could not read a stored change set"
replay() {
	curl -s -o "$T/replay.out" -w '%{http_code}' -H "Content-Type: application/vnd.fieldsync.changeset" \
		-H "Fieldsync-Time: $1" --data-binary "@$T/set.bin" "http://127.0.0.1:$PORT/v1/changesets"
}
for bad in 99999999999999999999 -5 12abc ""; do
	[ "$(replay "$bad")" = 200 ] || fail "replay with Fieldsync-Time '$bad' was not answered 200"
	grep -q '"clock_skew_ms"' "$T/replay.out" && fail "HQ trusted a Fieldsync-Time of '$bad'"
done
[ "$(replay 1)" = 200 ] || fail "replay with Fieldsync-Time 1 was not answered 200"
grep -q '"clock_skew_ms":-' "$T/replay.out" || fail "HQ did not report a device clock at 1970: $(cat "$T/replay.out")"
[ "$(audit_skews "$RIGHT" | grep -c -- '^-')" -eq 1 ] || fail "the replay's skew is not in HQ's audit"
[ "$(hq_count beneficiaries)" -eq 4 ] || fail "a replay changed HQ's records"

# ---- HQ's own clock ran an hour ahead, then was set right -----------------------
# Devices followed HQ's signed time; HQ measures the future against the
# latest time it signed, so their next changes still merge.
LIBFT=$(dpkg -L libfaketime 2> /dev/null | grep '/libfaketimeMT\.so\.1$' | head -n 1)
[ -n "$LIBFT" ] || fail "libfaketimeMT not found (package libfaketime)"
stop_hq
LD_PRELOAD="$LIBFT" FAKETIME=+1h "$HQ_BIN" -c "$T/hq.conf" serve --listen "127.0.0.1:$PORT" \
	2> "$T/hq.log" &
HQPID=$!
wait_for 30 "HQ under faketime did not start" in_file "$T/hq.log" "listening on"
expect_exit 0 dev right 0 beneficiary add "full_name=Vuković Sara" municipality=Kikinda \
	status=refugee household_size=2 consent=yes
expect_exit 0 dev right 0 sync
must_contain "$OUT" "0 quarantined at HQ"
must_contain "$OUT" "warning: this device's clock is 1 h 0 min behind HQ"
stop_hq
start_hq "$PORT"
expect_exit 0 dev right 0 beneficiary add "full_name=Vuković Luka" municipality=Kikinda \
	status=refugee household_size=2 consent=yes
expect_exit 0 dev right 0 sync
must_contain "$OUT" "0 quarantined at HQ"
[ "$(hq_count beneficiaries)" -eq 6 ] || fail "a change stamped after HQ's own clock ran ahead was not merged"
expect_exit 0 dev right 0 status
must_not_contain "$OUT" "warning"

echo "clock skew: ahead ${skew} ms measured, quarantined $n, behind device's later edit won"
