# web.sh - talking to the web faces (the field app, HQ's console) with
# curl, for tests/cli/test_*.sh that source it after lib.sh.  $URL is the
# face's base URL ("http://127.0.0.1:PORT/").
command -v curl > /dev/null || fail "curl is needed"

# req METHOD PATH [CURL ARGS...]: the answer's status in $CODE, its body
# in $BODY and its headers in $T/headers.
req() {
	local method=$1 path=$2 rc=0
	shift 2
	CODE=$(curl -s --path-as-is -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method" \
		"$@" "$URL${path#/}") || rc=$?
	# No answer at all (curl's exit status): say so, with the server's
	# last words, rather than let set -e end the test without a word.
	[ "$rc" = 0 ] || fail "$method $path: no answer (curl exit $rc); $(tail -n 5 "$T"/*.log 2> /dev/null)"
	BODY=$(cat "$T/body")
}
# post PATH JSON [CURL ARGS...]: as the page posts: its Origin, its JSON.
post() {
	local path=$1 json=$2
	shift 2
	req POST "$path" -H "Origin: ${URL%/}" -H 'Content-Type: application/json' \
		--data-binary "$json" "$@"
}
header() { grep -i "^$1:" "$T/headers" | tr -d '\r'; }
expect_code() { [ "$CODE" = "$1" ] || fail "$2: HTTP $CODE, expected $1: $BODY"; }
# cookie_of NAME: "NAME=VALUE" from the last answer's Set-Cookie.
cookie_of() { header Set-Cookie | sed "s/^Set-Cookie: \($1=[^;]*\);.*/\1/"; }
# json_field NAME: a string member of $BODY.
json_field() { printf '%s' "$BODY" | sed "s/.*\"$1\":\"\([^\"]*\)\".*/\1/"; }

# console_up: HQ started (its config written by the caller), its console
# URL in $URL, and two accounts with the password in $T/pw: ana.admin,
# and tutin.viewer for Tutin.
console_up() {
	expect_exit 0 hq init
	start_hq
	wait_for 30 "the console did not start" in_file "$T/hq.log" "console on http://127.0.0.1:"
	URL=$(sed -n 's|.*console on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$T/hq.log" | tail -n 1)
	printf 'konj-baterija-spajalica\n' > "$T/pw"
	chmod 600 "$T/pw"
	expect_exit 0 hq user add ana.admin --role admin --password-file "$T/pw"
	expect_exit 0 hq user add tutin.viewer --role viewer --municipality Tutin \
		--password-file "$T/pw"
}

# returnee_laptop TEAM MUNICIPALITY: a laptop "novi" (the function novi
# runs fieldsync on it) enrolled for TEAM, whose own forms allow the
# status "returnee" that HQ's do not: HQ quarantines what it writes so.
returnee_laptop() {
	forms_with_status "$T/ownforms" returnee
	novi() { "$FIELDSYNC" --data-dir "$T/novi" --forms-dir "$T/ownforms" --passphrase-file "$PASS" "$@"; }
	expect_exit 0 novi init --kdf interactive
	TOKEN=$(hq enroll-token --team "$1" --municipality "$2" | tail -n 1)
	expect_exit 0 novi enroll "http://127.0.0.1:$PORT" "$TOKEN"
}
