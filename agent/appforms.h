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

#endif
