# test_disk_full_offline.sh - the device's disk fills up while HQ is down,
# then HQ comes back: every record the device said OK to reaches HQ
# exactly once, although the disk is still full.  Recording HQ's receipts,
# packing the next set and checkpointing the WAL all need a little disk;
# the room the store keeps in reserve (agent/reserve.h) is what pays for
# them, and packing only what the push in progress needs keeps pending
# changes from being stored twice while HQ is away.
set -e
if [ "${FS_IN_MNTNS:-}" != 1 ]; then
	command -v unshare > /dev/null || { echo "FAIL: unshare (util-linux) is needed" >&2; exit 1; }
	FS_IN_MNTNS=1 exec unshare -rm bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'kill_agent; stop_hq; umount "$T/small" 2> /dev/null'

mkdir -p "$T/small"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$T/small"
DATA="$T/small/data"
# Another program's file, freed at the end with the fillers: delivering on
# a full disk spends the store's reserve on receipts and the sync log, so
# recording again needs more room than the fillers alone give back (the
# store says so: "free some space"); how much more varies with timing.
dd if=/dev/zero of="$T/small/spare" bs=1k count=1024 2> /dev/null

# csv N FIRST: N synthetic beneficiaries, numbered from FIRST.
csv() {
	awk -v n="$1" -v first="$2" 'BEGIN {
		print "full_name,municipality,status,household_size,consent"
		split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина", names, "|")
		for (i = first; i < first + n; i++)
			printf "\"%s %d\",Tutin,idp,%d,yes\n", names[i % 4 + 1], i, i % 7 + 1
	}' > "$T/batch.csv"
}

hq_conf
hq_and_enrolled_store "Tim Tutin" Tutin
agent_conf
start_agent --passphrase-file "$PASS"
csv 20 1
expect_exit 0 fa import beneficiaries "$T/batch.csv"
wait_hq_count beneficiaries 20 > /dev/null

# ---- HQ goes away; the team keeps recording until the disk is full ------------
stop_hq
imports=0
for i in $(seq 200); do
	csv 100 $((i * 1000))
	set +e
	fa import beneficiaries "$T/batch.csv" > "$T/imp.out" 2> "$T/imp.err"
	rc=$?
	set -e
	[ "$rc" -eq 0 ] || break
	imports=$((imports + 1))
done
[ "$rc" -eq 4 ] || fail "200 imports on a 4 MiB disk never failed (last exit $rc)"
must_contain "$(cat "$T/imp.err")" "the disk is full"
# Single adds use up whatever the imports left.
for i in $(seq 400); do
	set +e
	fa beneficiary add "full_name=Ђорђевић Ана $i" municipality=Tutin status=idp \
		household_size=2 consent=yes > "$T/add.out" 2> "$T/add.err"
	rc=$?
	set -e
	[ "$rc" -eq 0 ] || break
done
[ "$rc" -eq 4 ] || fail "400 adds on a full disk never failed (last exit $rc)"
must_contain "$(cat "$T/add.err")" "the disk is full"
must_not_contain "$(cat "$T/add.err")" "Ђорђевић"
# Whatever is left goes to another program's file.
dd if=/dev/zero of="$T/small/filler" bs=4k 2> /dev/null || true
recorded=$(fa beneficiary list --json | wc -l)
[ "$recorded" -gt $((20 + imports * 100)) ] || [ "$imports" -gt 0 ] ||
	fail "the disk filled before a single import"
echo "recorded $recorded beneficiaries ($imports imports) before the disk was full" >&2
expect_exit 0 fa status
must_contain "$OUT" "disk"

# ---- the laptop restarts with its disk still full ---------------------------------
# Opening the store makes its WAL and index again, which needs room: the
# agent must still open it, to deliver what it holds.
stop_agent
# What the stop freed (its WAL) goes to the other program too.
dd if=/dev/zero of="$T/small/filler2" bs=1k 2> /dev/null || true
start_agent --passphrase-file "$PASS"
expect_exit 0 fa status
must_contain "$OUT" "store unlocked"
[ "$(fa beneficiary list --json | wc -l)" -eq "$recorded" ] || fail "records changed across the restart"

# ---- HQ comes back: everything recorded reaches it, the disk still full ---------
start_hq "$PORT"
wait_hq_count beneficiaries "$recorded" 120 > /dev/null
same_once beneficiary beneficiaries
nothing_pending() { fa status --json | grep -q '"pending_changes":0'; }
wait_for 60 "changes still pending after HQ has them all" nothing_pending
[ -f "$T/small/filler" ] || fail "the filler went away"
expect_exit 0 fa log
must_not_contain "$OUT" "Ђорђевић"

# ---- room again: recording works and arrives ------------------------------------
rm "$T/small/filler" "$T/small/filler2" "$T/small/spare"
# The agent's last attempt may still be ending (its checkpoint gives the
# WAL's room back, then it takes the reserve back): wait until status no
# longer says the disk is full, as a field worker would.
room_again() { fa status --json | grep -q '"disk_full":false'; }
wait_for 60 "the disk stayed full after the fillers went: $(fa status)" room_again
expect_exit 0 fa beneficiary add "full_name=Šćepanović Žaklina" municipality=Tutin status=idp \
	household_size=1 consent=yes
wait_hq_count beneficiaries $((recorded + 1)) > /dev/null
same_once beneficiary beneficiaries
expect_exit 0 hq audit verify
stop_agent
expect_exit 0 fs check
must_not_contain "$(cat "$T/agent.log" "$T/hq.log")" "Ružičić"
echo "disk full while HQ was down: $recorded records said OK, all at HQ once"
