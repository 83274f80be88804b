#!/bin/sh
# demo.sh BUILD_DIR - the main job end to end on loopback, narrated:
#   1. HQ starts;
#   2. two teams (Sremska Mitrovica and Bujanovac) start their agents
#      and enrol;
#   3. HQ goes down; both teams record beneficiaries and visits offline,
#      and both edit one shared caseload record;
#   4. HQ comes back, and both agents push on their own;
#   5. HQ exports the merged records, shows the conflict, and an
#      administrator resolves it;
#   6. HQ's event log beside each team's sync log.
# Everything it starts is stopped at the end.  Run by `make demo`.
# The agents run with the built-in defaults; only where files live is
# configured.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FS="$ROOT/$BUILD/fieldsync"
HQ="$ROOT/$BUILD/fieldsync-hq"
DEMO="$ROOT/demo-data"
TEAMS="sremska-mitrovica bujanovac"

say() { printf '\n==> %s\n' "$*"; }
now_ms() { date +%s%3N; }

# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds; after
# SECONDS say what did not happen and stop.
wait_until() {
	limit=$(($1 * 1000))
	what=$2
	shift 2
	t0=$(now_ms)
	until "$@"; do
		if [ $(($(now_ms) - t0)) -gt "$limit" ]; then
			echo "demo: $what after $((limit / 1000)) s" >&2
			exit 1
		fi
		sleep 0.1
	done
}

HQ_PID=""
PIDS=""
stop_hq() {
	if [ -n "$HQ_PID" ]; then
		kill "$HQ_PID" 2> /dev/null || true
		wait "$HQ_PID" 2> /dev/null || true
		HQ_PID=""
	fi
}
stop_all() {
	for p in $PIDS; do kill "$p" 2> /dev/null || true; done
	for p in $PIDS; do wait "$p" 2> /dev/null || true; done
	PIDS=""
	stop_hq
}
trap stop_all EXIT INT TERM

rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 700 "$DEMO"

# team NAME ARGS...: fieldsync for that team's laptop.  No store options
# on the command line, so every command goes through its agent.
team() {
	t=$1
	shift
	FIELDSYNC_CONFIG="$DEMO/$t/agent.conf" "$FS" "$@"
}

printf '[store]\ndata_dir = %s/hq\n[console]\nlisten = 127.0.0.1:0\n' "$DEMO" > "$DEMO/hq.conf"
hq() { "$HQ" -c "$DEMO/hq.conf" "$@"; }

# start_hq [PORT]: serve on loopback; sets PORT.
start_hq() {
	: > "$DEMO/hq.log"
	"$HQ" -c "$DEMO/hq.conf" serve --listen "127.0.0.1:${1:-0}" 2>> "$DEMO/hq.log" &
	HQ_PID=$!
	wait_until 60 "HQ did not start (see $DEMO/hq.log)" grep -q "listening on" "$DEMO/hq.log"
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DEMO/hq.log" | head -n 1)
	[ -n "$PORT" ] || { cat "$DEMO/hq.log" >&2; exit 1; }
}

say "1. Headquarters creates its keys, an administrator's account, and starts its sync server on loopback"
hq init
printf 'demo-admin-lozinka\n' > "$DEMO/admin-password"
chmod 600 "$DEMO/admin-password"
hq user add admin --role admin --password-file "$DEMO/admin-password"
start_hq
URL="http://127.0.0.1:$PORT"
echo "HQ at $URL"
wait_until 60 "HQ's console did not start (see $DEMO/hq.log)" grep -q "console on" "$DEMO/hq.log"
echo "HQ's console at $(sed -n 's/.*console on \(http[^ ]*\).*/\1/p' "$DEMO/hq.log" | head -n 1)" \
	"(account admin, password in $DEMO/admin-password)"

say "2. Two field teams set up their laptops: an encrypted store, an agent, enrolment"
for t in $TEAMS; do
	mkdir -p "$DEMO/$t"
	printf 'demo-lozinka-%s\n' "$t" > "$DEMO/$t/passphrase"
	chmod 600 "$DEMO/$t/passphrase"
	cat > "$DEMO/$t/agent.conf" <<EOF
[store]
data_dir = $DEMO/$t/store
passphrase_file = $DEMO/$t/passphrase
kdf_profile = interactive
[agent]
socket = $DEMO/$t/agent.sock
[web]
listen = 127.0.0.1:0
EOF
	team "$t" init
	FIELDSYNC_CONFIG="$DEMO/$t/agent.conf" "$FS" agent 2> "$DEMO/$t/agent.log" &
	PIDS="$PIDS $!"
done
for t in $TEAMS; do
	wait_until 60 "the $t agent did not start (see $DEMO/$t/agent.log)" test -S "$DEMO/$t/agent.sock"
	# Each laptop's field app, on a port the kernel picked (two agents
	# share this machine); a browser on it would open this address.
	wait_until 60 "the $t agent did not serve its field app (see $DEMO/$t/agent.log)" \
		grep -q "field app on" "$DEMO/$t/agent.log"
	echo "$t: field app at $(sed -n 's/.*field app on \(http[^ ]*\).*/\1/p' "$DEMO/$t/agent.log")"
done
for t in $TEAMS; do
	case $t in
	sremska-mitrovica) name="Tim Sremska Mitrovica"; muni="Sremska Mitrovica" ;;
	*) name="Tim Bujanovac"; muni="Bujanovac" ;;
	esac
	# Each team writes its own municipality and Preševo, which both cover.
	hq enroll-token --team "$name" --municipality "$muni" --scope "$muni, Preševo" |
		tail -n 1 > "$DEMO/token"
	team "$t" enroll "$URL" - < "$DEMO/token"
	rm -f "$DEMO/token"
