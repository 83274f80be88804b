# test_sync.sh - `fieldsync enroll` and `fieldsync sync` end to end against
# the real fieldsync-hq on loopback: every record reaches HQ exactly once,
# a second sync sends nothing, kill -9 at random moments during a long
# sync loses and duplicates nothing, and an unreachable HQ is exit 4.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
ROWS=${FS_SYNC_ROWS:-3000}
at_exit 'stop_hq'

hq_conf

init_store
expect_exit 0 hq init
start_hq
URL="http://127.0.0.1:$PORT"

# ---- enrolment --------------------------------------------------------------
expect_exit 0 fs sync --help
must_contain "$OUT" "--max-changes"
expect_exit 0 fs enroll --help
expect_exit 2 fs sync
must_contain "$ERR" "not enrolled"
expect_exit 0 fs status --json
must_contain "$OUT" '"enrolled":false'

# The team covers Bujanovac and Tutin.
TOKEN=$(hq enroll-token --team "Tim Bujanovac" --municipality Bujanovac --scope "Bujanovac, Tutin" |
	tail -n 1)
MUNI=Bujanovac
case "$TOKEN" in FS1-*) ;; *) fail "enroll-token printed no token" ;; esac
expect_exit 2 fs enroll "$URL" FS1-AAAA
must_contain "$ERR" "malformed"
expect_exit 0 fs enroll "$URL" "$TOKEN"
must_contain "$OUT" "enrolled with HQ at $URL"
must_not_contain "$OUT$ERR" "${TOKEN#FS1-}"
# TOKEN - reads the token from standard input (kept out of ps).
printf '%s\n' "$TOKEN" > "$T/token"
expect_exit 2 sh -c "\"$FIELDSYNC\" --data-dir '$DATA' --forms-dir '$FORMS' --passphrase-file '$PASS' enroll '$URL' - < '$T/token'"
must_contain "$ERR" "already enrolled"
must_not_contain "$ERR" "${TOKEN#FS1-}"
expect_exit 0 fs status --json
must_contain "$OUT" '"enrolled":true'
must_contain "$OUT" '"team":"Tim Bujanovac"'

# ---- records reach HQ exactly once -------------------------------------------
id1=$(add_person "Ružičić Đorđe")
id2=$(add_person "Ружичић Ђорђе" "Бујановац")
id3=$(add_person "Šćepanović Žaklina" "Tutin")
expect_exit 0 fs visit add "beneficiary_id=$id1" visit_date=2026-11-20 visit_type=needs_assessment "notes=Kuća oštećena; потребна помоћ"
expect_exit 0 fs beneficiary edit "$id3" household_size=5
expect_exit 0 fs beneficiary delete "$id2"
expect_exit 0 fs sync
must_contain "$OUT" "sent 1 change sets ("
must_contain "$OUT" "0 quarantined at HQ"
must_not_contain "$OUT$ERR" "Ružičić"
same_once beneficiary beneficiaries
same_once visit visits
hq export beneficiaries --format jsonl > "$T/export1"
grep -q "Ružičić Đorđe" "$T/export1" || fail "Serbian Latin name did not reach HQ intact"
hq export visits --format jsonl > "$T/visits1"
grep -q "потребна помоћ" "$T/visits1" || fail "Cyrillic notes did not reach HQ intact"
expect_exit 0 fs status --json
must_contain "$OUT" '"change_sets_pending":0'
must_contain "$OUT" '"change_sets_sent":1'

# A second sync sends nothing and HQ is unchanged.
expect_exit 0 fs sync
must_contain "$OUT" "sent 0 change sets (0 changes), 0 quarantined at HQ"
hq export beneficiaries --format jsonl > "$T/export2"
cmp -s "$T/export1" "$T/export2" || fail "HQ changed after a sync with nothing to send"

