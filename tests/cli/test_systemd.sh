# test_systemd.sh - both units stay hardened: systemd-analyze's offline
# exposure score must be at most 2.0 (0 is best, 10 is unprotected), and
# neither may dump core.
set -e
. "$(dirname "$0")/lib.sh"
command -v systemd-analyze > /dev/null || fail "systemd-analyze is needed (package systemd)"

for unit in fieldsync-agent.service fieldsync-hq.service; do
	out=$(systemd-analyze security --offline=true --no-pager "$FS_SOURCE_DIR/systemd/$unit" 2>&1) \
		|| fail "systemd-analyze failed on $unit: $out"
	score=$(printf '%s\n' "$out" | sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p")
	[ -n "$score" ] || fail "no exposure score for $unit: $out"
	echo "$unit: exposure $score"
	awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "$unit scores $score, above 2.0"
done
# The check can fail: a unit without the hardening scores far higher.
printf '[Service]\nExecStart=/bin/true\n' > "$T/plain.service"
out=$(systemd-analyze security --offline=true --no-pager "$T/plain.service" 2>&1 || true)
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for plain.service: \([0-9.]*\).*/\1/p')
awk -v s="$score" 'BEGIN { exit !(s > 2.0) }' || fail "an unhardened unit scored $score"
# No core files: a dump of the agent would hold the data key and records.
for unit in fieldsync-agent.service fieldsync-hq.service; do
	grep -qx 'LimitCORE=0' "$FS_SOURCE_DIR/systemd/$unit" || fail "$unit allows core dumps"
done
echo "systemd: ok"
