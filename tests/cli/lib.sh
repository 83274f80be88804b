# lib.sh - shared helpers for the command-line tests (sourced, bash).
#
# Each test gets a fresh directory, a hermetic empty config (so a real
# /etc/fieldsync/agent.conf on the machine cannot leak in) and the forms
# from the source tree.  Helpers fail the test with a message on stderr.

set -u
: "${FIELDSYNC:?FIELDSYNC must point to the fieldsync binary}"
: "${FS_SOURCE_DIR:?FS_SOURCE_DIR must point to the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/fscli.XXXXXX")

# at_exit CMD: what this test stops when it ends, however it ends (its
# agent, HQ, a proxy).  After it, a PostgreSQL the test started stops
# (tests/cli/pg.sh), and the test's directory goes last.
AT_EXIT=
at_exit() { AT_EXIT=$1; }
lib_exit() {
	# Under set -e, a clean-up that finds nothing left to stop must not
	# cut the rest short.
	if [ -n "$AT_EXIT" ]; then eval "$AT_EXIT" || true; fi
	if declare -F pg_stop > /dev/null; then pg_stop; fi
	rm -rf "$T"
}
trap lib_exit EXIT
export FIELDSYNC_CONFIG="$T/agent.conf"
# The field app on a port the kernel picks: tests run side by side.
printf '[web]\nlisten = 127.0.0.1:0\n' > "$FIELDSYNC_CONFIG"
DATA="$T/data"
FORMS="$FS_SOURCE_DIR/conf/forms"
PASS="$T/pass"
printf 'test-lozinka-%s\n' "$$" > "$PASS"
chmod 600 "$PASS"

fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- waiting on events ----------------------------------------------------
# Tests wait for something to happen (a log line, a count, a socket), never
# for a time to pass.  Each wait still has a limit so that a hung program
# fails the test instead of hanging it; limits are generous and multiplied
# by FS_TEST_TIMEOUT_SCALE (tests/CMakeLists.txt sets it higher for the
# sanitizer build), so a loaded machine or a slow build is not a failure.
SCALE=${FS_TEST_TIMEOUT_SCALE:-1}
case "$SCALE" in '' | *[!0-9]*) fail "FS_TEST_TIMEOUT_SCALE must be a whole number, not '$SCALE'" ;; esac
[ "$SCALE" -ge 1 ] || SCALE=1

# until_ok SECONDS CMD...: run CMD until it succeeds, 50 ms apart at first
# and backing off to 500 ms (a probe such as an HQ export is work that
# competes with what it waits for); returns 1 once SECONDS (scaled) have
# passed without success.
until_ok() {
	local limit=$(($1 * SCALE * 1000)) start pause=50
	shift
	start=$(date +%s%3N)
	until "$@"; do
		[ $(($(date +%s%3N) - start)) -lt "$limit" ] || return 1
		sleep "$(printf '0.%03d' "$pause")"
		[ "$pause" -ge 500 ] || pause=$((pause * 2 > 500 ? 500 : pause * 2))
	done
}

# wait_for SECONDS WHAT CMD...: until_ok, failing the test with "WHAT"
# (after SECONDS, scaled) when CMD never succeeds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	until_ok "$secs" "$@" || fail "$what (waited $((secs * SCALE)) s)"
}

# in_file FILE PATTERN: FILE has a line matching the grep pattern.
in_file() { grep -q -- "$2" "$1" 2> /dev/null; }

# fs ARGS...: run fieldsync on the test store with the passphrase file.
fs() { "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$PASS" "$@"; }

# expect_exit CODE CMD...: run CMD, require exit CODE; output in $OUT, $ERR.
expect_exit() {
	local want=$1 got
	shift
	set +e
	"$@" > "$T/out" 2> "$T/err"
	got=$?
	set -e
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want; stderr: $ERR"
}

contains() { case "$1" in *"$2"*) return 0 ;; esac; return 1; }
must_contain() { contains "$1" "$2" || fail "expected \"$2\" in: $1"; }
must_not_contain() { ! contains "$1" "$2" || fail "did not expect \"$2\" in: $1"; }

