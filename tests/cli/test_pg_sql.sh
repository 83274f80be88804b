# test_pg_sql.sh - hq/hqsql.h, the executor under HQ's storage seam
# (issue 13): tests/tools/hqsql_check runs the same statements on SQLite
# and on a real PostgreSQL 15 started here, and expects the same
# answers (Serbian text, 64-bit extremes, blobs with NUL bytes, NULLs,
# placeholders out of order and inside literals, a taken key, rows
# changed, rollback and commit), statements sent ahead (hqsql_step_later:
# more than a pipeline holds, read back, a taken key among them failing
# the commit by name, a read behind it failing, the connection fit
# again), then that PostgreSQL writers on two connections take turns and
# named locks exclude only their name.
set -e
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"

: "${FS_HQSQL_CHECK:?FS_HQSQL_CHECK must point to tests/tools/hqsql_check}"
pg_start
expect_exit 0 "$FS_HQSQL_CHECK" "$T/check.db" "$PG_CONNINFO" "$PG_PASSFILE"
must_contain "$OUT" "the same answers on SQLite and PostgreSQL"
echo "ok: hqsql on both backends"
