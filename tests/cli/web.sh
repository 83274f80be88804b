# web.sh - talking to the web faces (the field app, HQ's console) with
# curl, for tests/cli/test_*.sh that source it after lib.sh.  $URL is the
# face's base URL ("http://127.0.0.1:PORT/").
command -v curl > /dev/null || fail "curl is needed"

# req METHOD PATH [CURL ARGS...]: the answer's status in $CODE, its body
# in $BODY and its headers in $T/headers.
req() {
	local method=$1 path=$2
	shift 2
	CODE=$(curl -s --path-as-is -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method" \
		"$@" "$URL${path#/}")
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
