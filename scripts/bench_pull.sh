#!/bin/bash
# bench_pull.sh BUILD - two-way sync against a real HQ on loopback (issue
# 12), each figure beside a baseline measured in the same run:
#   first pull of a scope of N beneficiaries and 5N visits: wire bytes per
#     record against the raw JSON of the same records (HQ's JSON Lines
#     export), and the time against `fieldsync import` of the same rows;
#   an incremental pull after 100 changes at HQ: bytes, against the first
#     pull's;
#   peak RSS of the pulling process, against a pull of a scope a tenth the
#     size: flat means it does not grow with the caseload.
# Prints the figures and `row` lines for scripts/bench.sh.  Synthetic
# data.  FS_BENCH_BENEFICIARIES (default 20000) sets N.
set -e
BUILD=$(cd "${1:?usage: bench_pull.sh BUILD}" && pwd)
export FIELDSYNC="$BUILD/fieldsync"
export FS_SOURCE_DIR
FS_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
N=${FS_BENCH_BENEFICIARIES:-20000}
. "$FS_SOURCE_DIR/tests/cli/lib.sh"
at_exit 'stop_hq'

now_ms() { date +%s%3N; }
# A key file, not a passphrase: the key derivation (64 MiB, a second)
# would swamp both the time and the memory of a pull.
KEY="$T/bench.key"
"$FIELDSYNC" keygen "$KEY" > /dev/null
dev() {
	local d=$1
	shift
	"$FIELDSYNC" --data-dir "$T/$d" --forms-dir "$FORMS" --key-file "$KEY" "$@"
}
# peak CMD...: run CMD, print its peak RSS in KiB (stdout) after its output.
peak() {
	python3 - "$@" <<'PY'
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
if r.returncode:
    sys.exit("command failed: %d" % r.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}
enrol() {
	dev "$1" init > /dev/null
	TOKEN=$(hq enroll-token --team "$2" --municipality "$3" | tail -n 1)
	dev "$1" enroll "http://127.0.0.1:$PORT" "$TOKEN" > /dev/null
}
# caseload N MUNI PREFIX: N beneficiaries and 5N visits as CSV files.
caseload() {
	awk -v n="$1" -v m="$2" -v p="$3" -v dir="$T" 'BEGIN {
		b = dir "/" p "-b.csv"; v = dir "/" p "-v.csv"
		print "id,full_name,municipality,status,household_size,consent" > b
		print "beneficiary_id,visit_date,visit_type,notes" > v
		split("Petrović Marija|Јовановић Јован|Ružičić Đorđe|Шћепановић Жаклина", names, "|")
		for (i = 1; i <= n; i++) {
			id = sprintf("0193a1b2-c3d4-7abc-8def-%s%08d", p, i)
			printf "%s,\"%s %d\",%s,refugee,%d,yes\n", id, names[i % 4 + 1], i, m, i % 7 + 1 > b
			for (j = 1; j <= 5; j++)
				printf "%s,2026-11-%02d,needs_assessment,\"Obilazak %d: krov, prozori, огрев\"\n", id, 1 + (i + j) % 28, j > v
		}
	}'
}
pull_bytes() { dev "$1" log --json --limit 0 | python3 -c '
import json, sys
print(sum(json.loads(l)["bytes"] for l in sys.stdin if json.loads(l)["event"] == "pull"))'; }

hq_conf
printf '[audit]\ncheckpoint_every = 1000000\n' >> "$T/hq.conf"
hq init > /dev/null
start_hq
enrol big "Tim Vranje" Vranje
enrol small "Tim Obrenovac" Obrenovac
caseload "$N" Vranje 0000
caseload $((N / 10)) Obrenovac 0001
echo "bench_pull: HQ receives $N beneficiaries and $((N * 5)) visits (and a tenth of that elsewhere)" >&2
for d in big small; do
	p=$([ "$d" = big ] && echo 0000 || echo 0001)
	dev "$d" import beneficiaries "$T/$p-b.csv" > /dev/null
	dev "$d" import visits "$T/$p-v.csv" > /dev/null
	dev "$d" sync --max-changes 20000 > /dev/null
done

# ---- first pull ------------------------------------------------------------------
enrol fresh "Tim Vranje 2" Vranje
enrol fresh_small "Tim Obrenovac 2" Obrenovac
t0=$(now_ms)
rss_big=$(peak "$FIELDSYNC" --data-dir "$T/fresh" --forms-dir "$FORMS" --key-file "$KEY" pull)
pull_ms=$(($(now_ms) - t0))
rss_small=$(peak "$FIELDSYNC" --data-dir "$T/fresh_small" --forms-dir "$FORMS" --key-file "$KEY" pull)
wire=$(pull_bytes fresh)
records=$((N * 6))
hq export beneficiaries --format jsonl > "$T/raw.jsonl"
hq export visits --format jsonl >> "$T/raw.jsonl"
# The raw JSON of the same records: HQ's export lines of Vranje's
# households and of their visits.
raw=$(python3 -c '
import json, sys
n = 0
for l in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(l)
    if o.get("municipality") == "Vranje" or o.get("beneficiary_id", "").find("-0000") > 0:
        n += len(l.encode())
print(n)' "$T/raw.jsonl")
# The same rows imported from CSV, for the time baseline.
enrol imported "Tim Vranje 3" Vranje
t0=$(now_ms)
dev imported import beneficiaries "$T/0000-b.csv" > /dev/null
dev imported import visits "$T/0000-v.csv" > /dev/null
import_ms=$(($(now_ms) - t0))
echo "first pull of $N beneficiaries + $((N * 5)) visits: $pull_ms ms, $wire bytes on the wire ($((wire / records)) B/record); import of the same rows $import_ms ms; HQ's JSON of them $raw bytes; peak RSS $rss_big KiB, $rss_small KiB for a tenth"
printf 'row\tfirst pull, %d beneficiaries + %d visits: wire bytes per record\t%d B\t%d B (raw JSON export)\t%s\n' \
	"$N" $((N * 5)) $((wire / records)) $((raw / records)) "$(python3 -c "print(f'{$wire / max($raw, 1):.2f}')")"
printf 'row\tfirst pull, %d beneficiaries + %d visits: time\t%d ms\t%d ms (fieldsync import of the same rows)\t%s\n' \
	"$N" $((N * 5)) "$pull_ms" "$import_ms" "$(python3 -c "print(f'{$pull_ms / max($import_ms, 1):.2f}')")"
printf 'row\tfirst pull: peak RSS of the pulling process\t%.1f MiB\t%.1f MiB (a tenth of the caseload)\t%s\n' \
	"$(python3 -c "print($rss_big / 1024)")" "$(python3 -c "print($rss_small / 1024)")" \
	"$(python3 -c "print(f'{$rss_big / max($rss_small, 1):.2f}')")"

# ---- incremental pull --------------------------------------------------------------
for i in $(seq 1 100); do
	dev big beneficiary edit "0193a1b2-c3d4-7abc-8def-0000$(printf '%08d' "$i")" household_size=9 > /dev/null
done
dev big sync > /dev/null
before=$(pull_bytes fresh)
dev fresh pull > /dev/null
inc=$(($(pull_bytes fresh) - before))
echo "incremental pull after 100 changes at HQ: $inc bytes; the first pull $wire bytes"
printf 'row\tincremental pull after 100 changes at HQ: bytes\t%d B\t%d B (first pull)\t%s\n' \
	"$inc" "$wire" "$(python3 -c "print(f'{$inc / max($wire, 1):.4f}')")"
