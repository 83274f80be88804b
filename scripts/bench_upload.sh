#!/bin/bash
# bench_upload.sh BUILD - an attached file of FS_BENCH_UPLOAD_MB (default
# 1000) MB moved to a real HQ on loopback (issue 17), each figure beside
# a baseline measured in the same run:
#   upload throughput: `fieldsync sync` sending the file (read from the
#     encrypted store, each 256 KiB chunk sealed to HQ, signed, kept and
#     synced at HQ, then assembled, hashed and sealed there), against
#     plain curl POSTing the same bytes in the same 256 KiB requests to
#     the same HQ, over one kept-alive connection (HQ reads each and
#     refuses it as malformed);
#   agent and HQ peak RSS while the agent takes and moves the file,
#     sampled every 100 ms (VmHWM would be the unlock's Argon2), against
#     each one's RSS before it: flat means it does not grow with the file;
#   wire bytes (request bodies) against the file's size.
# Prints the figures and `row` lines for scripts/bench.sh.  Synthetic data.
set -e
BUILD=$(cd "${1:?usage: bench_upload.sh BUILD}" && pwd)
export FIELDSYNC="$BUILD/fieldsync"
export FS_SOURCE_DIR
FS_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
MB=${FS_BENCH_UPLOAD_MB:-1000}
SIZE=$((MB * 1000 * 1000))
. "$FS_SOURCE_DIR/tests/cli/lib.sh"
at_exit 'kill_agent; stop_hq'

now_ms() { date +%s%3N; }
rss_kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }

forms_with_files "$T/forms" \
	'{"name": "scan", "type": "attachment", "max_bytes": 4000000000, "accept": ["application/pdf"]}'

hq_conf
printf '[server]\nfile_quota_mib = 4194304\n' >> "$T/hq.conf"
hq_and_enrolled_store "Tim Bench" Vranje
BEN=$(add_person "Стојановић Милан" Vranje)

# ---- throughput: fieldsync sync against curl ------------------------------------
fs sync > /dev/null
scan_file "$T/one.pdf" "$SIZE"
# Baseline first: the same bytes, in the same requests, by curl.
mkdir "$T/pieces"
split -b 262144 -a 6 "$T/one.pdf" "$T/pieces/p"
first=1
for p in "$T"/pieces/p*; do
	[ "$first" = 1 ] || printf 'next\n'
	first=0
	printf 'url = "http://127.0.0.1:%s/v1/files"\ndata-binary = "@%s"\nheader = "Content-Type: application/vnd.fieldsync.file"\noutput = "/dev/null"\n' "$PORT" "$p"
done > "$T/curl.conf"
t0=$(now_ms)
curl -s -K "$T/curl.conf" || true
curl_ms=$(($(now_ms) - t0))
rm -rf "$T/pieces"
fs visit add "beneficiary_id=$BEN" visit_date=2026-11-20 visit_type=needs_assessment \
	"scan=@$T/one.pdf" > /dev/null
t0=$(now_ms)
fs sync > "$T/sync.out"
sync_ms=$(($(now_ms) - t0))
grep -q "sent 1 files" "$T/sync.out" || { cat "$T/sync.out"; fail "the file did not go"; }
bytes=$(sed -n 's/^sent 1 files ([0-9]* chunks, \([0-9]*\) bytes)$/\1/p' "$T/sync.out")
fs_mbs=$(python3 -c "print(f'{$SIZE / 1e6 / ($sync_ms / 1000):.1f}')")
curl_mbs=$(python3 -c "print(f'{$SIZE / 1e6 / ($curl_ms / 1000):.1f}')")
echo "upload of $MB MB: fieldsync sync $sync_ms ms ($fs_mbs MB/s), curl in the same requests $curl_ms ms ($curl_mbs MB/s)"
printf 'row\tupload %d MB: fieldsync sync, MB/s\t%s MB/s\tcurl, same requests, %s MB/s\t%s\n' \
	"$MB" "$fs_mbs" "$curl_mbs" "$(ratio "$curl_ms" "$sync_ms")"
echo "wire: $bytes request bytes for a file of $SIZE bytes"
printf 'row\twire bytes per file byte (%d MB)\t%s\t1 (the file)\t%s\n' "$MB" "$bytes" \
	"$(python3 -c "print(f'{$bytes / $SIZE:.4f}')")"

# ---- memory: the agent moves a second file ------------------------------------
scan_file "$T/two.pdf" "$SIZE"
printf '[store]\ndata_dir = %s\n[forms]\ndir = %s\n[agent]\nsocket = %s\n' "$DATA" "$FORMS" \
	"$AGENT_SOCK" > "$FIELDSYNC_CONFIG"
start_agent --passphrase-file "$PASS"
sleep 1
agent_before=$(rss_kib "$APID" VmRSS)
hq_before=$(rss_kib "$HQPID" VmRSS)
HASH=$(sha256sum "$T/two.pdf" | cut -d' ' -f1)
# Sampled from before the file is handed over until HQ holds it.
(
	a=0 h=0
	while [ ! -e "$T/moved" ]; do
		x=$(rss_kib "$APID" VmRSS) y=$(rss_kib "$HQPID" VmRSS)
		[ "${x:-0}" -le "$a" ] || a=$x
		[ "${y:-0}" -le "$h" ] || h=$y
		echo "$a $h" > "$T/peaks"
		sleep 0.1
	done
) &
SAMPLER=$!
fa visit add "beneficiary_id=$BEN" visit_date=2026-11-21 visit_type=needs_assessment \
	"scan=@$T/two.pdf" > /dev/null
until hq attachment list 2> /dev/null | grep -q "^$HASH "; do sleep 0.5; done
touch "$T/moved"
wait "$SAMPLER"
read -r agent_peak hq_peak < "$T/peaks"
stop_agent
echo "RSS moving $MB MB: agent $agent_before KiB before, peak $agent_peak KiB; HQ $hq_before KiB before, peak $hq_peak KiB"
printf 'row\tagent peak RSS moving %d MB (KiB)\t%d\tbefore %d\t%s\n' "$MB" "$agent_peak" \
	"$agent_before" "$(ratio "$agent_peak" "$agent_before")"
printf 'row\tHQ peak RSS receiving %d MB (KiB)\t%d\tbefore %d\t%s\n' "$MB" "$hq_peak" \
	"$hq_before" "$(ratio "$hq_peak" "$hq_before")"
