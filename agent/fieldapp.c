/* fieldapp.c - the field app's server and API (agent/fieldapp.h). */
#include "agent/fieldapp.h"
#include "agent/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/agentd.h"
#include "agent/appforms.h"
#include "agent/caseload.h"
#include "agent/enroll.h"
#include "agent/keystore.h"
#include "agent/push.h"
#include "agent/synclog.h"
#include "sync/hlc.h"
#include "sync/log.h"
#include "sync/uuid.h"
#include "web/listen.h"
#include "web/request.h"

#define PAGES "share/fieldsync/web" /* beside the program, in the build tree */
#define CONNECTIONS 32
#define CONNECTION_TIMEOUT_S 60

/* ---- answers ----------------------------------------------------------- */

static enum MHD_Result no_session(struct MHD_Connection *conn)
{
	return web_send_error(conn, MHD_HTTP_UNAUTHORIZED, "no_session",
			      "unlock the app first; the session ended or never began");
}

static enum MHD_Result out_of_memory(struct MHD_Connection *conn)
{
	return web_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			      "the agent is out of memory");
}

/* GET /api/session: whether the store is locked and this browser holds a
 * session, and the session's CSRF token for the page to send back. */
static enum MHD_Result do_session(struct agent *a, struct MHD_Connection *conn, uint64_t now)
{
	struct fieldapp *app = &a->app;
	int idx = web_session_find(&app->sessions, conn, now, 1);
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddBoolToObject(o, "locked", !a->store) ||
	    !cJSON_AddBoolToObject(o, "session", idx >= 0) ||
	    !cJSON_AddNumberToObject(o, "idle_lock_s", (double)(app->sessions.idle_ms / 1000)) ||
	    (idx >= 0 &&
	     !cJSON_AddStringToObject(o, "csrf", web_session_csrf(&app->sessions, idx)))) {
		cJSON_Delete(o);
		return out_of_memory(conn);
	}
	return web_send_json(conn, MHD_HTTP_OK, o, NULL);
}

/* GET /api/state: the sync state in facts the page words for a field
 * worker.  A poll: it does not count as use of the session. */
static enum MHD_Result do_state(struct agent *a, struct MHD_Connection *conn)
{
	unsigned long long changes = 0, bytes = 0, files = 0, file_bytes = 0;
	struct fs_error err = { 0 };
	struct enrolment e;
	cJSON *o = cJSON_CreateObject();
	int enrolled = 0, r;

	if (a->store) {
		if ((r = push_backlog(a->store, &changes, &bytes, &err)) < 0 ||
		    (r = attach_unsent(a->store, &files, &file_bytes, &err)) < 0 ||
		    ((r = enroll_load(a->store, &e, &err)) < 0 && r != -FS_ENOTFOUND)) {
			cJSON_Delete(o);
			log_msg(LOG_ERR, "field app: %s", err.msg);
			return web_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "store",
					      "the agent could not read its store; see its log");
		}
		enrolled = r == 0;
		sodium_memzero(&e, sizeof(e));
	}
	if (!o || !cJSON_AddBoolToObject(o, "locked", !a->store) ||
	    !cJSON_AddBoolToObject(o, "enrolled", enrolled) ||
	    !cJSON_AddBoolToObject(o, "syncing", a->job.running && a->job.kind == JOB_PUSH) ||
	    !cJSON_AddBoolToObject(o, "revoked", a->sched.halted) ||
	    !cJSON_AddNumberToObject(o, "pending_changes", (double)changes) ||
	    !cJSON_AddNumberToObject(o, "files_pending", (double)files) ||
	    !cJSON_AddNumberToObject(o, "files_pending_bytes", (double)file_bytes) ||
	    daemon_add_time(o, "last_success", a->sched.last_success, 1) < 0 ||
	    daemon_add_time(o, "last_attempt", a->sched.last_attempt, 1) < 0 ||
	    daemon_add_time(o, "next_attempt", daemon_next_attempt(a), 1) < 0 ||
	    !(a->sched.last_error[0]
		      ? cJSON_AddStringToObject(o, "last_error", synclog_result(a->sched.last_code))
		      : cJSON_AddNullToObject(o, "last_error"))) {
		cJSON_Delete(o);
		return out_of_memory(conn);
	}
	return web_send_json(conn, MHD_HTTP_OK, o, NULL);
}

