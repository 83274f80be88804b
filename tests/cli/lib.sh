# lib.sh - shared helpers for the command-line tests (sourced, bash).
#
# Each test gets a fresh directory, a hermetic empty config (so a real
# /etc/fieldsync/agent.conf on the machine cannot leak in) and the forms
# from the source tree.  Helpers fail the test with a message on stderr.

set -u
: "${FIELDSYNC:?FIELDSYNC must point to the fieldsync binary}"
: "${FS_SOURCE_DIR:?FS_SOURCE_DIR must point to the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/fscli.XXXXXX")
trap 'rm -rf "$T"' EXIT
export FIELDSYNC_CONFIG="$T/agent.conf"
: > "$FIELDSYNC_CONFIG"
DATA="$T/data"
FORMS="$FS_SOURCE_DIR/conf/forms"
PASS="$T/pass"
printf 'test-lozinka-%s\n' "$$" > "$PASS"
chmod 600 "$PASS"

fail() { echo "FAIL: $*" >&2; exit 1; }

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

# add_person NAME [MUNICIPALITY]: add a beneficiary, print its id.
add_person() {
	fs beneficiary add "full_name=$1" "municipality=${2:-Sremska Mitrovica}" status=refugee \
		household_size=3 consent=yes | tail -n 1
}

# ---- HQ on loopback, for the sync tests ----------------------------------
# Callers write "$T/hq.conf" first.  start_hq [PORT] serves on PORT or a
# random loopback port and sets PORT and HQPID; stop_hq stops it.

HQ_BIN="$(dirname "$FIELDSYNC")/fieldsync-hq"
HQPID=
hq() { "$HQ_BIN" -c "$T/hq.conf" "$@"; }

stop_hq() {
	if [ -n "$HQPID" ]; then
		kill "$HQPID" 2> /dev/null || true
		wait "$HQPID" 2> /dev/null || true
		HQPID=
	fi
}

start_hq() {
	local try i
	for try in 1 2 3 4 5; do
		PORT=${1:-$((20000 + RANDOM % 40000))}
		# Not through hq(): $! must be the server itself, not a subshell.
		"$HQ_BIN" -c "$T/hq.conf" serve --listen "127.0.0.1:$PORT" 2> "$T/hq.log" &
		HQPID=$!
		for i in $(seq 100); do
			grep -q "listening on 127.0.0.1:$PORT" "$T/hq.log" && return 0
			kill -0 "$HQPID" 2> /dev/null || break
			sleep 0.1
		done
		stop_hq
	done
	fail "fieldsync-hq serve did not start: $(cat "$T/hq.log")"
}
