/* console.c - HQ's console (hq/console.h).
 *
 * Sections: state; answers; sessions and logins; devices; routing; the
 * server.
 */
#include "hq/console.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <sodium.h>

#include "crypto/keyfile.h"
#include "crypto/secmem.h"
#include "hq/admin.h"
#include "hq/audit.h"
#include "hq/chart.h"
#include "hq/health.h"
#include "hq/hqdb.h"
#include "hq/hqenroll.h"
#include "hq/hqpool.h"
#include "hq/ingest.h"
#include "hq/metrics.h"
#include "hq/programme.h"
#include "hq/server.h"
#include "hq/tlspin.h"
#include "hq/users.h"
#include "sync/hlc.h"
#include "sync/log.h"
#include "sync/scoperule.h"
#include "web/http.h"
#include "web/listen.h"
#include "web/request.h"
#include "web/session.h"

#ifndef FS_CONSOLE_DIR
#define FS_CONSOLE_DIR "/usr/share/fieldsync/console"
#endif

/* The programme view's charts: drawn this wide, scaled by the page. */
#define CONSOLE_CHART_WIDTH 720

/* ---- state ------------------------------------------------------------------ */

struct console {
	const struct hq_config *cfg;
	const struct identity *hq; /* its public key verifies the audit log */
	const struct hq_forms *forms;
	struct MHD_Daemon *mhd;
	struct web_site site;
	struct web_sessions sessions;
	struct hqpool *pool; /* database connections between requests */
	/* Who holds each session slot: set when it opens. */
	struct users_account who[WEB_SESSION_MAX];
	struct users_limits limits;
	int dirfd;
	uint16_t port;
	char *tls_cert, *tls_key; /* PEM; the key in secure memory */
	char *metrics_token;	  /* secure memory; NULL: no /metrics */
	size_t metrics_token_len;
};

/* ---- answers ---------------------------------------------------------------- */

static enum MHD_Result no_session(struct MHD_Connection *conn)
{
	return web_send_error(conn, MHD_HTTP_UNAUTHORIZED, "no_session", "log in first");
}

/* An action that failed: the caller's mistake with its reason, or HQ's
 * own failure, logged (web_send_failure). */
static enum MHD_Result action_failed(struct MHD_Connection *conn, int r, const struct fs_error *err)
{
	return web_send_failure(conn, r, err, "console", "database",
				"HQ could not read its database; see its log");
}

/* A read of HQ's database that failed: HQ's own failure, logged. */
static enum MHD_Result database_failed(struct MHD_Connection *conn, const struct fs_error *err)
{
	return action_failed(conn, -FS_ESTORE, err);
}

/* ---- sessions and logins ----------------------------------------------------- */

/* GET /api/session: whether this browser holds a session, and whose. */
static enum MHD_Result do_session(struct console *c, struct MHD_Connection *conn, uint64_t now)
{
	int idx = web_session_find(&c->sessions, conn, now, 0);
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddBoolToObject(o, "session", idx >= 0)) {
		cJSON_Delete(o);
		return MHD_NO;
	}
	if (idx >= 0) {
		const struct users_account *u = &c->who[idx];

		if (!cJSON_AddStringToObject(o, "user", u->name) ||
		    !cJSON_AddStringToObject(o, "role",
					     u->role == USERS_ADMIN ? "admin" : "viewer") ||
		    !cJSON_AddItemToObject(o, "municipalities",
					   cJSON_Duplicate(u->municipalities, 1)) ||
		    !cJSON_AddStringToObject(o, "csrf", web_session_csrf(&c->sessions, idx))) {
			cJSON_Delete(o);
			return MHD_NO;
		}
	}
	return web_send_json(conn, MHD_HTTP_OK, o, NULL);
}

