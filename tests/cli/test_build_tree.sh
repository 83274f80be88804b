# test_build_tree.sh - the programs run straight from the build tree, as
# the README's quick start shows: no `make install`, no --forms-dir, no
# /run/fieldsync.  Both have the forms built in, and a forms directory
# overrides them (one rule for the file names on both sides).  An agent
# run by a user other than root listens in $XDG_RUNTIME_DIR, and the
# commands find it there; a socket directory that does not exist is an
# error that says how to make it.
set -e
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'kill_agent; stop_hq'

# bare ARGS...: fieldsync with only a data directory and a passphrase.
bare() { "$FIELDSYNC" --data-dir "$DATA" --passphrase-file "$PASS" "$@"; }

# ---- the built-in forms -------------------------------------------------------
expect_exit 0 bare init --kdf interactive
expect_exit 0 bare beneficiary add "full_name=Đorđević Milica" municipality=Tutin status=idp \
	household_size=2 consent=yes
# A new store has no reserve file yet and plenty of disk: it is not full.
expect_exit 0 bare status
must_contain "$OUT" "kept for sending to HQ"
must_not_contain "$OUT" "disk        full"
expect_exit 0 bare beneficiary --help
must_contain "$OUT" "beneficiaries form in"
must_contain "$OUT" "the built-in forms"
expect_exit 0 "$FIELDSYNC" --help
must_contain "$OUT" "forms built into fieldsync"
# The built-in forms are the source's: a value conf/forms refuses is refused.
expect_exit 2 bare beneficiary add "full_name=Ђорђевић Милица" municipality=Tutin status=tourist \
	household_size=2 consent=yes
must_contain "$ERR" "status"
must_not_contain "$ERR" "Ђорђевић"

# HQ with nothing but a data directory: init, serve, take the record.
printf '[store]\ndata_dir = %s/hq\n' "$T" > "$T/hq.conf"
expect_exit 0 hq init
start_hq
TOKEN=$(hq enroll-token --team "Tim Tutin" --municipality Tutin | tail -n 1)
expect_exit 0 bare enroll "http://127.0.0.1:$PORT" "$TOKEN"
expect_exit 0 bare sync
[ "$(hq_count beneficiaries)" -eq 1 ] || fail "HQ has $(hq_count beneficiaries) beneficiaries, expected 1"
stop_hq

