# test_disk_full.sh - a full disk and a read-only data directory, on small
# tmpfs mounts in a private mount namespace (unshare -rm): every write
# that said OK survives and reaches HQ exactly once, every write that
# failed says "the disk is full" or "read-only" and left nothing behind,
# and everything works again once there is room.  HQ's disk filling up is
# 503 with Retry-After to the device, which keeps its changes and
# delivers them once HQ has room.
set -e
if [ "${FS_IN_MNTNS:-}" != 1 ]; then
	command -v unshare > /dev/null || { echo "FAIL: unshare (util-linux) is needed" >&2; exit 1; }
	FS_IN_MNTNS=1 exec unshare -rm bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'kill_agent; stop_hq; umount "$T/small" "$T/hq" 2> /dev/null'

mkdir -p "$T/small" "$T/hq"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$T/small"
mount -t tmpfs -o size=8m,mode=0700 tmpfs "$T/hq"
DATA="$T/small/data"

# fill DIR: write zeros until the filesystem is full.
fill() { dd if=/dev/zero of="$1/filler" bs=16k 2> /dev/null || true; }
# ok_ids: ids of the adds that said OK, sorted.
ok_ids() { sort "$T/ok.ids"; }
: > "$T/ok.ids"
# add NAME: add through the agent; records the id when it said OK.
add() {
	local id
	set +e
	fa beneficiary add "full_name=$1" municipality=Kikinda status=refugee household_size=2 \
		consent=yes > "$T/add.out" 2> "$T/add.err"
	ADD_RC=$?
	set -e
	[ "$ADD_RC" -ne 0 ] || tail -n 1 "$T/add.out" >> "$T/ok.ids"
}
live_count() { fa beneficiary list --json | wc -l; }

hq_conf
hq_and_enrolled_store "Tim Kikinda" Kikinda
agent_conf
start_agent --passphrase-file "$PASS"
for i in 1 2 3; do add "Petrović Milica $i"; [ "$ADD_RC" -eq 0 ] || fail "add $i failed: $(cat "$T/add.err")"; done
wait_hq_count beneficiaries 3 > /dev/null

# ---- the device's disk fills up ---------------------------------------------
fill "$T/small"
# The WAL reuses its file, so the first writes may still fit: write until
# one is refused, and that refusal must say why.
for i in $(seq 400); do
	add "Јовановић Јован $i"
	[ "$ADD_RC" -eq 0 ] || break
done
[ "$ADD_RC" -eq 4 ] || fail "400 adds on a full disk never failed (last exit $ADD_RC)"
must_contain "$(cat "$T/add.err")" "the disk is full"
must_contain "$(cat "$T/add.err")" "nothing was changed"
must_not_contain "$(cat "$T/add.err")" "Јовановић"
# An import is one transaction: all of it or none.
before=$(live_count)
awk 'BEGIN { print "full_name,municipality,status,household_size,consent"
	for (i = 0; i < 500; i++) printf "\"Ђорђевић Ана %d\",Kikinda,refugee,2,yes\n", i }' > "$T/caseload.csv"
expect_exit 4 fa import beneficiaries "$T/caseload.csv"
must_contain "$ERR" "the disk is full"
[ "$(live_count)" -eq "$before" ] || fail "a failed import left $(($(live_count) - before)) records"
# Reading still works through the agent, which holds the store open.
expect_exit 0 fa status
[ "$(live_count)" -eq "$(wc -l < "$T/ok.ids")" ] || fail "the device lost a record it had said OK to"
kill -0 "$APID" || fail "the agent died of a full disk"

# ---- room again ----------------------------------------------------------------
rm "$T/small/filler"
add "Šćepanović Žaklina"
[ "$ADD_RC" -eq 0 ] || fail "add after freeing space failed: $(cat "$T/add.err")"
expect_exit 0 fa import beneficiaries "$T/caseload.csv"
wait_hq_count beneficiaries $(($(wc -l < "$T/ok.ids") + 500)) 60 > /dev/null
same_once beneficiary beneficiaries
ok_ids > "$T/ok.sorted"
export_ids beneficiaries > "$T/hq.ids"
[ -z "$(comm -23 "$T/ok.sorted" "$T/hq.ids")" ] || fail "a record the device said OK to is not at HQ"
expect_exit 0 fs check

# ---- a read-only data directory -------------------------------------------------
stop_agent
mount -o remount,ro "$T/small"
expect_exit 4 fs beneficiary add "full_name=Milošević Ana" municipality=Kikinda status=refugee \
	household_size=1 consent=yes
must_contain "$ERR" "read-only"
must_not_contain "$ERR" "Milošević"
expect_exit 4 fs status
must_contain "$ERR" "the file system is read-only"
mount -o remount,rw "$T/small"
expect_exit 0 fs beneficiary add "full_name=Milošević Ana" municipality=Kikinda status=refugee \
	household_size=1 consent=yes
expect_exit 0 fs check

# ---- HQ's disk fills up ------------------------------------------------------------
start_agent --passphrase-file "$PASS"
wait_hq_count beneficiaries $(($(wc -l < "$T/ok.ids") + 501)) > /dev/null
fill "$T/hq"
for i in $(seq 40); do
	add "Stojanović Marko $i"
	[ "$ADD_RC" -eq 0 ] || fail "add on the device failed while HQ's disk was full: $(cat "$T/add.err")"
done
expect_exit 0 fa import beneficiaries "$T/caseload.csv"
until_ok 60 in_file "$T/hq.log" "fieldsync-hq: .*the disk is full" ||
	fail "HQ did not report its full disk: $(tail -3 "$T/hq.log")"
# The device was told to come back later, and kept everything.
log_says() { fa log | grep -q "$1"; }
wait_for 60 "the device's log never said HQ's disk is full" log_says "HQ's disk is full"
expect_exit 0 fa log
must_contain "$OUT" "HQ's disk is full"
expect_exit 0 fa status
must_contain "$OUT" "waiting to be sent"
rm "$T/hq/filler"
wait_hq_count beneficiaries $(($(wc -l < "$T/ok.ids") + 1001)) 120 > /dev/null
same_once beneficiary beneficiaries
expect_exit 0 hq audit verify
stop_agent
must_not_contain "$(cat "$T/agent.log" "$T/hq.log")" "Stojanović"
echo "disk full: $(wc -l < "$T/ok.ids") adds said OK, all at HQ once; read-only refused clearly"