/* POST /api/login {"name", "password"}. */
static enum MHD_Result do_login(struct console *c, struct MHD_Connection *conn,
				const struct web_body *body, uint64_t now)
{
	char addr[WEB_PEER_KEY_MAX], cookie[WEB_COOKIE_MAX], retry[24];
	struct users_account acc = { 0 };
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	cJSON *req = cJSON_ParseWithLength(body->data, body->len), *o = NULL;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "name"),
		    *pw = cJSON_GetObjectItemCaseSensitive(req, "password");
	uint64_t wait_ms = 0;
	enum MHD_Result ret;
	int r, idx;

	if (!cJSON_IsString(name) || !cJSON_IsString(pw)) {
		ret = web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				     "expected {\"name\", \"password\"}");
		goto out;
	}
	/* Counted as the device API counts addresses: an IPv6 /64 is one. */
	web_peer_key(conn, addr);
	if ((r = hqpool_get(c->pool, &db, &err)) == 0)
		r = users_login(db, name->valuestring, pw->valuestring, strlen(pw->valuestring),
				addr, &c->limits, hlc_wall_ms(), &acc, &wait_ms, &err);
	if (r == -FS_EAUTH) {
		ret = web_send_error(conn, MHD_HTTP_UNAUTHORIZED, "wrong_login",
				     "wrong account name or password");
		goto out;
	}
	if (r == -EBUSY) {
		/* Retry-After in whole seconds, rounded up. */
		snprintf(retry, sizeof(retry), "%llu", (unsigned long long)(wait_ms + 999) / 1000);
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddStringToObject(o, "error", "paused") ||
		    !cJSON_AddStringToObject(o, "message",
					     "too many failed logins: wait, then try again") ||
		    !cJSON_AddNumberToObject(o, "retry_after_s",
					     (double)((wait_ms + 999) / 1000))) {
			ret = MHD_NO;
			goto out;
		}
		ret = web_send_json_with(conn, MHD_HTTP_TOO_MANY_REQUESTS, o, NULL, "Retry-After",
					 retry);
		o = NULL;
		goto out;
	}
	if (r < 0) {
		ret = database_failed(conn, &err);
		goto out;
	}
	if ((idx = web_session_open(&c->sessions, now, cookie)) < 0) {
		ret = web_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no_session",
				     "HQ could not open a session");
		goto out;
	}
	users_account_clear(&c->who[idx]);
	c->who[idx] = acc;
	memset(&acc, 0, sizeof(acc));
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "user", c->who[idx].name) ||
	    !cJSON_AddStringToObject(o, "csrf", web_session_csrf(&c->sessions, idx))) {
		ret = MHD_NO;
		goto out;
	}
	log_msg(LOG_INFO, "console: %s logged in from %s", c->who[idx].name, addr);
	ret = web_send_json(conn, MHD_HTTP_OK, o, cookie);
	o = NULL;
out:
	cJSON_Delete(o);
	users_account_clear(&acc);
	hqpool_put(c->pool, db);
	/* The request's copy of the password: the body itself is wiped by
	 * web_body_done. */
	if (cJSON_IsString(pw))
		sodium_memzero(pw->valuestring, strlen(pw->valuestring));
	cJSON_Delete(req);
	return ret;
}

/* POST /api/logout. */
static enum MHD_Result do_logout(struct console *c, struct MHD_Connection *conn, int idx)
{
	char cookie[WEB_COOKIE_MAX];
	cJSON *o = cJSON_CreateObject();

	web_session_close(&c->sessions, idx);
	users_account_clear(&c->who[idx]);
	web_session_forget_cookie(&c->sessions, cookie);
	if (!o || !cJSON_AddBoolToObject(o, "session", 0)) {
		cJSON_Delete(o);
		return MHD_NO;
	}
	return web_send_json(conn, MHD_HTTP_OK, o, cookie);
}

/* ---- devices ------------------------------------------------------------------ */

/* Whether account u sees data of municipality m. */
static int sees(const struct users_account *u, const char *m)
{
	const char *names[64];
	size_t n = 0;
	const cJSON *it;

	if (u->role == USERS_ADMIN)
		return 1;
	cJSON_ArrayForEach(it, u->municipalities) if (n < 64 && cJSON_IsString(it)) names[n++] =
		it->valuestring;
	return m && scoperule_holds(names, n, m);
}

/* GET /api/devices: what `devices --json` says, for the devices the
 * account sees, each with "red" and why. */
static enum MHD_Result do_devices(struct console *c, struct MHD_Connection *conn, int idx)
{
	const struct users_account *u = &c->who[idx];
	uint64_t now = hlc_wall_ms();
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	cJSON *all = NULL, *out = NULL, *d, *next;
	int r;