init_store() { expect_exit 0 fs init --kdf interactive; }

# add_person NAME [MUNICIPALITY]: add a beneficiary, print its id.  The
# municipality defaults to $MUNI, the one the store was enrolled for.
MUNI="Sremska Mitrovica"
add_person() {
	fs beneficiary add "full_name=$1" "municipality=${2:-$MUNI}" status=refugee \
		household_size=3 consent=yes | tail -n 1
}

# ---- HQ on loopback, for the sync tests ----------------------------------
# Callers write "$T/hq.conf" first.  start_hq [PORT] serves on PORT or a
# random loopback port and sets PORT and HQPID; stop_hq stops it.

HQ_BIN="$(dirname "$FIELDSYNC")/fieldsync-hq"

# hq_conf: a hermetic hq.conf for HQ's data in $T/hq.
# hq_conf: HQ's config.  With FS_HQ_BACKEND=postgresql (CTest runs the HQ
# tests that way too), HQ's data goes to a real PostgreSQL that this
# test starts (tests/cli/pg.sh), a new database for each hq_conf; its
# keys stay in $T/hq.
hq_conf() {
	if [ "${FS_HQ_BACKEND:-sqlite}" = postgresql ]; then
		[ -n "${PG_PORT:-}" ] || pg_start
		PG_DBS=$((${PG_DBS:-0} + 1))
		pg_psql "CREATE DATABASE fieldsync_$PG_DBS OWNER hq" || fail "create database"
		printf '[store]\ndata_dir = %s/hq\nbackend = postgresql\npostgresql = %s\npostgresql_password_file = %s\n[forms]\ndir = %s\n[console]\nlisten = 127.0.0.1:0\n' \
			"$T" "${PG_CONNINFO/dbname=fieldsync/dbname=fieldsync_$PG_DBS}" "$PG_PASSFILE" "$FORMS" > "$T/hq.conf"
		return
	fi
	printf '[store]\ndata_dir = %s/hq\n[forms]\ndir = %s\n[console]\nlisten = 127.0.0.1:0\n' "$T" "$FORMS" > "$T/hq.conf"
}
if [ "${FS_HQ_BACKEND:-sqlite}" = postgresql ]; then
	. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
fi
HQPID=
hq() { "$HQ_BIN" -c "$T/hq.conf" "$@"; }
# hq_set_versions: "SEQ VERSION" (version in hex) of each change set HQ
# holds, from its database, in sequence order.
hq_set_versions() {
	if [ "${FS_HQ_BACKEND:-sqlite}" = postgresql ]; then
		pg_as "$PG_BIN/psql" -X -q -At -F ' ' -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" \
			-U pgadmin -d "fieldsync_$PG_DBS" \
			-c "SELECT seq, encode(substring(body from 5 for 1), 'hex') FROM changesets ORDER BY seq"
	else
		sqlite3 -separator ' ' "$T/hq/hq.db" \
			"SELECT seq, lower(hex(substr(body, 5, 1))) FROM changesets ORDER BY seq"
	fi
}

stop_hq() {
	if [ -n "$HQPID" ]; then
		kill "$HQPID" 2> /dev/null || true
		wait "$HQPID" 2> /dev/null || true
		HQPID=
	fi
}

