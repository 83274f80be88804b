# test_security.sh - encryption at rest, keys, passphrases, tampering.
set -e
. "$(dirname "$0")/lib.sh"
command -v sqlite3 > /dev/null || fail "the sqlite3 shell is needed (apt-get install sqlite3)"

init_store
NAME="Đurđević-Ђурђевић-Zaštićen"
for i in 1 2 3 4 5; do add_person "$NAME $i" > /dev/null; done
id=$(add_person "$NAME")
fs visit add "beneficiary_id=$id" visit_date=2026-11-21 visit_type=legal_assistance "notes=$NAME beleška" > /dev/null

# grep finds the name nowhere under the data dir, nor the SQLite magic.
ls "$DATA" | grep -q store.db || fail "no store.db"
if grep -r -a -F -l "$NAME" "$DATA"; then fail "name found in the data directory"; fi
if grep -r -a -F -l "Ђурђевић" "$DATA"; then fail "Cyrillic name found in the data directory"; fi
if grep -r -a -F -l "SQLite format 3" "$DATA"; then fail "SQLite header in the clear"; fi
# The check itself works: the name is in a plain export we write here.
fs beneficiary list > "$T/plain.txt"
grep -q -F "$NAME" "$T/plain.txt" || fail "grep cannot find the name even in clear text"

# The stock sqlite3 shell cannot read the store (SQLITE_NOTADB, 26).
expect_exit 26 sqlite3 "$DATA/store.db" "SELECT count(*) FROM records"
must_contain "$ERR" "not a database"
# Key files are private.
for f in store.key device.key store.db; do
	[ "$(stat -c %a "$DATA/$f")" = 600 ] || fail "$f is not mode 600"
done
[ "$(stat -c %a "$DATA")" = 700 ] || fail "data dir is not mode 700"

# A wrong passphrase is refused with exit 3, and not echoed.
printf 'Pogrešna-Лозинка-42\n' > "$T/wrong"; chmod 600 "$T/wrong"
expect_exit 3 "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$T/wrong" beneficiary list
must_contain "$ERR" "wrong passphrase"
must_not_contain "$ERR" "Pogrešna"
must_not_contain "$OUT$ERR" "$(cat "$PASS")"
# A passphrase file others can read is refused.
cp "$PASS" "$T/open"; chmod 644 "$T/open"
expect_exit 3 "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$T/open" status
must_contain "$ERR" "chmod 600"
# No secret and no terminal: a clear error, not a hang.
expect_exit 3 "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" status < /dev/null
must_contain "$ERR" "passphrase"

# passwd: the new passphrase opens the store, the old one no longer does,
# and the database file is not rewritten.
sum_before=$(sha256sum < "$DATA/store.db")
printf 'nova-lozinka-2026\n' > "$T/new"; chmod 600 "$T/new"
expect_exit 0 fs passwd --new-passphrase-file "$T/new" --kdf interactive
[ "$(sha256sum < "$DATA/store.db")" = "$sum_before" ] || fail "passwd rewrote the database"
expect_exit 3 fs status
expect_exit 0 "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$T/new" beneficiary list
must_contain "$OUT" "$id"
# ... and to a key file.
expect_exit 0 "$FIELDSYNC" keygen "$T/store.keyfile"
[ "$(stat -c %a "$T/store.keyfile")" = 600 ] || fail "key file is not mode 600"
expect_exit 2 "$FIELDSYNC" keygen "$T/store.keyfile"
expect_exit 0 "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$T/new" passwd --new-key-file "$T/store.keyfile"
expect_exit 0 "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --key-file "$T/store.keyfile" check
expect_exit 3 "$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$T/new" status
KF=(--data-dir "$DATA" --forms-dir "$FORMS" --key-file "$T/store.keyfile")

# A flipped byte is an error naming the file and the page.
size=$(stat -c %s "$DATA/store.db")
[ "$size" -ge 16384 ] || fail "store too small to test: $size"
cp "$DATA/store.db" "$T/store.db.orig"
printf '\x55' | dd of="$DATA/store.db" bs=1 seek=$((2 * 4096 + 1234)) conv=notrunc 2> /dev/null
cmp -s "$DATA/store.db" "$T/store.db.orig" && fail "byte was not changed"
expect_exit 3 "$FIELDSYNC" "${KF[@]}" check
must_contain "$ERR" "store.db page 3"
must_contain "$ERR" "authentication failed"
# A page swapped with another is an error too.
cp "$T/store.db.orig" "$DATA/store.db"
expect_exit 0 "$FIELDSYNC" "${KF[@]}" check
dd if="$T/store.db.orig" of="$DATA/store.db" bs=4096 skip=1 seek=2 count=1 conv=notrunc 2> /dev/null
dd if="$T/store.db.orig" of="$DATA/store.db" bs=4096 skip=2 seek=1 count=1 conv=notrunc 2> /dev/null
expect_exit 3 "$FIELDSYNC" "${KF[@]}" check
must_contain "$ERR" "page"
cp "$T/store.db.orig" "$DATA/store.db"
expect_exit 0 "$FIELDSYNC" "${KF[@]}" check
echo "security: ok"