	if ((r = hqpool_get(c->pool, &db, &err)) == 0)
		r = admin_devices_array(db, &all, &err);
	hqpool_put(c->pool, db);
	if (r < 0)
		return database_failed(conn, &err);
	if (!(out = cJSON_CreateObject()) || !cJSON_AddItemToObject(out, "devices", all)) {
		cJSON_Delete(all);
		cJSON_Delete(out);
		return MHD_NO;
	}
	for (d = all->child; d; d = next) {
		const cJSON *muni = cJSON_GetObjectItemCaseSensitive(d, "municipality");
		const char *why;
		int red;

		next = d->next;
		if (!sees(u, cJSON_IsString(muni) ? muni->valuestring : NULL)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(all, d));
			continue;
		}
		red = health_red(d, now, c->cfg->console.red_unseen_hours,
				 c->cfg->console.red_backlog_hours, &why);
		if (!cJSON_AddBoolToObject(d, "red", red) ||
		    !cJSON_AddStringToObject(d, "why", why)) {
			cJSON_Delete(out);
			return MHD_NO;
		}
	}
	return web_send_json(conn, MHD_HTTP_OK, out, NULL);
}

/* ---- the audit log ---------------------------------------------------------------- */

#define CONSOLE_AUDIT_ROWS 200

static enum MHD_Result admins_only(struct MHD_Connection *conn)
{
	return web_send_error(conn, MHD_HTTP_FORBIDDEN, "admins_only",
			      "this is for administrators only");
}

/* A query argument, or NULL (absent or empty). */
static const char *arg(struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

	return v && *v ? v : NULL;
}

/* GET /api/audit?event=TYPE&device=ID: the newest entries, newest first. */
static enum MHD_Result do_audit(struct console *c, struct MHD_Connection *conn, int idx)
{
	struct audit_filter f = { .device = arg(conn, "device"), .event = arg(conn, "event") };
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	cJSON *entries = NULL, *o;
	int r;

	if (c->who[idx].role != USERS_ADMIN)
		return admins_only(conn);
	if ((r = hqpool_get(c->pool, &db, &err)) == 0)
		r = audit_recent(db, &f, CONSOLE_AUDIT_ROWS, &entries, &err);
	hqpool_put(c->pool, db);
	if (r < 0)
		return database_failed(conn, &err);
	if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToObject(o, "entries", entries)) {
		cJSON_Delete(entries);
		cJSON_Delete(o);
		return MHD_NO;
	}
	return web_send_json(conn, MHD_HTTP_OK, o, NULL);
}

/* POST /api/audit/verify: every leaf, checkpoint and node recomputed
 * (audit_verify), and what it found; an action, so audited. */
static enum MHD_Result do_audit_verify(struct console *c, struct MHD_Connection *conn, int idx)
{
	struct fs_error err = { 0 }, verr = { 0 };
	struct hqsql *db = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f = NULL;
	cJSON *o = NULL;
	int r, v = 0;

	if (c->who[idx].role != USERS_ADMIN)
		return admins_only(conn);
	if (!(f = open_memstream(&text, &len)))
		return MHD_NO;
	if ((r = hqpool_get(c->pool, &db, &err)) == 0) {
		v = audit_verify(db, c->hq->sign_pk, f, &verr);
		r = audit_append_strings(db, hlc_wall_ms(), "console", NULL, &err, "user",
					 c->who[idx].name, "action", "audit verify",
					 (const char *)NULL);
	}
	hqpool_put(c->pool, db);
	fclose(f);
	if (r < 0 || (v < 0 && v != -FS_ECORRUPT)) {
		free(text);
		return database_failed(conn, r < 0 ? &err : &verr);
	}
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddBoolToObject(o, "ok", v == 0) ||
	    !cJSON_AddStringToObject(o, "text", v == 0 ? (text ? text : "") : verr.msg)) {
		cJSON_Delete(o);
		free(text);
		return MHD_NO;
	}
	free(text);
	return web_send_json(conn, MHD_HTTP_OK, o, NULL);
}

/* ---- actions ------------------------------------------------------------------ */

/* Who did it, beside what the action itself audits. */
static int audit_action(struct hqsql *db, const struct users_account *u, const char *action,
			const char *what, struct fs_error *err)
{
	return audit_append_strings(db, hlc_wall_ms(), "console", NULL, err, "user", u->name,
				    "action", action, "what", what, (const char *)NULL);
}