done
echo "Each agent holds its store key; commands below go through it, no passphrase typed."
echo "Each team may write the households of its scope; HQ quarantines anything else:"
hq devices

say "HQ goes offline (its server stops); the teams keep working"
stop_hq

say "3. Both teams load HQ's shared caseload list, then record offline"
# The same household is on both teams' lists, with the same id.
cat > "$DEMO/caseload.csv" <<'EOF'
id,full_name,municipality,status,household_size,consent
01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f7,Stanković Vesna,Preševo,refugee,4,yes
EOF
shared=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f7
for t in $TEAMS; do team "$t" import beneficiaries "$DEMO/caseload.csv"; done
sm=$(team sremska-mitrovica beneficiary add "full_name=Ružičić Đorđe" \
	"municipality=Sremska Mitrovica" status=idp household_size=5 \
	vulnerabilities=elderly,disability consent=yes | tail -n 1)
bu=$(team bujanovac beneficiary add "full_name=Ђорђевић Милица" "municipality=Бујановац" \
	status=refugee household_size=3 consent=yes | tail -n 1)
team sremska-mitrovica visit add "beneficiary_id=$sm" visit_date=2026-11-20 \
	visit_type=prefab_installation "notes=Montaža montažne kuće, faza 2" > /dev/null
team bujanovac visit add "beneficiary_id=$bu" visit_date=2026-11-21 \
	visit_type=legal_assistance "notes=Помоћ око личних докумената" > /dev/null
echo "Both teams visit the shared household and correct its size, unaware of each other:"
team sremska-mitrovica beneficiary edit "$shared" household_size=5
sleep 0.01
team bujanovac beneficiary edit "$shared" household_size=6
team bujanovac visit add "beneficiary_id=$shared" visit_date=2026-11-22 \
	visit_type=needs_assessment "notes=Porodica proširena; доселила се бака" > /dev/null
tried() { team "$1" status --json | grep -q '"last_error":"HQ unreachable'; }
for t in $TEAMS; do wait_until 60 "the $t agent never tried HQ" tried "$t"; done
say "What the teams recorded offline (each laptop's own store)"
for t in $TEAMS; do
	echo "--- $t: beneficiaries"
	team "$t" beneficiary list
	echo "--- $t: visits"
	team "$t" visit list
done
say "Each agent has tried HQ, failed, and is retrying with backoff (Sremska Mitrovica):"
team sremska-mitrovica status

say "4. HQ comes back on the same address; nobody types a command"
up=$(now_ms)
start_hq "$PORT"
# Watch the laptops, not HQ: every HQ command is itself audited.
pending() { team "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending_changes"])'; }
all_sent() { [ "$(pending sremska-mitrovica)" -eq 0 ] && [ "$(pending bujanovac)" -eq 0 ]; }
wait_until 120 "changes still pending after HQ came back" all_sent
echo "Both agents pushed on their own: HQ acknowledged everything $(($(now_ms) - up)) ms after it came back."

say "5. HQ's merged view (CSV, opens in LibreOffice) and the visits (JSON Lines)"
hq export beneficiaries --format csv
hq export visits --format jsonl
say "The concurrent edit of the shared household: both edits are kept in HQ's record of it,"
echo "and the later one wins, the same on every replica whatever order the sets arrived in:"
hq conflicts
say "Who changed whose households: deletes, and edits by a team other than the one that"
echo "registered the household (the first to write it).  Values are not shown:"
hq review
say "An administrator asks both teams and keeps the earlier size (in HQ's console, or here):"
CID=$(hq conflicts --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
hq resolve "$CID" --keep a
echo "HQ writes it as its own edit, later than both, so the laptops take it with their next"
echo "pull; the audit log records who chose which side, not the value."

say "6. Two-way sync: each laptop receives what HQ merged for its scope"
for t in $TEAMS; do team "$t" pull; done
echo "Sremska Mitrovica's laptop now holds Bujanovac's visit to the shared household (Preševo is"
echo "in both scopes) and HQ's merged size, and it is told which edit won; values stay on the laptop:"
team sremska-mitrovica visit list
team sremska-mitrovica beneficiary show "$shared"
team sremska-mitrovica conflicts
echo "The forms it validates with from now on are HQ's, published and signed by HQ:"
team sremska-mitrovica forms
echo "Bujanovac's own household (Bujanovac is not in Sremska Mitrovica's scope) never reached it:"
if team sremska-mitrovica beneficiary list | grep -q "Ђорђевић Милица"; then
	echo "LEAK: Bujanovac's household reached Sremska Mitrovica" >&2
	exit 1
fi
echo "  not there."

say "7. HQ's audit log: every enrolment and change set, hash-chained in a Merkle tree"
hq audit list
say "HQ signs the tree head as a C2SP checkpoint; verify recomputes every hash and signature"
echo "A checkpoint proves that the log held exactly these entries when HQ signed it: anyone who"
echo "keeps a copy can later show that no entry up to it was changed, removed or reordered."
hq audit checkpoint
hq audit verify
for t in $TEAMS; do
	say "Sync log of $t, in the same time format"
	team "$t" log
done

say "Nothing readable on a laptop's disk: grep for the names and the SQLite header"
for word in "Ružičić" "Ђорђевић" "Stanković" "SQLite format 3"; do
	for t in $TEAMS; do
		if grep -r -a -q -F "$word" "$DEMO/$t/store"; then
			echo "FOUND '$word' in the clear in $t's store" >&2
			exit 1
		fi
	done
	echo "  '$word': not found"
done

stop_all
say "Done.  Everything started has stopped."
echo "Files: HQ in $DEMO/hq (log $DEMO/hq.log); each team in $DEMO/<team>/"
echo "(store/, agent.conf, agent.log, and a demo-only passphrase file)."
echo "Remove the demo with: rm -rf $DEMO"