# hq_up: HQ has said it listens, or has exited (start_hq tells which).
# port_of LOG: the port the last "listening on 127.0.0.1:PORT" line of LOG
# names (HQ, the proxies: port 0 asks the kernel for one).
port_of() { sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1" | tail -n 1; }

hq_up() { in_file "$T/hq.log" "listening on 127.0.0.1:" || ! kill -0 "$HQPID" 2> /dev/null; }

# The clock seam: with HQ_CLOCK_FILE set, start_hq runs HQ under
# libfaketime reading its offset from that file at every call (write
# "+25h" to it and HQ's wall clock is 25 hours ahead from then on; its
# monotonic clock, which times sessions, is left alone).  exec keeps $!
# the server's pid.
hq_clock_env() {
	local lib
	lib=$(dpkg -L libfaketime 2> /dev/null | grep '/libfaketimeMT\.so\.1$' | head -n 1)
	[ -n "$lib" ] || fail "libfaketimeMT not found (package libfaketime, scripts/deps.sh)"
	[ -f "$HQ_CLOCK_FILE" ] || printf '+0\n' > "$HQ_CLOCK_FILE"
	# The preload is not first in the list; ASan's check of that order
	# is about interposed allocators, not clock calls.
	exec env LD_PRELOAD="$lib" FAKETIME_TIMESTAMP_FILE="$HQ_CLOCK_FILE" FAKETIME_NO_CACHE=1 \
		FAKETIME_DONT_FAKE_MONOTONIC=1 \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}

start_hq() {
	local try
	for try in 1 2 3 4 5; do
		# Port 0 unless the caller names one (HQ again where devices
		# know it): the kernel picks a free port, the log line names it.
		PORT=${1:-0}
		# Not through hq(): $! must be the server itself, not a subshell.
		if [ -n "${HQ_CLOCK_FILE:-}" ]; then
			hq_clock_env "$HQ_BIN" -c "$T/hq.conf" serve --listen "127.0.0.1:$PORT" \
				2> "$T/hq.log" &
		else
			"$HQ_BIN" -c "$T/hq.conf" serve --listen "127.0.0.1:$PORT" 2> "$T/hq.log" &
		fi
		HQPID=$!
		until_ok 30 hq_up || true
		PORT=$(port_of "$T/hq.log")
		[ -n "$PORT" ] && { [ -z "${1:-}" ] || [ "$PORT" = "$1" ]; } && return 0
		stop_hq
	done
	fail "fieldsync-hq serve did not start: $(cat "$T/hq.log")"
}

# hq_and_enrolled_store TEAM MUNICIPALITY: a new store, a new HQ on
# loopback ($PORT), and the store enrolled with it directly.
hq_and_enrolled_store() {
	init_store
	expect_exit 0 hq init
	start_hq
	TOKEN=$(hq enroll-token --team "$1" --municipality "$2" | tail -n 1)
	expect_exit 0 fs enroll "http://127.0.0.1:$PORT" "$TOKEN"
	MUNI=$2
}

# ---- several devices -------------------------------------------------------
# dev NAME ARGS...: fieldsync on device NAME's own store, $T/NAME.
dev() {
	local d=$1
	shift
	"$FIELDSYNC" --data-dir "$T/$d" --forms-dir "$FORMS" --passphrase-file "$PASS" "$@"
}

# dev_enrol NAME TEAM MUNICIPALITY SCOPE: a new store for device NAME,
# enrolled with the HQ on $PORT for TEAM with that scope.
dev_enrol() {
	expect_exit 0 dev "$1" init --kdf interactive
	TOKEN=$(hq enroll-token --team "$2" --municipality "$3" --scope "$4" | tail -n 1)
	expect_exit 0 dev "$1" enroll "http://127.0.0.1:$PORT" "$TOKEN"
}

# ---- what reached HQ ------------------------------------------------------

# export_ids COLLECTION: HQ's export as JSON Lines; checks every line is
# JSON and prints the ids of live records, sorted.
export_ids() {
	hq export "$1" --format jsonl > "$T/export.jsonl" || fail "hq export $1 failed"
	python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    if o.get("deleted") in (True, 1, "true") or o.get("_deleted") is True:
        continue
    print(o["id"])' "$T/export.jsonl" | sort
}

# local_ids COLLECTION-NOUN: ids of live records on the device, sorted.
local_ids() {
	fs "$1" list --json | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["id"])' | sort
}

# same_once NOUN COLLECTION: HQ holds every local record exactly once.
same_once() {
	local_ids "$1" > "$T/local.ids"
	export_ids "$2" > "$T/hq.ids"
	[ -z "$(uniq -d "$T/hq.ids")" ] || fail "$2 duplicated at HQ: $(uniq -d "$T/hq.ids" | head -3)"
	cmp -s "$T/local.ids" "$T/hq.ids" ||
		fail "$2 at HQ differ from the device: $(diff "$T/local.ids" "$T/hq.ids" | head -5)"
}

