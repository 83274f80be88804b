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