/* Whether n is a whole number in [min, max]: an id, not 1.9. */
static int whole(const cJSON *n, double min, double max)
{
	return cJSON_IsNumber(n) && n->valuedouble >= min && n->valuedouble <= max &&
	       n->valuedouble == (double)(int64_t)n->valuedouble;
}

static cJSON *body_json(const struct web_body *body)
{
	cJSON *o = cJSON_ParseWithLength(body->data, body->len);

	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* POST /api/devices/revoke {"device", "reason"}: HQ refuses the device
 * from now on (admin_revoke). */
static enum MHD_Result do_revoke(struct console *c, struct MHD_Connection *conn, int idx,
				 const struct web_body *body)
{
	cJSON *req = body_json(body), *o = NULL;
	const char *device = web_json_text(req, "device"), *reason = web_json_text(req, "reason");
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	enum MHD_Result ret;
	int r;

	if (c->who[idx].role != USERS_ADMIN) {
		ret = admins_only(conn);
		goto out;
	}
	if (!device) {
		ret = web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				     "expected {\"device\", \"reason\"}");
		goto out;
	}
	if ((r = hqpool_get(c->pool, &db, &err)) == 0 &&
	    (r = admin_revoke(db, device, reason ? reason : "revoked from the console",
			      hlc_wall_ms(), &err)) == 0)
		r = audit_action(db, &c->who[idx], "revoke", device, &err);
	hqpool_put(c->pool, db);
	if (r < 0) {
		/* admin_revoke's usage error is a device id that is not one. */
		ret = action_failed(conn, r == -FS_EUSAGE ? -FS_ENOTFOUND : r, &err);
		goto out;
	}
	if (!(o = cJSON_CreateObject()) || !cJSON_AddStringToObject(o, "revoked", device)) {
		ret = MHD_NO;
		goto out;
	}
	log_msg(LOG_NOTICE, "console: %s revoked device %s", c->who[idx].name, device);
	ret = web_send_json(conn, MHD_HTTP_OK, o, NULL);
	o = NULL;
out:
	cJSON_Delete(o);
	cJSON_Delete(req);
	return ret;
}

/* POST /api/tokens {"team", "municipality", "scope"?, "hours"?}: a
 * one-time enrolment token, shown once (hqenroll_token_create). */
static enum MHD_Result do_token(struct console *c, struct MHD_Connection *conn, int idx,
				const struct web_body *body)
{
	cJSON *req = body_json(body), *o = NULL;
	const cJSON *hours = cJSON_GetObjectItemCaseSensitive(req, "hours");
	const char *team = web_json_text(req, "team"), *muni = web_json_text(req, "municipality");
	char token[TOKEN_TEXT_MAX], when[HLC_TIME_LEN + 1];
	uint8_t pin[TLSPIN_BYTES];
	uint64_t now = hlc_wall_ms(), ttl = 24 * 3600000ull;
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	enum MHD_Result ret;
	int r;

	if (c->who[idx].role != USERS_ADMIN) {
		ret = admins_only(conn);
		goto out;
	}
	if (cJSON_IsNumber(hours) && hours->valuedouble >= 1 && hours->valuedouble <= 24 * 30)
		ttl = (uint64_t)hours->valuedouble * 3600000ull;
	if (!team || !muni || (hours && !cJSON_IsNumber(hours))) {
		ret = web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				     "expected {\"team\", \"municipality\", \"scope\", "
				     "\"hours\"}");
		goto out;
	}
	if ((r = hqpool_get(c->pool, &db, &err)) == 0 &&
	    (!c->cfg->tls_cert || (r = tlspin_from_cert(c->cfg->tls_cert, pin, &err)) == 0) &&
	    (r = hqenroll_token_create(db, c->hq, team, muni, web_json_text(req, "scope"), now,
				       now + ttl, c->cfg->tls_cert ? pin : NULL, token, &err)) == 0)
		r = audit_action(db, &c->who[idx], "enrolment token", team, &err);
	hqpool_put(c->pool, db);
	if (r < 0) {
		ret = action_failed(conn, r, &err);
		goto out;
	}
	hlc_format_time((hlc_t)(now + ttl) << 16, when);
	if (!(o = cJSON_CreateObject()) || !cJSON_AddStringToObject(o, "token", token) ||
	    !cJSON_AddStringToObject(o, "valid_until", when)) {
		ret = MHD_NO;
		goto out;
	}
	ret = web_send_json(conn, MHD_HTTP_OK, o, NULL);
	o = NULL;
