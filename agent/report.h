/* report.h - this device's health report to HQ (sync/status.h, POST
 * /v1/status): what it holds unsent and since when, how its last sync
 * ended, its versions, its clock against HQ's and its free disk, signed
 * with the device key.  The agent sends one at the start of every sync
 * attempt, and now and then while it has nothing to send, so that HQ's
 * console tells a quiet laptop from a stuck one.
 *
 * Best effort: a report HQ does not take (an older HQ answers 404)
 * changes nothing here.  Errors: transport and store errors, -EPROTO for
 * an answer other than 204, err naming it.  On the store's thread.
 */
#ifndef FS_REPORT_H
#define FS_REPORT_H

#include "agent/enroll.h"
#include "agent/hqlink.h"
#include "agent/store.h"
#include "sync/status.h"

#define REPORT_TYPE "application/vnd.fieldsync.status"

/* The report as of now. */
int report_build(struct store *s, const char *forms_dir, struct status_report *ret,
		 struct fs_error *err) FS_WUR;

/* Build, sign and send it over t. */
int report_send(struct store *s, const struct enrolment *en, const char *forms_dir,
		struct hqlink *t, struct fs_error *err) FS_WUR;

#endif
