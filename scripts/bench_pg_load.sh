#!/bin/bash
# bench_pg_load.sh BUILD - HQ under load on SQLite and on PostgreSQL
# (issue 13), in one run: bench/bench_load against one SQLite HQ, one
# PostgreSQL HQ, and four PostgreSQL serve processes on one database with
# the devices split among them in turn (the benchmark is the load
# balancer), and bench/bench_ingest on each engine (HQ's ingest against a
# raw insert of the same rows).  Each run checks every change arrived
# once (--check).  A
# real PostgreSQL 15 is started for it (tests/cli/pg.sh) and stopped.
# Prints the rows of each run, then rows comparing the PostgreSQL runs
# with the SQLite one.  Sizes: FS_BENCH_DEVICES (1000), FS_BENCH_SETS (10),
# FS_BENCH_VISITS (10).  Speed is measured, never asserted.
set -eu -o pipefail
BUILD=$(cd "${1:?usage: bench_pg_load.sh BUILD}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVICES=${FS_BENCH_DEVICES:-1000}
SETS=${FS_BENCH_SETS:-10}
VISITS=${FS_BENCH_VISITS:-10}
T=$(mktemp -d "${TMPDIR:-/tmp}/bench_pg.XXXXXX")
SCALE=1
fail() { echo "bench_pg_load: $*" >&2; exit 1; }
. "$ROOT/tests/cli/pg.sh"
trap 'pg_stop; rm -rf "$T"' EXIT
pg_start

# pg_cpu_ms: the CPU time PostgreSQL's processes have used, in ms: the
# postmaster's own and its exited children's (backends of connections
# that closed), plus its living children's.
pg_cpu_ms() {
	local pm ticks=0 p
	pm=$(head -n 1 "$PG_DIR/data/postmaster.pid")
	ticks=$(sed 's/.*) //' "/proc/$pm/stat" | awk '{print $12 + $13 + $14 + $15}')
	for p in $(pgrep -P "$pm"); do
		ticks=$((ticks + $(sed 's/.*) //' "/proc/$p/stat" 2> /dev/null | awk '{print $12 + $13}' || echo 0)))
	done
	echo $((ticks * 1000 / $(getconf CLK_TCK)))
}

# load NAME ARGS...: one bench_load run; its output in $T/NAME, and the
# CPU time PostgreSQL spent meanwhile in $T/NAME.pgcpu.
load() {
	local name=$1 before
	shift
	echo "== $name" >&2
	before=$(pg_cpu_ms)
	"$BUILD/bench/bench_load" --hq-bin "$BUILD/fieldsync-hq" --devices "$DEVICES" --sets "$SETS" \
		--visits "$VISITS" --check --max-inflight 256 --threads 8 "$@" > "$T/$name" ||
		fail "$name failed: $(tail -n 5 "$T/$name")"
	echo $(($(pg_cpu_ms) - before)) > "$T/$name.pgcpu"
	sed -e "s/^row\tHQ under load/row\tHQ under load ($name)/" "$T/$name"
}
load sqlite
pg_psql "CREATE DATABASE load1 OWNER hq" || fail "create database"
pg_psql "CREATE DATABASE load4 OWNER hq" || fail "create database"
load "postgresql, 1 process" --postgresql "${PG_CONNINFO/dbname=fieldsync/dbname=load1}" \
	--pg-password-file "$PG_PASSFILE"
load "postgresql, 4 processes" --processes 4 \
	--postgresql "${PG_CONNINFO/dbname=fieldsync/dbname=load4}" --pg-password-file "$PG_PASSFILE"

# HQ's ingest against a raw insert of the same rows, on each engine.
echo "== ingest against a raw insert" >&2
"$BUILD/bench/bench_ingest" | grep '^row	ingest' || fail "bench_ingest on SQLite failed"
pg_psql "CREATE DATABASE ingest OWNER hq" || fail "create database"
"$BUILD/bench/bench_ingest" --postgresql "${PG_CONNINFO/dbname=fieldsync/dbname=ingest}" \
	--pg-password-file "$PG_PASSFILE" | grep '^row' || fail "bench_ingest on PostgreSQL failed"

# The same figures side by side: each PostgreSQL run against SQLite.
python3 - "$(nproc)" "$T/sqlite" "$T/postgresql, 1 process" "$T/postgresql, 4 processes" <<'PY'
import re, sys

def figures(path):
    f = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("row\t"):
            _, what, measured, _, _ = line.rstrip("\n").split("\t")
            key = re.sub(r"^HQ under load: \d+ devices, ", "", what)
            f[key] = measured
        if line.startswith("summary:"):
            for kv in line.split()[1:]:
                k, v = kv.split("=")
                f[k] = v
    return f

def cpu_per_set(path, f):
    """HQ's and PostgreSQL's CPU time per change set, in ms."""
    pg = int(open(path + ".pgcpu").read())
    return (float(f["hq_cpu_ms"]) + pg) / int(f["sets"]), pg

cores = int(sys.argv[1])
lite = figures(sys.argv[2])
lite_cpu, _ = cpu_per_set(sys.argv[2], lite)
print("row\tHQ under load, SQLite: CPU time per change set (HQ)\t%.1f ms\t-\t-" % lite_cpu)
print("row\tHQ under load, SQLite: the most these %d cores could give, if HQ ran alone\t"
      "%.0f sets/s\t%s (measured)\t-" % (cores, cores * 1000 / lite_cpu, lite["throughput"]))
for path in sys.argv[3:]:
    name = path.rsplit("/", 1)[1]
    pg = figures(path)
    for key in ("throughput", "request latency p50", "request latency p99"):
        if key in pg and key in lite:
            a, b = float(pg[key].split()[0]), float(lite[key].split()[0])
            print("row\tHQ under load, %s against SQLite: %s\t%s\t%s (SQLite)\t%.2f"
                  % (name, key, pg[key], lite[key], a / b if b else 0))
    print("row\tHQ under load, %s: lost, duplicated, errors\t%s, %s, %s\t%s, %s, %s (SQLite)\t-"
          % (name, pg["lost"], pg["duplicated"], pg["errors"], lite["lost"], lite["duplicated"],
             lite["errors"]))
    cpu, pgcpu = cpu_per_set(path, pg)
    print("row\tHQ under load, %s: CPU time per change set (HQ and PostgreSQL)\t%.1f ms "
          "(PostgreSQL %.1f ms)\t%.1f ms (SQLite)\t%.2f"
          % (name, cpu, pgcpu / int(pg["sets"]), lite_cpu, cpu / lite_cpu))
    print("row\tHQ under load, %s: the most these %d cores could give, if HQ and PostgreSQL "
          "ran alone\t%.0f sets/s\t%s (measured)\t-" % (name, cores, cores * 1000 / cpu,
                                                        pg["throughput"]))
    print("row\tHQ under load, %s: peak RSS of a serve process\t%.1f MiB\t%.1f MiB (SQLite)\t%.2f"
          % (name, int(pg["hwm2_kb"]) / 1024, int(lite["hwm2_kb"]) / 1024,
             int(pg["hwm2_kb"]) / int(lite["hwm2_kb"])))
PY
