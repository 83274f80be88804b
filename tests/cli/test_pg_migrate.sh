# test_pg_migrate.sh - `fieldsync-hq migrate --to postgresql` (issue 13):
# a SQLite HQ with two teams' households, visits, a conflict and a
# quarantined change is copied into a real PostgreSQL started here.  The
# exports and listings come out byte for byte the same, `audit verify`
# passes there, and the devices, which hold HQ's checkpoint, find HQ's
# history consistent and go on syncing both ways with HQ on PostgreSQL.
set -e
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

hq_conf
expect_exit 0 hq init
start_hq
dev_enrol sjenica "Tim Sjenica" Sjenica Sjenica
dev_enrol tutin "Tim Tutin" Tutin "Tutin, Sjenica"
expect_exit 0 dev sjenica beneficiary add "full_name=Ружичић Ђорђе" municipality=Sjenica \
	status=idp household_size=4 consent=yes
H=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 dev sjenica sync
expect_exit 0 dev tutin pull
expect_exit 0 dev tutin visit add "beneficiary_id=$H" visit_date=2026-12-01 \
	visit_type=needs_assessment "notes=Kuća oštećena"
expect_exit 0 dev tutin sync
# Both import the same caseload list and edit one household: a conflict.
S=01937a4e-5c2b-7d3e-8f41-a2b3c4d5e6f7
printf 'id,full_name,municipality,status,household_size,consent\n%s,Stanković Vesna,Sjenica,refugee,4,yes\n' \
	"$S" > "$T/caseload.csv"
for d in sjenica tutin; do expect_exit 0 dev "$d" import beneficiaries "$T/caseload.csv"; done
expect_exit 0 dev sjenica beneficiary edit "$S" household_size=5
expect_exit 0 dev tutin beneficiary edit "$S" household_size=6
expect_exit 0 dev sjenica sync
expect_exit 0 dev tutin sync
# Tutin writes a household outside its scope: quarantined.
expect_exit 0 dev tutin beneficiary add "full_name=Petrović Ana" municipality=Novi\ Pazar \
	status=idp household_size=2 consent=yes
expect_exit 0 dev tutin sync
must_contain "$OUT" "5 quarantined at HQ"
expect_exit 0 hq audit checkpoint
for d in sjenica tutin; do expect_exit 0 dev "$d" status --verify-hq; done
stop_hq

# listings DIR: what an administrator reads, into DIR.
listings() {
	mkdir -p "$1"
	hq export beneficiaries --format csv > "$1/ben.csv"
	hq export beneficiaries --format jsonl > "$1/ben.jsonl"
	hq export visits --format csv > "$1/vis.csv"
	hq export visits --format jsonl > "$1/vis.jsonl"
	hq conflicts --json > "$1/conflicts"
	hq quarantine --json > "$1/quarantine"
	hq devices --json > "$1/devices"
	hq review --json > "$1/review"
}
listings "$T/lite"
[ -s "$T/lite/conflicts" ] && [ "$(cat "$T/lite/conflicts")" != "[]" ] || fail "no conflict to carry over"
[ "$(cat "$T/lite/quarantine")" != "[]" ] || fail "no quarantined change to carry over"

pg_start
printf '[store]\npostgresql_password_file = %s\n' "$PG_PASSFILE" >> "$T/hq.conf"
expect_exit 0 hq migrate --help
must_contain "$OUT" "Usage: fieldsync-hq migrate"
expect_exit 1 hq migrate --to oracle "$PG_CONNINFO"
expect_exit 1 hq migrate --to postgresql "$PG_CONNINFO password=x"
must_contain "$ERR" "holds a password"
expect_exit 0 hq migrate --to postgresql "$PG_CONNINFO"
must_contain "$OUT" "events"
must_contain "$OUT" "copied HQ from $T/hq/hq.db to PostgreSQL host=127.0.0.1"
# Into a database that already holds an HQ: refused, nothing changed.
expect_exit 2 hq migrate --to postgresql "$PG_CONNINFO"
must_contain "$ERR" "already holds HQ's schema"

# HQ on PostgreSQL from here on.
cp "$T/hq.conf" "$T/lite.conf"
printf '[store]\ndata_dir = %s/hq\nbackend = postgresql\npostgresql = %s\npostgresql_password_file = %s\n[forms]\ndir = %s\n' \
	"$T" "$PG_CONNINFO" "$PG_PASSFILE" "$FORMS" > "$T/hq.conf"
listings "$T/pg"
for f in ben.csv ben.jsonl vis.csv vis.jsonl conflicts quarantine devices review; do
	cmp -s "$T/lite/$f" "$T/pg/$f" || fail "$f differs after the migration: $(diff "$T/lite/$f" "$T/pg/$f" | head -5)"
done
expect_exit 0 hq audit verify
must_contain "$OUT" "audit log ok"
must_contain "$OUT" "signed checkpoints verified"
expect_exit 0 hq audit list --event admin
must_contain "$OUT" '"command":"migrate"'
start_hq "$PORT"
for d in sjenica tutin; do
	expect_exit 0 dev "$d" status --verify-hq
	must_contain "$OUT" "hq history  consistent"
done
# Both ways, on PostgreSQL.
expect_exit 0 dev sjenica beneficiary add "full_name=Вуковић Сара" municipality=Sjenica \
	status=refugee household_size=2 consent=yes
N=$(printf '%s\n' "$OUT" | tail -n 1)
expect_exit 0 dev sjenica sync
must_contain "$OUT" "0 quarantined at HQ"
expect_exit 0 dev tutin pull
expect_exit 0 dev tutin beneficiary show "$N"
must_contain "$OUT" "Вуковић Сара"
expect_exit 0 hq audit verify
echo "ok: a SQLite HQ moved to PostgreSQL"