out:
	sodium_memzero(token, sizeof(token));
	cJSON_Delete(o);
	cJSON_Delete(req);
	return ret;
}

/* ---- the quarantine ------------------------------------------------------------ */

/* Drop the rows of arr whose municipality account u does not see: the
 * record's scope key (member scope_key) when HQ knows it, else the
 * member fallback (a quarantined change to a record HQ never merged: its
 * sender's municipality), else none. */
static void only_seen(const struct users_account *u, cJSON *arr, const char *fallback)
{
	cJSON *d, *next;

	for (d = arr ? arr->child : NULL; d; d = next) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "scope_key");

		if (!cJSON_IsString(m) && fallback)
			m = cJSON_GetObjectItemCaseSensitive(d, fallback);

		next = d->next;
		if (!sees(u, cJSON_IsString(m) ? m->valuestring : NULL))
			cJSON_Delete(cJSON_DetachItemViaPointer(arr, d));
	}
}

/* A listing for the page: list()'s rows, less those of municipalities
 * the account does not see (only_seen), as {member: rows}. */
static enum MHD_Result send_listing(struct console *c, struct MHD_Connection *conn, int idx,
				    int (*list)(struct hqsql *, cJSON **, struct fs_error *),
				    const char *fallback, const char *member)
{
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	cJSON *rows = NULL, *o;
	int r;

	if ((r = hqpool_get(c->pool, &db, &err)) == 0)
		r = list(db, &rows, &err);
	hqpool_put(c->pool, db);
	if (r < 0)
		return database_failed(conn, &err);
	only_seen(&c->who[idx], rows, fallback);
	if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToObject(o, member, rows)) {
		cJSON_Delete(rows);
		cJSON_Delete(o);
		return MHD_NO;
	}
	return web_send_json(conn, MHD_HTTP_OK, o, NULL);
}

/* POST /api/quarantine/release or /reject {"device", "seq", "index",
 * "reason"}: an administrator's word on one change (ingest_review). */
static enum MHD_Result do_review(struct console *c, struct MHD_Connection *conn, int idx,
				 const struct web_body *body, int release)
{
	cJSON *req = body_json(body), *o = NULL;
	const cJSON *seq = cJSON_GetObjectItemCaseSensitive(req, "seq"),
		    *index = cJSON_GetObjectItemCaseSensitive(req, "index");
	const char *device = web_json_text(req, "device"), *reason = web_json_text(req, "reason");
	struct ingest_ctx ctx = { .hq = c->hq, .forms = c->forms, .wall_ms = hlc_wall_ms };
	struct fs_error err = { 0 };
	enum MHD_Result ret;
	int r;

	if (c->who[idx].role != USERS_ADMIN) {
		ret = admins_only(conn);
		goto out;
	}
	if (!device || !whole(seq, 1, 9007199254740991.0) || !whole(index, 0, UINT32_MAX) ||
	    !reason) {
		ret = web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				     "expected {\"device\", \"seq\", \"index\", \"reason\"}");
		goto out;
	}
	if ((r = hqpool_get(c->pool, &ctx.db, &err)) == 0)
		r = ingest_review(&ctx, device, (uint64_t)seq->valuedouble,
				  (uint32_t)index->valuedouble, release, c->who[idx].name, reason,
				  &err);
	hqpool_put(c->pool, ctx.db);
	if (r < 0) {
		ret = action_failed(conn, r, &err);
		goto out;
	}
	if (!(o = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(o, release ? "released" : "rejected", device)) {
		ret = MHD_NO;
		goto out;
	}
	log_msg(LOG_NOTICE, "console: %s %s change %u of set %llu from %s", c->who[idx].name,
		release ? "released" : "rejected", (unsigned)index->valuedouble,
		(unsigned long long)seq->valuedouble, device);
	ret = web_send_json(conn, MHD_HTTP_OK, o, NULL);
	o = NULL;
out:
	cJSON_Delete(o);
	cJSON_Delete(req);
	return ret;
}

/* ---- conflicts ----------------------------------------------------------------- */

