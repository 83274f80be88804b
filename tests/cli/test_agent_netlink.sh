# test_agent_netlink.sh - the agent learns that the network is back from
# rtnetlink, not from a timer.  In a private network namespace (unshare
# -rn) HQ listens on loopback; the loopback link goes down, visits are
# written, the first push fails and the retry is scheduled up to ten
# minutes away; the link comes up and the agent pushes at once.
set -e
if [ "${FS_IN_NETNS:-}" != 1 ]; then
	command -v unshare > /dev/null || { echo "FAIL: unshare (util-linux) is needed" >&2; exit 1; }
	command -v ip > /dev/null || { echo "FAIL: ip (iproute2) is needed" >&2; exit 1; }
	FS_IN_NETNS=1 exec unshare -rn bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'kill_agent; stop_hq'
ip link set lo up

hq_conf

hq_and_enrolled_store "Tim Sremska Mitrovica" "Sremska Mitrovica"
id=$(add_person "Ђурђевић Милан")
# Retries ten minutes apart: only a network event can explain a quick push.
agent_conf "retry_min = 600" "retry_max = 600" "connect_timeout = 2"
start_agent --passphrase-file "$PASS"
wait_hq_count beneficiaries 1 > /dev/null

ip link set lo down
for i in 1 2 3; do
	expect_exit 0 fa visit add "beneficiary_id=$id" visit_date=2026-11-2$i visit_type=needs_assessment
done
unreachable() { fa status | grep -q "last error  HQ unreachable"; }
wait_for 60 "status never said HQ is unreachable" unreachable
expect_exit 0 fa status
must_contain "$OUT" "last error  HQ unreachable"
must_contain "$OUT" "next try"
[ "$(grep -c 'network change' "$T/agent.log")" -eq 0 ] || fail "network change before the link came up"

up=$(date +%s%3N)
ip link set lo up
ms=$(wait_hq_count visits 3)
echo "loopback up to 3 visits merged: ${ms} ms (retry timer up to 600 s away)" >&2
grep -q "network change: pushing" "$T/agent.log" || fail "the agent did not notice the link come up"
: "$up"
same_once visit visits
stop_agent
echo "ok: netlink wakes the agent"