/* A wrong passphrase: after FIELDAPP_TRIES in a row, none is tried for
 * FIELDAPP_PAUSE_MS (Argon2id already makes each try slow). */
static enum MHD_Result wrong_passphrase(struct fieldapp *app, struct MHD_Connection *conn,
					uint64_t now)
{
	if (++app->failures >= FIELDAPP_TRIES) {
		app->failures = 0;
		app->refuse_until = now + FIELDAPP_PAUSE_MS;
		log_msg(LOG_WARNING,
			"field app: %u wrong passphrases in a row; none is tried "
			"for %u s",
			FIELDAPP_TRIES, FIELDAPP_PAUSE_MS / 1000);
	} else {
		log_msg(LOG_NOTICE, "field app: wrong passphrase");
	}
	return web_send_error(conn, MHD_HTTP_UNAUTHORIZED, "wrong_passphrase",
			      "that is not the store's passphrase");
}

/* The passphrase from {"passphrase": "..."} as a secret; the copies in
 * the parsed JSON are wiped.  0, -EINVAL, or -ENOMEM. */
static int passphrase_of(const struct web_body *rq, struct keystore_secret **ret)
{
	cJSON *o = cJSON_ParseWithLength(rq->data, rq->len);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "passphrase");
	int r = -EINVAL;

	if (cJSON_IsString(p) && p->valuestring[0])
		r = keystore_secret_from_passphrase(p->valuestring, strlen(p->valuestring), ret);
	if (cJSON_IsString(p))
		sodium_memzero(p->valuestring, strlen(p->valuestring));
	cJSON_Delete(o);
	return r;
}

/* POST /api/unlock {"passphrase": "..."}: unlock the store, or check the
 * passphrase against the open one; either way a new session. */
static enum MHD_Result do_unlock(struct agent *a, struct MHD_Connection *conn,
				 const struct web_body *rq, uint64_t now)
{
	struct fieldapp *app = &a->app;
	struct keystore_secret *secret = NULL;
	char cookie[WEB_COOKIE_MAX];
	struct fs_error err = { 0 };
	cJSON *o;
	int r, idx, opened = 0;

	if (now < app->refuse_until)
		return web_send_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, "paused",
				      "too many wrong passphrases; wait half a minute");
	if ((r = passphrase_of(rq, &secret)) < 0)
		return r == -ENOMEM ? out_of_memory(conn)
				    : web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
						     "expected {\"passphrase\": \"...\"}");
	if (!a->store) {
		r = daemon_unlock(a, secret, &err);
		opened = r == 0;
	} else {
		r = store_check_secret(a->c->cfg.data_dir, secret, &err);
	}
	keystore_secret_free(secret);
	if (r == -FS_EKEY)
		return wrong_passphrase(app, conn, now);
	if (r < 0) {
		log_msg(LOG_ERR, "field app: unlock: %s", err.msg);
		return web_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "store",
				      "the store could not be opened; see the agent's log");
	}
	app->failures = 0;
	if (opened) {
		app->unlocked_here = 1;
		log_msg(LOG_INFO, "field app: store unlocked");
	}
	idx = web_session_open(&app->sessions, now, cookie);
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddBoolToObject(o, "locked", 0) ||
	    !cJSON_AddStringToObject(o, "csrf", web_session_csrf(&app->sessions, idx))) {
		cJSON_Delete(o);
		web_session_close(&app->sessions, idx);
		return out_of_memory(conn);
	}
	return web_send_json(conn, MHD_HTTP_OK, o, cookie);
}