/* POST /api/conflicts/resolve {"id", "keep": "a"|"b"} or {"id",
 * "value": TEXT}: an administrator settles a conflict (ingest_resolve);
 * HQ reads TEXT by the field's type. */
static enum MHD_Result do_resolve(struct console *c, struct MHD_Connection *conn, int idx,
				  const struct web_body *body)
{
	cJSON *req = body_json(body), *o = NULL;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id"),
		    *value = cJSON_GetObjectItemCaseSensitive(req, "value");
	const char *keep = web_json_text(req, "keep");
	struct ingest_ctx ctx = { .hq = c->hq, .forms = c->forms, .wall_ms = hlc_wall_ms };
	struct fs_error err = { 0 };
	enum MHD_Result ret;
	int r;

	if (c->who[idx].role != USERS_ADMIN) {
		ret = admins_only(conn);
		goto out;
	}
	if (!whole(id, 1, 9007199254740991.0) || !keep == !cJSON_IsString(value) ||
	    (value && !cJSON_IsString(value))) {
		ret = web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				     "expected {\"id\", \"keep\": \"a\" or \"b\"} or {\"id\", "
				     "\"value\"}");
		goto out;
	}
	if ((r = hqpool_get(c->pool, &ctx.db, &err)) == 0)
		r = ingest_resolve(&ctx, (int64_t)id->valuedouble, keep ? keep : "new",
				   keep ? NULL : value->valuestring, c->who[idx].name, &err);
	hqpool_put(c->pool, ctx.db);
	if (r < 0) {
		ret = action_failed(conn, r, &err);
		goto out;
	}
	if (!(o = cJSON_CreateObject()) ||
	    !cJSON_AddNumberToObject(o, "resolved", id->valuedouble)) {
		ret = MHD_NO;
		goto out;
	}
	log_msg(LOG_NOTICE, "console: %s resolved conflict %.0f", c->who[idx].name,
		id->valuedouble);
	ret = web_send_json(conn, MHD_HTTP_OK, o, NULL);
	o = NULL;
out:
	cJSON_Delete(o);
	cJSON_Delete(req);
	return ret;
}

/* ---- the programme view ------------------------------------------------------ */

static int account_sees(void *cls, const char *municipality)
{
	return sees(cls, municipality);
}

/* GET /api/programme/NAME.svg or NAME.csv (hq/programme.h): the chart
 * drawn by HQ, or its numbers, the account's municipalities only. */
static enum MHD_Result do_programme(struct console *c, struct MHD_Connection *conn, int idx,
				    const char *file)
{
	const char *dot = strrchr(file, '.');
	char name[32], disposition[96];
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	struct chart *ch = NULL;
	char *text = NULL;
	size_t len = 0;
	int r, svg;

	if (!dot || (size_t)(dot - file) >= sizeof(name) ||
	    (strcmp(dot, ".svg") && strcmp(dot, ".csv")))
		return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such chart");
	svg = !strcmp(dot, ".svg");
	snprintf(name, sizeof(name), "%.*s", (int)(dot - file), file);
	if ((r = hqpool_get(c->pool, &db, &err)) == 0)
		r = programme_chart(db, c->forms, name, account_sees, &c->who[idx], hlc_wall_ms(),
				    &ch, &err);
	hqpool_put(c->pool, db);
	if (r < 0)
		return action_failed(conn, r, &err);
	r = svg ? chart_svg(ch, CONSOLE_CHART_WIDTH, &text, &len) : chart_csv(ch, &text, &len);
	chart_free(ch);
	if (r < 0)
		return MHD_NO;
	if (svg)
		return web_send(conn, MHD_HTTP_OK, text, len, "image/svg+xml; charset=utf-8", NULL);
	snprintf(disposition, sizeof(disposition), "attachment; filename=\"fieldsync-%s.csv\"",
		 name);
	return web_send_with(conn, MHD_HTTP_OK, text, len, "text/csv; charset=utf-8", NULL,
			     MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
}

/* ---- metrics ------------------------------------------------------------------ */

/* GET /metrics with "Authorization: Bearer TOKEN" (hq/metrics.h). */
static enum MHD_Result do_metrics(struct console *c, struct MHD_Connection *conn)
{
	const char *auth =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	char *text = NULL;
	int r;

	if (!c->metrics_token)
		return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found",
				      "no metrics: set [console] metrics_token_file");
	if (!auth || strncmp(auth, "Bearer ", 7) || strlen(auth + 7) != c->metrics_token_len ||
	    sodium_memcmp(auth + 7, c->metrics_token, c->metrics_token_len) != 0)
		return web_send_error(conn, MHD_HTTP_UNAUTHORIZED, "no_token",
				      "send Authorization: Bearer and the metrics token");
	if ((r = hqpool_get(c->pool, &db, &err)) == 0)
		r = metrics_render(db, c->cfg, &text, &err);
	hqpool_put(c->pool, db);
	if (r < 0)
		return database_failed(conn, &err);
	return web_send(conn, MHD_HTTP_OK, text, strlen(text), "text/plain; version=0.0.4", NULL);
}