# ---- the agent ------------------------------------------------------------
# agent_conf [EXTRA...]: write the hermetic config the agent and the
# commands forwarded to it share: the test store, the forms, a socket in
# $T and quick retries.  Extra lines are appended.
AGENT_SOCK="$T/agent.sock"
APID=
agent_conf() {
	{
		printf '[store]\ndata_dir = %s\nkdf_profile = interactive\n' "$DATA"
		printf '[forms]\ndir = %s\n' "$FORMS"
		printf '[agent]\nsocket = %s\n' "$AGENT_SOCK"
		printf '[web]\nlisten = 127.0.0.1:0\n'
		# [sync] last: callers add keys of theirs to it.
		printf '[sync]\npush_delay_ms = 100\nretry_min = 1\nretry_max = 2\n'
		for line in "$@"; do printf '%s\n' "$line"; done
	} > "$FIELDSYNC_CONFIG"
}

# fa ARGS...: fieldsync with no store options, so it goes to the agent.
fa() { "$FIELDSYNC" "$@"; }

# start_agent [ARGS...]: run `fieldsync [ARGS] agent`, wait for its socket.
AGENT_LOG_FROM=1
agent_listening() { [ -S "$AGENT_SOCK" ] && tail -n +"$AGENT_LOG_FROM" "$T/agent.log" | grep -q "listening on"; }
agent_up() { agent_listening || ! kill -0 "$APID" 2> /dev/null; }
start_agent() {
	rm -f "$AGENT_SOCK"
	touch "$T/agent.log"
	AGENT_LOG_FROM=$(($(wc -l < "$T/agent.log") + 1))
	# As systemd does: the log is "the journal", so lines carry their
	# priorities (sync/log.h), which test_agent.sh checks.
	JOURNAL_STREAM=$(stat -c '%d:%i' "$T/agent.log") "$FIELDSYNC" "$@" agent 2>> "$T/agent.log" &
	APID=$!
	until_ok 30 agent_up && agent_listening && return 0
	fail "fieldsync agent did not start: $(cat "$T/agent.log")"
}

# stop_pid NAME PID LOG: SIGTERM, and it must exit 0 (LeakSanitizer
# makes a leak a non-zero exit in the ASan build).
stop_pid() {
	local rc=0
	kill -TERM "$2" 2> /dev/null || true
	wait "$2" || rc=$?
	[ "$rc" -eq 0 ] || fail "$1 exited $rc on SIGTERM: $(tail -5 "$3")"
}

kill_pid() {
	kill -9 "$1" 2> /dev/null || true
	wait "$1" 2> /dev/null || true
}

stop_agent() {
	local pid=$APID
	APID=
	[ -z "$pid" ] || stop_pid "the agent" "$pid" "$T/agent.log"
}

kill_agent() {
	[ -z "$APID" ] || kill_pid "$APID"
	APID=
}

# hq_count COLLECTION: live records HQ has.
hq_count() { export_ids "$1" | wc -l; }

hq_has() { [ "$(hq_count "$1")" -ge "$2" ]; }

# wait_hq_count COLLECTION N [SECONDS]: until HQ holds N records; prints
# the milliseconds it took (a figure for the log, never asserted).  Fails
# after SECONDS (default 60, scaled).
wait_hq_count() {
	local start
	start=$(date +%s%3N)
	until_ok "${3:-60}" hq_has "$1" "$2" ||
		fail "HQ has $(hq_count "$1") $1 after $((${3:-60} * SCALE)) s, expected $2"
	echo $(($(date +%s%3N) - start))
}

# wait_log PATTERN [SECONDS]: until the agent's log has a line matching
# the grep pattern; fails after SECONDS (default 60, scaled).
wait_log() {
	until_ok "${2:-60}" in_file "$T/agent.log" "$1" ||
		fail "no '$1' in the agent's log: $(tail -5 "$T/agent.log")"
}

# enroll_agent URL: enrol through the agent with the token in $T/token
# (an enrolment asked for while a push runs waits for it).
enroll_agent() { expect_exit 0 sh -c "\"$FIELDSYNC\" enroll '$1' - < '$T/token'"; }

