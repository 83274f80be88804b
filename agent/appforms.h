/* appforms.h - the field app's forms and drafts (docs/PROTOCOL.md, "The
 * field app's API"): the form definitions the page lays out, and the
 * drafts it saves as the worker types, each answered with the agent's
 * report of what is asked, required and wrong (sync/form.h,
 * form_report), so that the page never evaluates a rule itself.
 *
 * Called on the agent's loop thread by agent/fieldapp.c, after it has
 * checked the session, the CSRF token and that the store is open.
 * Errors are answered to the browser as {"error", "message"}; messages
 * name fields and rules, never values.
 */
#ifndef FS_APPFORMS_H
#define FS_APPFORMS_H

#include <cjson/cJSON.h>
#include <microhttpd.h>

struct agent;

/* GET /api/forms: {collection: definition} for the collections the app
 * records. */
enum MHD_Result appforms_forms(struct agent *a, struct MHD_Connection *conn);

/* Whether url is a draft request: /api/drafts or /api/draft/... */
int appforms_is_draft(const char *url);

/* Answer a draft request; req is its body, a JSON object. */
enum MHD_Result appforms_draft(struct agent *a, struct MHD_Connection *conn, const char *url,
			       const cJSON *req);

/* POST /api/attach: a file for an attachment field of a draft (headers
 * X-Fieldsync-Draft: ID and X-Fieldsync-Field: NAME; the body is the
 * file's bytes, at most APPFORMS_FILE_MAX).  The agent keeps it as
 * `FIELD=@PATH` does (agent/attach.h: by its content's type, a photo
 * stripped of its metadata, the form's size), sets the draft's field to
 * its reference and answers the draft as /api/draft/open does. */
#define APPFORMS_ATTACH_URL "/api/attach"
#define APPFORMS_FILE_MAX (64u << 20)
struct web_body;
enum MHD_Result appforms_attach(struct agent *a, struct MHD_Connection *conn,
				const struct web_body *body);

#endif