/* ---- routing ------------------------------------------------------------------ */

static enum MHD_Result route_get(struct console *c, struct MHD_Connection *conn, const char *url,
				 uint64_t now)
{
	int idx;

	if (!strcmp(url, "/"))
		return web_send_file(conn, c->dirfd, "index.html");
	if (!strcmp(url, "/api/session"))
		return do_session(c, conn, now);
	if (!strcmp(url, "/metrics"))
		return do_metrics(c, conn);
	if (!strncmp(url, "/api/", 5)) {
		if ((idx = web_session_find(&c->sessions, conn, now, 1)) < 0)
			return no_session(conn);
		if (!strcmp(url, "/api/devices"))
			return do_devices(c, conn, idx);
		if (!strcmp(url, "/api/audit"))
			return do_audit(c, conn, idx);
		/* Changes kept but not merged, and why, by the record's
		 * municipality, or the sender's for a record HQ never took. */
		if (!strcmp(url, "/api/quarantine"))
			return send_listing(c, conn, idx, admin_quarantine_array, "municipality",
					    "changes");
		/* Conflicts with both values (personal data: no-store, as
		 * every answer) and their resolution, by the record's. */
		if (!strcmp(url, "/api/conflicts"))
			return send_listing(c, conn, idx, admin_conflicts_array, NULL, "conflicts");
		if (!strncmp(url, "/api/programme/", 15))
			return do_programme(c, conn, idx, url + 15);
		return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such request");
	}
	return web_send_file(conn, c->dirfd, url + 1);
}

static enum MHD_Result route_post(struct console *c, struct MHD_Connection *conn, const char *url,
				  const struct web_body *body, uint64_t now)
{
	int idx;

	if (body->too_big)
		return web_send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
				      "the request is larger than the console sends");
	if (!strcmp(url, "/api/login"))
		return do_login(c, conn, body, now);
	if ((idx = web_session_find(&c->sessions, conn, now, 1)) < 0)
		return no_session(conn);
	if (!web_session_csrf_ok(&c->sessions, idx, conn))
		return web_send_error(conn, MHD_HTTP_FORBIDDEN, "csrf",
				      "the request lacks this session's token");
	if (!strcmp(url, "/api/logout"))
		return do_logout(c, conn, idx);
	if (!strcmp(url, "/api/audit/verify"))
		return do_audit_verify(c, conn, idx);
	if (!strcmp(url, "/api/devices/revoke"))
		return do_revoke(c, conn, idx, body);
	if (!strcmp(url, "/api/tokens"))
		return do_token(c, conn, idx, body);
	if (!strcmp(url, "/api/quarantine/release") || !strcmp(url, "/api/quarantine/reject"))
		return do_review(c, conn, idx, body, !strcmp(url, "/api/quarantine/release"));
	if (!strcmp(url, "/api/conflicts/resolve"))
		return do_resolve(c, conn, idx, body);
	return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such request");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct console *c = cls;
	struct web_body *body = NULL;

	(void)version;
	if (!*con_cls && !web_http_allowed(conn, &c->site, method)) {
		log_msg(LOG_NOTICE, "console: refused a request naming another host or origin");
		return web_send_error(conn, MHD_HTTP_FORBIDDEN, "forbidden",
				      "the request names another host or comes from another site");
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST)) {
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return web_send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
					      "only GET and POST");
		return route_get(c, conn, url, hlc_mono_ms());
	}
	switch (web_body_gather(con_cls, upload, upload_size, &body)) {
	case WEB_BODY_FAILED:
		return MHD_NO;
	case WEB_BODY_MORE:
		return MHD_YES;
	default:
		return route_post(c, conn, url, body, hlc_mono_ms());
	}
}