/* POST /api/lock: lock the store now, whoever unlocked it. */
static enum MHD_Result do_lock(struct agent *a, struct MHD_Connection *conn)
{
	char cookie[WEB_COOKIE_MAX];
	cJSON *o = cJSON_CreateObject();

	if (a->store) {
		log_msg(LOG_INFO, "field app: lock now");
		daemon_lock(a); /* ends the sessions too */
	}
	fieldapp_locked(a);
	web_session_forget_cookie(&a->app.sessions, cookie);
	if (!o || !cJSON_AddBoolToObject(o, "locked", 1)) {
		cJSON_Delete(o);
		return out_of_memory(conn);
	}
	return web_send_json(conn, MHD_HTTP_OK, o, cookie);
}

/* POST /api/sync: push and pull now; the page follows /api/state. */
static enum MHD_Result do_sync(struct agent *a, struct MHD_Connection *conn)
{
	cJSON *o;

	if (!a->store)
		return web_send_error(conn, MHD_HTTP_CONFLICT, "locked", "the store is locked");
	daemon_sync_now(a);
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddBoolToObject(o, "started", 1)) {
		cJSON_Delete(o);
		return out_of_memory(conn);
	}
	return web_send_json(conn, MHD_HTTP_ACCEPTED, o, NULL);
}

/* A store answer (ret, owned) as JSON, or its error. */
static enum MHD_Result store_answer(struct MHD_Connection *conn, int r, cJSON *ret,
				    const struct fs_error *err)
{
	if (r == 0)
		return web_send_json(conn, MHD_HTTP_OK, ret, NULL);
	if (r == -ENOMEM)
		return out_of_memory(conn);
	return web_send_failure(conn, r, err, "field app", "store",
				"the agent could not read its store; see its log");
}

/* POST /api/caseload {"q", "municipality", "status", "visited_from",
 * "visited_to", "never_visited", "limit"}: a POST, so that a name looked
 * for never appears in a URL. */
static enum MHD_Result do_caseload(struct agent *a, struct MHD_Connection *conn, const cJSON *req)
{
	const cJSON *limit = cJSON_GetObjectItemCaseSensitive(req, "limit");
	struct caseload_query q = {
		.text = web_json_text(req, "q"),
		.municipality = web_json_text(req, "municipality"),
		.status = web_json_text(req, "status"),
		.visited_from = web_json_text(req, "visited_from"),
		.visited_to = web_json_text(req, "visited_to"),
		.never_visited =
			cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "never_visited")),
		.limit = cJSON_IsNumber(limit) && limit->valuedouble >= 1 &&
					 limit->valuedouble <= CASELOAD_MAX_ROWS
				 ? (unsigned)limit->valuedouble
				 : 0,
	};
	struct fs_error err = { 0 };
	cJSON *ret = NULL;
	int r = caseload_search(a->store, &q, &ret, &err);

	return store_answer(conn, r, ret, &err);
}

/* POST /api/household {"id"}: its fields, visits and conflicts. */
static enum MHD_Result do_household(struct agent *a, struct MHD_Connection *conn, const cJSON *req)
{
	const char *given = web_json_text(req, "id");
	char id[UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	cJSON *ret = NULL;
	int r;

	if (!given || uuid_normalize(given, id) < 0)
		return web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				      "expected {\"id\": UUID}");
	r = caseload_household(a->store, id, &ret, &err);
	return store_answer(conn, r, ret, &err);
}

/* The requests that use the store: the body is JSON, the store open. */
static enum MHD_Result route_read(struct agent *a, struct MHD_Connection *conn, const char *url,
				  const struct web_body *rq)
{
	cJSON *req;
	enum MHD_Result ret;

	if (!a->store)
		return web_send_error(conn, MHD_HTTP_CONFLICT, "locked", "the store is locked");
	if (!(req = cJSON_ParseWithLength(rq->data, rq->len)) || !cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
				      "expected a JSON object");
	}
	if (!strcmp(url, "/api/caseload"))
		ret = do_caseload(a, conn, req);
	else if (!strcmp(url, "/api/household"))
		ret = do_household(a, conn, req);
	else
		ret = appforms_draft(a, conn, url, req);
	cJSON_Delete(req);
	return ret;
}