# ---- the fault-injecting proxy (tests/tools/faultproxy.c) -----------------
# proxy_setup: check the binary and pick the seed.  The proxy's choices
# are reproducible: rerun with the same FS_FAULT_SEED.
PXPID=
PXPORT=0
PXRUNS=0
proxy_setup() {
	: "${FS_FAULTPROXY:?FS_FAULTPROXY must point to the faultproxy binary (tests/CMakeLists.txt)}"
	[ -x "$FS_FAULTPROXY" ] || fail "faultproxy not built: $FS_FAULTPROXY"
	SEED=${FS_FAULT_SEED:-$((RANDOM * 32768 + RANDOM))}
	echo "fault seed $SEED (FS_FAULT_SEED=$SEED replays the proxy's choices)" >&2
}

# start_proxy LOG MODE [ARGS...]: faultproxy in front of HQ ($PORT) on
# $PXPORT (a free port the first time, then the same one, as the device
# is enrolled with it), logging its connections to LOG.  ARGS go to the
# proxy (--connect makes it an HTTP CONNECT proxy allowing only HQ).
proxy_up() { in_file "$T/proxy.err" '^listening on ' || ! kill -0 "$PXPID" 2> /dev/null; }
start_proxy() {
	local log=$1 mode=$2 got
	shift 2
	PXRUNS=$((PXRUNS + 1))
	"$FS_FAULTPROXY" --listen "127.0.0.1:$PXPORT" --to "127.0.0.1:$PORT" --mode "$mode" \
		--seed $((SEED + PXRUNS)) --log "$log" "$@" 2> "$T/proxy.err" &
	PXPID=$!
	until_ok 30 proxy_up
	got=$(port_of "$T/proxy.err")
	[ -n "$got" ] && PXPORT=$got && return 0
	fail "faultproxy did not start: $(cat "$T/proxy.err")"
}

stop_proxy() {
	local pid=$PXPID
	PXPID=
	[ -z "$pid" ] || stop_pid faultproxy "$pid" "$T/proxy.err"
}

kill_proxy() {
	[ -z "$PXPID" ] || kill_pid "$PXPID"
	PXPID=
}

# forms_with_status DIR STATUS: the shipped forms in DIR, with a household
# status HQ's do not have: a laptop using them gets its status changes
# quarantined at HQ.
forms_with_status() {
	mkdir -p "$1"
	cp "$FORMS"/*.json "$1/"
	python3 - "$1/beneficiaries.json" "$2" << 'PY'
import json, sys
f = json.load(open(sys.argv[1], encoding="utf-8"))
for field in f["fields"]:
    if field["name"] == "status":
        field["values"].append(sys.argv[2])
json.dump(f, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
PY
}

# ---- attached files -------------------------------------------------------

# forms_with_files DIR FIELD-JSON...: the shipped forms in DIR, and
# FORMS set to it, the visits form's attachment fields replaced by the
# ones given (each a JSON object), so that a test picks sizes and types.
forms_with_files() {
	local dir=$1
	shift
	mkdir -p "$dir"
	cp "$FORMS"/*.json "$dir/"
	python3 - "$dir/visits.json" "$@" << 'PY'
import json, sys
f = json.load(open(sys.argv[1], encoding="utf-8"))
f["fields"] = [x for x in f["fields"] if x["type"] != "attachment"]
f["fields"] += [json.loads(a) for a in sys.argv[2:]]
json.dump(f, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
PY
	FORMS=$dir
}

# scan_file FILE BYTES [MARKER]: a synthetic PDF of random bytes, with
# MARKER after its first line (a scan: kept as it is, where a JPEG is
# rewritten without its metadata).
scan_file() {
	python3 - "$1" "$2" "${3:-}" << 'PY'
import os, sys
head = b"%PDF-1.7\n" + (sys.argv[3].encode() + b"\n" if sys.argv[3] else b"")
with open(sys.argv[1], "wb") as f:
    f.write(head)
    left = int(sys.argv[2]) - len(head)
    while left > 0:
        n = min(left, 1 << 20)
        f.write(os.urandom(n))
        left -= n
PY
}
