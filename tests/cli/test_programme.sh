# test_programme.sh - the console's programme view (hq/programme.h): the
# four charts HQ draws as SVG, and the same numbers as CSV, counted from
# what devices in three municipalities sent; a viewer for Tutin gets
# Tutin's numbers only, in the pictures and in the downloads.
set -e
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/web.sh"
[ -x "$HQ_BIN" ] || fail "no fieldsync-hq next to $FIELDSYNC (build the hq target)"
at_exit 'stop_hq'

hq_conf
console_up

# A municipality whose name needs escaping in SVG and quoting in CSV.
ODD='Kula & "Vrbas" <Stari>'
dev_enrol tutin "Tim Tutin" Tutin Tutin
dev_enrol sjenica "Tim Sjenica" Sjenica Sjenica
dev_enrol kula "Tim Kula" "$ODD" "$ODD"
household() { # household DEV MUNICIPALITY STATUS: its id in $H
	expect_exit 0 dev "$1" beneficiary add "full_name=Petrović Ђорђе" "municipality=$2" \
		"status=$3" household_size=3 consent=yes
	H=$(printf '%s\n' "$OUT" | tail -n 1)
}
visit() { # visit DEV HOUSEHOLD DAYS_AGO TYPE
	expect_exit 0 dev "$1" visit add "beneficiary_id=$2" "visit_date=$(date -d "-$3 days" +%F)" \
		"visit_type=$4"
}
household tutin Tutin refugee
visit tutin "$H" 1 needs_assessment
visit tutin "$H" 15 legal_assistance
household tutin Tutin idp
visit tutin "$H" 2 needs_assessment
# The same municipality in Cyrillic: one series, shown as first seen.
household tutin Тутин refugee
visit tutin "$H" 3 vocational_training
household sjenica Sjenica idp
visit sjenica "$H" 1 needs_assessment
visit sjenica "$H" 3 vocational_training
household kula "$ODD" host_community
visit kula "$H" 0 legal_assistance
for d in tutin sjenica kula; do expect_exit 0 dev "$d" sync; done

post /api/login '{"name":"tutin.viewer","password":"konj-baterija-spajalica"}'
VIEWER=$(cookie_of fieldsync_console)
post /api/login '{"name":"ana.admin","password":"konj-baterija-spajalica"}'
ADMIN=$(cookie_of fieldsync_console)

req GET /api/programme/visit-types.csv
expect_code 401 "a chart without a session"
req GET /api/programme/nothing.csv -H "Cookie: $ADMIN"
expect_code 404 "a chart that is not there"
req GET /api/programme/visit-types.txt -H "Cookie: $ADMIN"
expect_code 404 "a chart in another format"

# csv AS NAME: the CSV as that account downloads it, checked and kept.
csv() {
	req GET "/api/programme/$2.csv" -H "Cookie: $1"
	expect_code 200 "$2.csv"
	must_contain "$(header Content-Type)" "text/csv"
	must_contain "$(header Content-Disposition)" "attachment; filename=\"fieldsync-$2.csv\""
	must_contain "$(header Cache-Control)" "no-store"
	printf '%s' "$BODY" > "$T/$2.csv"
}
# check CSV PYTHON: the CSV's rows as dicts in `rows`, header in `head`.
check() {
	python3 - "$T/$1.csv" "$2" << 'PY' || fail "$1.csv: $(cat "$T/$1.csv")"
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    r = list(csv.reader(f))
head, rows = r[0], [dict(zip(r[0], x)) for x in r[1:]]
total = lambda col: sum(int(x[col]) for x in rows)
exec(sys.argv[2])
PY
}

csv "$ADMIN" visit-types
check visit-types '
assert head == ["visit type", "count"], head
n = {x["visit type"]: int(x["count"]) for x in rows}
assert n["Needs assessment"] == 3 and n["Legal assistance"] == 2, n
assert n["Vocational training"] == 2 and n["Prefab installation"] == 0, n
assert [x["visit type"] for x in rows][0] == "Needs assessment", rows  # the form order'
csv "$VIEWER" visit-types
check visit-types '
n = {x["visit type"]: int(x["count"]) for x in rows}
assert n["Needs assessment"] == 2 and n["Legal assistance"] == 1, n
assert n["Vocational training"] == 1, n'

csv "$ADMIN" households-by-status
check households-by-status '
n = {x["status"]: int(x["count"]) for x in rows}
assert n == {"Refugee": 2, "Internally displaced": 2, "Asylum seeker": 0, "Host community": 1}, n'
csv "$VIEWER" households-by-status
check households-by-status '
n = {x["status"]: int(x["count"]) for x in rows}
assert n["Internally displaced"] == 1 and n["Host community"] == 0, n'

csv "$ADMIN" visits-by-week
check visits-by-week '
assert head[0] == "week" and sorted(head[1:]) == sorted(["Tutin", "Sjenica", "Kula & \"Vrbas\" <Stari>"]), head
assert len(rows) >= 12 and total("Tutin") == 4 and total("Sjenica") == 2, rows
assert [x["week"] for x in rows] == sorted(x["week"] for x in rows), rows'
csv "$VIEWER" visits-by-week
check visits-by-week '
assert head == ["week", "Tutin"], head
assert total("Tutin") == 4, rows'

csv "$ADMIN" merged-by-day
check merged-by-day '
assert head[0] == "day" and "Sjenica" in head and "Tutin" in head, head
assert len(rows) >= 30, rows
# Tutin sent 2 households and 3 visits: every field of each is a change.
assert total("Tutin") > 10 and total("Sjenica") > 5, rows'
csv "$VIEWER" merged-by-day
check merged-by-day '
assert head == ["day", "Tutin"], head'
! grep -q "Sjenica" "$T/merged-by-day.csv" || fail "the viewer's download names Sjenica"

# The pictures: SVG that parses as XML, with no script, the same labels.
for chart in visits-by-week visit-types households-by-status merged-by-day; do
	req GET "/api/programme/$chart.svg" -H "Cookie: $ADMIN"
	expect_code 200 "$chart.svg"
	must_contain "$(header Content-Type)" "image/svg+xml"
	must_contain "$(header Content-Security-Policy)" "default-src 'none'"
	printf '%s' "$BODY" > "$T/$chart.svg"
	python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$T/$chart.svg" ||
		fail "$chart.svg is not well-formed: $BODY"
	must_not_contain "$BODY" "<script"
	must_not_contain "$BODY" "href"
done
must_contain "$(cat "$T/visits-by-week.svg")" "Kula &amp; &quot;Vrbas&quot; &lt;Stari&gt;"
must_contain "$(cat "$T/visit-types.svg")" "Needs assessment"
req GET /api/programme/visits-by-week.svg -H "Cookie: $VIEWER"
must_contain "$BODY" "Tutin"
must_not_contain "$BODY" "Sjenica"
must_not_contain "$BODY" "Kula"
echo "ok"
