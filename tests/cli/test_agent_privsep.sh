# test_agent_privsep.sh - the agent's network helper (agent/netproc.h).
# The agent starts it before it loads a key.  It runs confined (no new
# privileges, a seccomp filter, Landlock, nobody when started as root),
# with only its socket and standard error open, and maps no SQLite and
# no store; the agent maps no libcurl and no OpenSSL.  Its memory holds no passphrase and no personal data, while
# the agent's own memory does hold the data (the scan can find it).
# Killed with change sets in flight, it leaves the agent running: the
# agent starts another helper, and every record reaches HQ exactly once.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
# HQ may be stopped (SIGSTOP) when a check fails: let it take the SIGTERM.
at_exit '[ -z "$HQPID" ] || kill -CONT "$HQPID" 2> /dev/null; kill_agent; stop_hq'

hq_conf
hq_and_enrolled_store "Tim Preševo" Preševo
agent_conf "max_changes = 3"
start_agent --passphrase-file "$PASS"

# ---- started before the key, and confined ----------------------------------------
wait_log "network helper (pid [0-9]*) holds no key"
wait_log "store .* unlocked"
helper_pid() { sed -n 's/.*network helper (pid \([0-9]*\)) holds no key.*/\1/p' "$T/agent.log" | tail -n 1; }
NPID=$(helper_pid)
[ "$(ps -o ppid= -p "$NPID" | tr -d ' ')" = "$APID" ] || fail "helper $NPID is not the agent's child"
started=$(grep -n "holds no key" "$T/agent.log" | head -n 1 | cut -d: -f1)
unlocked=$(grep -n "unlocked" "$T/agent.log" | head -n 1 | cut -d: -f1)
[ -n "$unlocked" ] && [ "$started" -lt "$unlocked" ] ||
	fail "the helper did not start before the key was loaded: $(cat "$T/agent.log")"
grep -q "^NoNewPrivs:[[:space:]]1$" "/proc/$NPID/status" || fail "the helper may gain privileges"
grep -q "^Seccomp:[[:space:]]2$" "/proc/$NPID/status" || fail "the helper has no seccomp filter"
if [ "$(id -u)" -eq 0 ]; then
	grep -q "^Uid:[[:space:]]65534[[:space:]]" "/proc/$NPID/status" ||
		fail "started by root, the helper is not nobody: $(grep ^Uid "/proc/$NPID/status")"
fi
fds=$(ls "/proc/$NPID/fd" | sort -n | tr '\n' ' ')
[ "$fds" = "0 1 2 3 " ] || fail "the helper has descriptors beyond its socket: $fds"
grep -q -e libsqlite3 -e store.db "/proc/$NPID/maps" && fail "the helper maps SQLite or the store"
# And the other way round: the process with the key never loads libcurl,
# nor OpenSSL behind it (agent/hqcurl.h).  The helper's own maps show
# the check can see them.
grep -q libcurl "/proc/$NPID/maps" || fail "the helper maps no libcurl: the check below sees nothing"
if grep -q -e libcurl -e libssl -e libcrypto.so "/proc/$APID/maps"; then
	fail "the agent, which holds the key, maps$(grep -o -e 'libcurl[^ ]*' -e 'libssl[^ ]*' \
		-e 'libcrypto.so[^ ]*' "/proc/$APID/maps" | sort -u | sed 's/^/ /' | tr -d '\n')"
fi

# ---- what its memory holds -----------------------------------------------------
NAME_CYR="Ђурђина Шћепановић-Ђокић"
NAME_LAT="Đurđina Šćepanović-Đokić"
expect_exit 0 fa beneficiary add "full_name=$NAME_CYR" municipality=Preševo status=idp \
	household_size=5 consent=yes
expect_exit 0 fa beneficiary add "full_name=$NAME_LAT" municipality=Preševo status=refugee \
	household_size=2 consent=yes
wait_hq_count beneficiaries 2 > /dev/null
# scan PID NEEDLE...: for each needle, how many times its UTF-8 bytes
# occur in the process's readable memory, read in chunks that overlap by
# the longest needle.  Mappings over 1 GiB are a sanitizer's reserved
# shadow, not data, and are skipped.
scan() {
	python3 - "$@" << 'EOF'
import re, sys
pid, needles = sys.argv[1], [n.encode() for n in sys.argv[2:]]
counts, keep, chunk = [0] * len(needles), max(map(len, needles)) - 1, 1 << 22
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        start, end, perms = int(m[1], 16), int(m[2], 16), m[3]
        if perms[0] != "r" or "[vvar]" in line or "[vsyscall]" in line or end - start > 1 << 30:
            continue
        tail = b""
        for at in range(start, end, chunk):
            try:
                mem.seek(at)
                data = tail + mem.read(min(chunk, end - at))
            except OSError:
                tail = b""
                continue
            for i, n in enumerate(needles):
                counts[i] += data.count(n) - tail.count(n)
            tail = data[-keep:] if keep else b""
print(" ".join(map(str, counts)))
EOF
}
secret=$(head -n 1 "$PASS")
url="127.0.0.1:$PORT"
read -r h_pass h_cyr h_lat h_url << EOF
$(scan "$NPID" "$secret" "$NAME_CYR" "$NAME_LAT" "$url")
EOF
read -r a_cyr a_lat << EOF
$(scan "$APID" "$NAME_CYR" "$NAME_LAT")
EOF
echo "helper memory: passphrase $h_pass, names $h_cyr+$h_lat, HQ address $h_url; agent memory: names $a_cyr+$a_lat" >&2
[ "$h_url" -gt 0 ] || fail "the scan found nothing in the helper: it cannot be trusted"
[ $((a_cyr + a_lat)) -gt 0 ] || fail "the scan found no name in the agent: it cannot be trusted"
[ "$h_pass" -eq 0 ] || fail "the helper's memory holds the passphrase"
[ $((h_cyr + h_lat)) -eq 0 ] || fail "the helper's memory holds a beneficiary's name"

# ---- killed mid-push -----------------------------------------------------------
# HQ stopped, so a set stays in flight; the helper is killed while it
# holds the connection to HQ, then HQ goes on.
pushing() {
	fa status --json 2> /dev/null |
		python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["agent"]["pushing"] else 1)'
}
helper_connected() { ss -Htnp state established "( dport = :$PORT )" 2> /dev/null | grep -q "pid=$NPID,"; }
awk 'BEGIN { print "full_name,municipality,status,household_size,consent"
	for (i = 0; i < 60; i++) printf "\"Петровић Марија %d\",Preševo,refugee,3,yes\n", i }' > "$T/batch.csv"
kill -STOP "$HQPID"
expect_exit 0 fa import beneficiaries "$T/batch.csv"
wait_for 60 "the agent did not start pushing: $(fa status --json 2>&1)" pushing
wait_for 60 "the helper did not connect to HQ" helper_connected
kill -9 "$NPID"
wait_log "network helper ended (killed by signal 9)"
kill -0 "$APID" || fail "the agent died with its helper"
kill -CONT "$HQPID"
wait_hq_count beneficiaries 62 > /dev/null
same_once beneficiary beneficiaries
NEW=$(pgrep -P "$APID" -x fieldsync-net || true)
[ -n "$NEW" ] && [ "$NEW" != "$NPID" ] || fail "no new helper after the kill"
grep -q "^Seccomp:[[:space:]]2$" "/proc/$NEW/status" || fail "the new helper has no seccomp filter"
stop_agent
kill -0 "$NEW" 2> /dev/null && fail "the helper outlived the agent"
grep "network helper: " "$T/agent.log" && fail "the helper did not end cleanly with the agent"
echo "ok: privilege separation"
