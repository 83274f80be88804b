# test_import.sh - CSV import: 100,000 rows at once, all or nothing,
# line numbers, fixed ids, and kill -9 in the middle.
set -e
. "$(dirname "$0")/lib.sh"

ROWS=${FS_IMPORT_ROWS:-100000}
init_store

# A caseload list with fixed ids, as HQ would hand out.
gen() { # gen N FILE [BADLINE]
	awk -v n="$1" -v bad="${3:-0}" 'BEGIN {
		print "id,full_name,municipality,status,household_size,vulnerabilities,consent"
		split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина", names, "|")
		for (i = 1; i <= n; i++) {
			hs = (i + 1 == bad) ? 0 : (i % 7) + 1
			printf "0193a1b2-c3d4-7abc-8def-%012d,\"%s %d\",Preševo,refugee,%d,\"elderly,disability\",yes\n", i, names[i % 4 + 1], i, hs
		}
	}' > "$2"
}

gen 50 "$T/small.csv" 12
expect_exit 2 fs import beneficiaries "$T/small.csv"
must_contain "$ERR" "line 12"
must_contain "$ERR" "household_size"
must_contain "$ERR" "nothing imported"
expect_exit 0 fs status --json
must_contain "$OUT" '"records":0'

# Unknown column and duplicate column are caught on line 1.
printf 'full_name,shoe_size\nA,1\n' > "$T/badcol.csv"
expect_exit 2 fs import beneficiaries "$T/badcol.csv"
must_contain "$ERR" "line 1"
must_contain "$ERR" "shoe_size"
# A file without its header row: the first row's cells are not echoed.
printf 'Ružičić Đorđe,Tutin,yes\n' > "$T/noheader.csv"
expect_exit 2 fs import beneficiaries "$T/noheader.csv"
must_contain "$ERR" "header row"
must_not_contain "$ERR" "Ružičić"
must_not_contain "$ERR" "Tutin"
printf 'full_name,"unterminated\n' > "$T/broken.csv"
expect_exit 2 fs import beneficiaries "$T/broken.csv"

gen "$ROWS" "$T/big.csv"
expect_exit 0 fs import beneficiaries "$T/big.csv"
must_contain "$OUT" "imported $ROWS beneficiaries"
must_not_contain "$ERR" "importing:"   # no progress bar when not a terminal
expect_exit 0 fs beneficiary show 0193a1b2-c3d4-7abc-8def-000000000007 --json
must_contain "$OUT" '"full_name":"Шћепановић Жаклина 7"'
# Importing the same ids again is refused, with a line number, and
# changes nothing.
expect_exit 2 fs import beneficiaries "$T/big.csv"
must_contain "$ERR" "line 2"
must_contain "$ERR" "already exists"
expect_exit 0 fs status --json
must_contain "$OUT" "\"records\":$ROWS"

# Visits referencing the imported caseload, with a BOM and CRLF lines.
printf '\xef\xbb\xbfbeneficiary_id,visit_date,visit_type,notes\r\n' > "$T/visits.csv"
for i in 1 2 3; do
	printf '0193a1b2-c3d4-7abc-8def-%012d,2026-11-2%d,prefab_installation,"Montaža, faza %d"\r\n' "$i" "$i" "$i" >> "$T/visits.csv"
done
expect_exit 0 fs import visits "$T/visits.csv"
must_contain "$OUT" "imported 3 visits"

# kill -9 during a large import leaves all of it or none of it, and the
# outbox consistent with the records.  The kill waits until the import's
# uncommitted pages are spilling into the WAL, so it lands mid-import.
gen "$ROWS" "$T/big2.csv"
sed -i 's/^0193a1b2-c3d4-7abc-8def-/0193a1b2-c3d4-7abc-9def-/' "$T/big2.csv"
# wal_reached BYTES: the import's WAL has grown to BYTES, or it has ended.
wal_reached() {
	[ "$(stat -c %s "$DATA/store.db-wal" 2> /dev/null || echo 0)" -ge "$1" ] ||
		! kill -0 "$pid" 2> /dev/null
}
midway=0
for threshold in 1000000 3000000 6000000; do
	# The binary itself, not the fs() wrapper: kill -9 must hit fieldsync,
	# not a subshell that would leave it running.
	"$FIELDSYNC" --data-dir "$DATA" --forms-dir "$FORMS" --passphrase-file "$PASS" \
		import beneficiaries "$T/big2.csv" > /dev/null 2>&1 &
	pid=$!
	until_ok 60 wal_reached "$threshold" || true
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	kill -0 "$pid" 2> /dev/null && fail "import still running after kill -9"
	expect_exit 0 fs check
	expect_exit 0 fs status --json
	n=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["beneficiaries"]["records"])')
	case "$n" in
	"$ROWS") midway=$((midway + 1))
		echo "kill at WAL >= $threshold bytes: nothing imported, store consistent" ;;
	"$((2 * ROWS))") echo "kill at WAL >= $threshold bytes: import had completed"; break ;;
	*) fail "after kill -9: $n records, expected $ROWS or $((2 * ROWS))" ;;
	esac
done
[ "$midway" -ge 1 ] || fail "no kill landed in the middle of an import"

# On a terminal, import shows a progress bar (script(1) gives it a pty).
if command -v script > /dev/null; then
	gen 3000 "$T/tty.csv"
	sed -i 's/^0193a1b2-c3d4-7abc-8def-/0193a1b2-c3d4-7abc-adef-/' "$T/tty.csv"
	script -qec "'$FIELDSYNC' --data-dir '$DATA' --forms-dir '$FORMS' --passphrase-file '$PASS' import beneficiaries '$T/tty.csv'" /dev/null > "$T/tty.out" 2>&1 \
		|| fail "import on a terminal failed: $(cat "$T/tty.out")"
	grep -q "importing: 100%" "$T/tty.out" || fail "no progress bar on a terminal: $(cat "$T/tty.out")"
fi
echo "import: ok"