# ---- kill -9 during a long sync ------------------------------------------------
awk -v n="$ROWS" 'BEGIN {
	print "full_name,municipality,status,household_size,consent"
	split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина", names, "|")
	for (i = 1; i <= n; i++)
		printf "\"%s %d\",Tutin,refugee,%d,yes\n", names[i % 4 + 1], i, i % 7 + 1
}' > "$T/many.csv"
expect_exit 0 fs import beneficiaries "$T/many.csv"
# Kill each sync after a random 20-200 ms until one finishes by itself:
# kills land in packing, in flight and between a receipt and the next set.
killed=0
for round in $(seq 40); do
	# The binary itself, not through fs(): $! must be the process
	# that is killed, or the "killed" sync runs on beside the next one.
	"$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$PASS" \
		sync --max-changes 50 > /dev/null 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' $((RANDOM % 180 + 20)))"
	kill -9 "$pid" 2> /dev/null || { wait "$pid" || true; break; }
	killed=$((killed + 1))
	wait "$pid" 2> /dev/null || true
	expect_exit 0 fs check
done
[ "$killed" -gt 1 ] || fail "only $killed syncs were killed; make FS_SYNC_ROWS larger"
echo "killed $killed syncs with kill -9" >&2
expect_exit 0 fs sync --max-changes 50
must_contain "$OUT" "0 quarantined at HQ"
same_once beneficiary beneficiaries
same_once visit visits
expect_exit 0 fs status --json
must_contain "$OUT" '"change_sets_pending":0'
must_contain "$OUT" '"pending_changes":0'
expect_exit 0 fs sync
must_contain "$OUT" "sent 0 change sets"
# The first set went as version 3: the device had not heard from HQ.
# HQ's answer named version 5, so every set after it is one: the agent
# packs its changes in HLC order, which version 5 needs.
hq_set_versions > "$T/versions" || fail "cannot read HQ's change sets"
[ "$(head -n 1 "$T/versions")" = "1 03" ] || fail "set 1: $(head -n 1 "$T/versions")"
[ "$(tail -n +2 "$T/versions" | grep -vc " 05$")" = 0 ] && [ "$(wc -l < "$T/versions")" -gt 2 ] ||
	fail "of $(wc -l < "$T/versions") sets after the first, $(tail -n +2 "$T/versions" | grep -vc " 05$") are not version 5"

# HQ tells devices only a version it can be asked for.
printf '[server]\ndevice_changeset_version = 2\n' >> "$T/bad_version.conf"
cat "$T/hq.conf" "$T/bad_version.conf" > "$T/hq_bad.conf"
expect_exit 1 "$HQ_BIN" -c "$T/hq_bad.conf" devices
must_contain "$ERR" "[server] device_changeset_version (2) must be from 3 to 5"

# ---- HQ unreachable -------------------------------------------------------------
stop_hq
add_person "Petrović Marija" > /dev/null
expect_exit 4 fs sync
must_contain "$ERR" "unreachable"
must_contain "$ERR" "$URL"
must_not_contain "$ERR" "Petrović"
expect_exit 0 fs status --json
must_contain "$OUT" '"change_sets_pending":1'

# HQ back: the waiting set goes through.  An http_proxy in the
# environment must not capture plain http to a loopback HQ.
start_hq "$PORT"
export http_proxy=http://127.0.0.1:9
expect_exit 0 fs sync
unset http_proxy
must_contain "$OUT" "sent 1 change sets"
same_once beneficiary beneficiaries

# A household outside the team's scope is kept on the device but not
# merged at HQ, and the device is told why.
expect_exit 0 hq devices
must_contain "$OUT" "Bujanovac, Tutin"
add_person "Stojanović Jelena" Sjenica > /dev/null
expect_exit 0 fs sync
must_contain "$OUT" "5 quarantined at HQ"
expect_exit 0 hq quarantine
must_contain "$OUT" "outside the device's scope"
must_not_contain "$OUT" "Stojanović"
hq export beneficiaries --format jsonl > "$T/export2"
! grep -q "Stojanović" "$T/export2" || fail "a household outside the scope was merged"

# A revoked device is refused with exit 2 and the word "revoked".
DEVICE=$(fs status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])')
expect_exit 0 hq revoke "$DEVICE"
add_person "Jovanović Milica" > /dev/null
expect_exit 2 fs sync
must_contain "$ERR" "revoked"
must_not_contain "$ERR" "Jovanović"
echo "ok: sync end to end"