# ---- a forms directory overrides them ------------------------------------------
# A programme's own form with one more field: accepted with the directory,
# refused by the built-in form.  On a store that has no forms from HQ:
# once a pull brings HQ's, HQ's decide (below).
ENROLLED=$DATA
DATA="$T/fresh"
expect_exit 0 bare init --kdf interactive
mkdir "$T/forms"
cp "$FS_SOURCE_DIR/conf/forms/visits.json" "$T/forms/"
python3 - "$FS_SOURCE_DIR/conf/forms/beneficiaries.json" "$T/forms/beneficiaries.json" <<'PY'
import json, sys
form = json.load(open(sys.argv[1], encoding="utf-8"))
form["fields"].append({"name": "shelter", "type": "text", "max_length": 100})
json.dump(form, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
PY
expect_exit 2 bare beneficiary add "full_name=Petrović Ana" municipality=Tutin status=idp \
	household_size=2 consent=yes shelter=Kolektivni
expect_exit 0 bare --forms-dir "$T/forms" beneficiary add "full_name=Petrović Ana" municipality=Tutin \
	status=idp household_size=2 consent=yes shelter=Kolektivni
expect_exit 0 bare --forms-dir "$T/forms" beneficiary --help
must_contain "$OUT" "$T/forms"
expect_exit 0 "$HQ_BIN" -c "$T/hq.conf" --forms-dir "$T/forms" export beneficiaries --format csv
must_contain "$(printf '%s\n' "$OUT" | head -n 1)" "shelter"
expect_exit 0 hq export beneficiaries --format csv
must_not_contain "$(printf '%s\n' "$OUT" | head -n 1)" "shelter"
# A file's name is its collection, on both sides.
mv "$T/forms/visits.json" "$T/forms/posete.json"
expect_exit 2 "$HQ_BIN" -c "$T/hq.conf" --forms-dir "$T/forms" export beneficiaries --format csv
must_contain "$ERR" "posete.json"
must_contain "$ERR" "expected 'posete'"
expect_exit 4 bare --forms-dir "$T/forms" visit list
must_contain "$ERR" "visits.json"
mv "$T/forms/posete.json" "$T/forms/visits.json"
# The enrolled store took HQ's forms at its sync: the device's directory
# no longer decides for those collections.
DATA=$ENROLLED
expect_exit 0 bare forms
must_contain "$OUT" "beneficiaries    version 1, from HQ"
expect_exit 2 bare --forms-dir "$T/forms" beneficiary add "full_name=Petrović Ana" municipality=Tutin \
	status=idp household_size=2 consent=yes shelter=Kolektivni
must_contain "$ERR" "shelter"

# ---- the agent's socket ----------------------------------------------------------
# A configured socket in a directory that does not exist: the error names
# the directory and the ways to have it.
printf '[store]\ndata_dir = %s\n[agent]\nsocket = %s/missing/agent.sock\n' "$DATA" "$T" > "$FIELDSYNC_CONFIG"
expect_exit 4 "$FIELDSYNC" agent
must_contain "$ERR" "directory $T/missing does not exist"
must_contain "$ERR" "RuntimeDirectory=fieldsync"
must_contain "$ERR" "[agent] socket"

# Run by a user other than root, with no socket configured, the agent
# listens in that user's $XDG_RUNTIME_DIR, and the commands look there.
# As root the test runs the agent as nobody, on a copy of the store it owns.
U="$T/user"
mkdir -p "$U/run"
if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv > /dev/null || fail "setpriv (util-linux) is needed"
	cp -a "$DATA" "$U/data"
	# The build tree may sit where nobody cannot reach (/root is 0700).
	cp "$FIELDSYNC" "$U/fieldsync"
	USER_FS="$U/fieldsync"
	printf '[store]\ndata_dir = %s/data\n' "$U" > "$U/agent.conf"
	chown -R nobody:nogroup "$U"
	chmod 755 "$T"
	AS_USER=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
	printf '[store]\ndata_dir = %s\n' "$DATA" > "$U/agent.conf"
	USER_FS="$FIELDSYNC"
	AS_USER=()
fi
chmod 700 "$U/run"
# Not through a function: $! must be the agent itself (setpriv and env exec).
as_user() { "${AS_USER[@]}" env FIELDSYNC_CONFIG="$U/agent.conf" XDG_RUNTIME_DIR="$U/run" "$@"; }
"${AS_USER[@]}" env FIELDSYNC_CONFIG="$U/agent.conf" XDG_RUNTIME_DIR="$U/run" \
	"$USER_FS" agent 2> "$T/agent.log" &
APID=$!
user_sock_up() { [ -S "$U/run/fieldsync/agent.sock" ] || ! kill -0 "$APID" 2> /dev/null; }
until_ok 30 user_sock_up
[ -S "$U/run/fieldsync/agent.sock" ] || fail "no socket in \$XDG_RUNTIME_DIR/fieldsync: $(cat "$T/agent.log")"
grep -q "listening on $U/run/fieldsync/agent.sock" "$T/agent.log" ||
	fail "the agent did not say where it listens: $(cat "$T/agent.log")"
[ "$(stat -c %a "$U/run/fieldsync")" = 700 ] || fail "\$XDG_RUNTIME_DIR/fieldsync is not 0700"
expect_exit 0 as_user "$USER_FS" status
must_contain "$OUT" "store locked"
expect_exit 0 as_user "$USER_FS" agent --help
must_contain "$OUT" "XDG_RUNTIME_DIR"
stop_agent
[ ! -e "$U/run/fieldsync/agent.sock" ] || fail "the agent left its socket behind"
# A socket directory others may write to is refused: one of them could put
# their own socket there and be handed the passphrase.
chmod 777 "$U/run/fieldsync"
expect_exit 2 as_user "$USER_FS" agent
must_contain "$ERR" "is not a directory of this user's alone"
echo "ok: the programs run from the build tree"