/* ---- routing ------------------------------------------------------------ */

static enum MHD_Result route_get(struct agent *a, struct MHD_Connection *conn, const char *url,
				 uint64_t now)
{
	if (!strcmp(url, "/"))
		return web_send_file(conn, a->app.dirfd, "index.html");
	if (!strcmp(url, "/api/session"))
		return do_session(a, conn, now);
	if (!strcmp(url, "/api/state")) {
		if (web_session_find(&a->app.sessions, conn, now, 0) < 0)
			return no_session(conn);
		return do_state(a, conn);
	}
	if (!strcmp(url, "/api/forms")) {
		if (web_session_find(&a->app.sessions, conn, now, 1) < 0)
			return no_session(conn);
		return appforms_forms(a, conn);
	}
	if (!strncmp(url, "/api/", 5))
		return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such request");
	return web_send_file(conn, a->app.dirfd, url + 1);
}

static enum MHD_Result route_post(struct agent *a, struct MHD_Connection *conn, const char *url,
				  const struct web_body *rq, uint64_t now)
{
	int idx;

	if (rq->too_big)
		return web_send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
				      "the request is larger than the app sends");
	if (!strcmp(url, "/api/unlock"))
		return do_unlock(a, conn, rq, now);
	if ((idx = web_session_find(&a->app.sessions, conn, now, 1)) < 0)
		return no_session(conn);
	if (!web_session_csrf_ok(&a->app.sessions, idx, conn))
		return web_send_error(conn, MHD_HTTP_FORBIDDEN, "csrf",
				      "the request lacks this session's token");
	if (!strcmp(url, "/api/lock"))
		return do_lock(a, conn);
	if (!strcmp(url, "/api/sync"))
		return do_sync(a, conn);
	if (!strcmp(url, APPFORMS_ATTACH_URL))
		return appforms_attach(a, conn, rq);
	if (!strcmp(url, "/api/caseload") || !strcmp(url, "/api/household") ||
	    appforms_is_draft(url))
		return route_read(a, conn, url, rq);
	return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such request");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct agent *a = cls;
	struct web_body *rq = NULL;
	int post = !strcmp(method, MHD_HTTP_METHOD_POST);

	(void)version;
	if (!*con_cls && !web_http_allowed(conn, &a->app.site, method)) {
		log_msg(LOG_NOTICE, "field app: refused a request naming another host or origin");
		return web_send_error(conn, MHD_HTTP_FORBIDDEN, "forbidden",
				      "the request names another host or comes from another site");
	}
	if (!post) {
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return web_send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
					      "only GET and POST");
		return route_get(a, conn, url, hlc_mono_ms());
	}
	/* A file is large: the session and its token are checked before a
	 * byte of it is kept (and again with the rest, in route_post). */
	if (!*con_cls && !strcmp(url, APPFORMS_ATTACH_URL)) {
		int idx = web_session_find(&a->app.sessions, conn, hlc_mono_ms(), 0);

		if (idx < 0)
			return no_session(conn);
		if (!web_session_csrf_ok(&a->app.sessions, idx, conn))
			return web_send_error(conn, MHD_HTTP_FORBIDDEN, "csrf",
					      "the request lacks this session's token");
	}
	/* A file comes to one request, and may be large; the rest are JSON. */
	switch (!strcmp(url, APPFORMS_ATTACH_URL)
			? web_body_gather_file(con_cls, upload, upload_size, APPFORMS_FILE_MAX, &rq)
			: web_body_gather(con_cls, upload, upload_size, &rq)) {
	case WEB_BODY_FAILED:
		return MHD_NO;
	case WEB_BODY_MORE:
		return MHD_YES;
	default:
		return route_post(a, conn, url, rq, hlc_mono_ms());
	}
}

