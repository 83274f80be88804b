# test_import_limits.sh - a CSV with one huge line (no newline), or an
# unclosed quote over many lines, imported through the agent (issue 19,
# item 3): refused early with a clear message and exit 2, with the
# agent's peak memory bounded by the line cap, not by the file, and the
# agent still answering; nothing imported.  A long import runs on the
# agent's worker thread: status answers meanwhile and SIGTERM cancels it.
set -e
. "$(dirname "$0")/lib.sh"
at_exit 'kill_agent'

peak_kib() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status"; }

init_store
agent_conf
start_agent --passphrase-file "$PASS"
expect_exit 0 fa status

# 64 MiB without a newline: a header that never ends.
head -c $((64 * 1024 * 1024)) /dev/zero | tr '\0' 'a' > "$T/huge.csv"
before=$(peak_kib "$APID")
expect_exit 2 fa import beneficiaries "$T/huge.csv"
must_contain "$ERR" "line 1 is longer than 1048576 bytes"
after=$(peak_kib "$APID")
[ $((after - before)) -lt $((16 * 1024)) ] ||
	fail "the agent's peak memory grew by $((after - before)) KiB for one huge line"

# An unclosed quote: short lines, one endless row.
{
	printf 'full_name,municipality,status,household_size,consent\n'
	printf '"Petrović Ana,Tutin,idp,3,yes\n'
	yes 'Јовановић Марко,Sjenica,refugee,4,yes' | head -n 200000
} > "$T/quote.csv"
expect_exit 2 fa import beneficiaries "$T/quote.csv"
must_contain "$ERR" "a row longer than 4194304 bytes (an unclosed quote?)"
must_not_contain "$ERR" "Petrović"

expect_exit 0 fa status --json
must_contain "$OUT" '"records":0'

# ---- a long import runs beside the agent's loop --------------------------------
# 300,000 good rows: the import runs on the worker thread, status is
# answered meanwhile, a write is refused at once (not stalled), and
# SIGTERM cancels the import: nothing of it is kept.
python3 - "$T/big.csv" << 'PY'
import sys
names = ["Ružičić Đorđe", "Ружичић Ђорђе", "Petrović Ana", "Јовановић Марко"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("full_name,municipality,status,household_size,consent\n")
    for i in range(300000):
        f.write("%s %d,Tutin,idp,%d,yes\n" % (names[i % 4], i, 1 + i % 9))
PY
"$FIELDSYNC" import beneficiaries "$T/big.csv" > "$T/import.out" 2> "$T/import.err" &
IPID=$!
wait_for 60 "the import did not start on the worker thread: $(tail -3 "$T/agent.log")" \
	in_file "$T/agent.log" "import: on the worker thread"
expect_exit 0 fa status
kill -0 "$IPID" 2> /dev/null || fail "the import ended before status was answered"
expect_exit 4 fa beneficiary add "full_name=Stanković Ivana" municipality=Tutin status=idp \
	household_size=2 consent=yes
must_contain "$ERR" "an import is running (or a file is being kept); nothing was changed"
kill -0 "$IPID" 2> /dev/null || fail "the import ended before the write was refused"
stop_agent
set +e
wait "$IPID"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the import completed; SIGTERM did not cancel it"
must_contain "$(cat "$T/import.err")" "cancelled"
start_agent --passphrase-file "$PASS"
expect_exit 0 fa status --json
must_contain "$OUT" '"records":0'
echo "ok: import limits"