/* ---- the server -------------------------------------------------------------- */

int console_start(const struct hq_config *cfg, const struct identity *hq,
		  const struct hq_forms *forms, struct console **ret, struct fs_error *err)
{
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage addr;
	struct console *c = NULL;
	char where[4096];
	socklen_t alen;
	int loopback = 0, https, r;

	*ret = NULL;
	if (cfg->console.enabled && !strcmp(cfg->console.enabled, "no"))
		return 0;
	if ((r = web_listen_parse(cfg->console.listen, &addr, &alen, &loopback, err)) < 0)
		return r;
	https = cfg->tls_cert != NULL;
	if (!https && !loopback)
		return fs_error_set(err, -FS_EUSAGE,
				    "[console] listen %s: plain HTTP is allowed only on a loopback "
				    "address; configure [server] tls_cert and tls_key",
				    cfg->console.listen);
	if (!(c = calloc(1, sizeof(*c))))
		return fs_error_set(err, -ENOMEM, "out of memory");
	c->cfg = cfg;
	c->hq = hq;
	c->forms = forms;
	c->dirfd = -1;
	c->limits = (struct users_limits){
		.tries = cfg->console.login_tries,
		.addr_tries = cfg->console.login_address_tries,
		.pause_ms = (uint64_t)cfg->console.login_pause_minutes * 60000ull,
	};
	if (https && ((r = server_read_pem(cfg->tls_cert, 0, &c->tls_cert, err)) < 0 ||
		      (r = server_read_pem(cfg->tls_key, 1, &c->tls_key, err)) < 0))
		goto out;
	if (cfg->console.metrics_token_file &&
	    (r = keyfile_read_passphrase(cfg->console.metrics_token_file, &c->metrics_token,
					 &c->metrics_token_len, err)) < 0)
		goto out;
	if ((c->dirfd = web_pages_open(cfg->console.dir, CONSOLE_PAGES, FS_CONSOLE_DIR, where,
				       sizeof(where))) < 0) {
		r = fs_error_set(err, -errno, "console: no pages in %s: %s", where,
				 strerror(errno));
		goto out;
	}
	/* One thread serves the console: one connection is enough to keep. */
	if ((r = hqpool_new(cfg, 1, &c->pool, err)) < 0)
		goto out;
	if (web_sessions_init(&c->sessions, CONSOLE_COOKIE, https,
			      (uint64_t)cfg->console.idle_minutes * 60000ull) < 0) {
		r = fs_error_set(err, -ENOMEM, "console: out of secure memory");
		goto out;
	}
	/* One thread: the session table is its alone. */
	c->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG | MHD_USE_ITC |
			(https ? MHD_USE_TLS : 0) | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER, web_mhd_log, "console",
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)CONSOLE_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)CONSOLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, web_body_done, c,
		https ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, c->tls_cert,
		MHD_OPTION_HTTPS_MEM_KEY, c->tls_key, MHD_OPTION_END);
	if (!c->mhd) {
		r = fs_error_set(err, -EADDRINUSE,
				 "console: cannot listen on %s (address in use, or a bad TLS "
				 "certificate or key)",
				 cfg->console.listen);
		goto out;
	}
	info = MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_BIND_PORT);
	c->port = info ? info->port : 0;
	web_site_init(&c->site, https ? "https" : "http", &addr, c->port);
	if (cfg->console.host)
		web_site_name(&c->site, cfg->console.host, c->port);
	*ret = c;
	c = NULL;
	r = 0;
out:
	console_stop(c);
	return r;
}

uint16_t console_port(const struct console *c)
{
	return c->port;
}

void console_url(const struct console *c, char *out, size_t cap)
{
	web_site_url(&c->site, out, cap);
}

struct console *console_stop(struct console *c)
{
	if (!c)
		return NULL;
	if (c->mhd)
		MHD_stop_daemon(c->mhd);
	hqpool_free(c->pool);
	web_sessions_free(&c->sessions);
	for (size_t i = 0; i < WEB_SESSION_MAX; i++)
		users_account_clear(&c->who[i]);
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->tls_cert);
	secmem_free(c->tls_key);
	secmem_free(c->metrics_token);
	free(c);
	return NULL;
}