/* ---- the server --------------------------------------------------------- */

int fieldapp_start(struct agent *a, struct fs_error *err)
{
	const struct agent_config *cfg = &a->c->cfg;
	struct fieldapp *app = &a->app;
	const char *listen = cfg->web_listen ? cfg->web_listen : CONFIG_DEFAULT_WEB_LISTEN;
	uint64_t idle =
		cfg->web_idle_ms ? cfg->web_idle_ms : CONFIG_DEFAULT_WEB_IDLE_MIN * 60000ull;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage addr;
	char where[4096], url[128];
	socklen_t alen;
	int loopback = 0, r;

	app->dirfd = -1;
	if (!config_web_enabled(cfg)) {
		log_msg(LOG_INFO, "field app off ([web] enabled = no)");
		return 0;
	}
	if ((r = web_listen_parse(listen, &addr, &alen, &loopback, err)) < 0)
		return r;
	if (!loopback) /* config_load refuses it; this is the last word */
		return fs_error_set(err, -EPERM, "field app: %s is not a loopback address", listen);
	/* FS_WEB_DIR by its literal, which so stays whole in the program,
	 * where the package test looks for it. */
	if ((app->dirfd = web_pages_open(cfg->web_dir, PAGES, FS_WEB_DIR, where, sizeof(where))) <
	    0)
		return fs_error_set(err, -errno, "field app: no pages in %s: %s", where,
				    strerror(errno));
	if (web_sessions_init(&app->sessions, FIELDAPP_COOKIE, 0, idle) < 0)
		return fs_error_set(err, -ENOMEM, "field app: out of secure memory");
	app->mhd = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, web_mhd_log, "field app",
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, web_body_done, a,
		MHD_OPTION_END);
	if (!app->mhd)
		return fs_error_set(err, -EADDRINUSE,
				    "field app: cannot listen on %s (address in use?)", listen);
	info = MHD_get_daemon_info(app->mhd, MHD_DAEMON_INFO_BIND_PORT);
	web_site_init(&app->site, "http", &addr, info ? info->port : 0);
	web_site_url(&app->site, url, sizeof(url));
	log_msg(LOG_INFO, "field app on %s (pages from %s)", url, where);
	return 0;
}

void fieldapp_stop(struct agent *a)
{
	struct fieldapp *app = &a->app;

	if (app->mhd)
		MHD_stop_daemon(app->mhd);
	app->mhd = NULL;
	web_sessions_free(&app->sessions);
	if (app->dirfd >= 0)
		close(app->dirfd);
	app->dirfd = -1;
}

int fieldapp_fd(const struct agent *a)
{
	const union MHD_DaemonInfo *info;

	if (!a->app.mhd)
		return -1;
	info = MHD_get_daemon_info(a->app.mhd, MHD_DAEMON_INFO_EPOLL_FD);
	return info ? info->epoll_fd : -1;
}

uint64_t fieldapp_run(struct agent *a, uint64_t now)
{
	struct fieldapp *app = &a->app;
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t next = UINT64_MAX, idle;

	if (!app->mhd)
		return UINT64_MAX;
	MHD_run(app->mhd);
	now = hlc_mono_ms(); /* after what the requests did */
	if (web_sessions_expire(&app->sessions, now, &idle) == 0 && app->unlocked_here &&
	    a->store) {
		log_msg(LOG_NOTICE, "field app: unused for %llu s; locking the store it unlocked",
			(unsigned long long)(app->sessions.idle_ms / 1000));
		daemon_lock(a);
	}
	if (MHD_get_timeout(app->mhd, &ms) == MHD_YES)
		next = now + ms;
	return idle < next ? idle : next;
}

void fieldapp_locked(struct agent *a)
{
	web_sessions_close_all(&a->app.sessions);
	a->app.unlocked_here = 0;
}
