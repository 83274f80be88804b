/* status.h - a device's health report: what it holds unsent and how it
 * is, signed by the device, so that HQ's console can tell a quiet
 * laptop from a stuck one (docs/PROTOCOL.md, "Status report").
 *
 *   0   4   magic "FSST"
 *   4   1   version, 1
 *   5   3   zero
 *   8   16  device id
 *   24  8   the device's clock, Unix ms, when it made the report
 *   32  4   length N of the JSON that follows, 2..STATUS_JSON_MAX
 *   36  N   the report: one JSON object, exactly these members in this
 *           order, printed without spaces (status_encode):
 *           {"pending_changes":N,"oldest_unsent_age_s":N|null,
 *            "last_error":CLASS|null,"agent_version":TEXT,
 *            "form_version":{COLLECTION:N,...},"clock_skew_ms":N|null,
 *            "free_disk_bytes":N}
 *   36+N 64 Ed25519 signature by the device over bytes [0, 36+N)
 *
 * Integers are big-endian.  Whole numbers in the JSON are at most 2^53;
 * texts are printable ASCII of at most 32 bytes; form_version holds at
 * most 16 collections.  status_parse checks shape and limits only; the
 * report is the device's word once status_verify succeeds with its
 * enrolled key.  Errors: -FS_EFORMAT, -FS_ELIMIT, -FS_EAUTH, -ENOMEM,
 * messages naming the part, never a value.  No state: thread-safe.
 */
#ifndef FS_STATUS_H
#define FS_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "crypto/fserr.h"

#define STATUS_MAGIC "FSST"
#define STATUS_VERSION 1
#define STATUS_FIXED 36
#define STATUS_JSON_MAX 2048
#define STATUS_MAX_BYTES (STATUS_FIXED + STATUS_JSON_MAX + crypto_sign_BYTES)
#define STATUS_TEXT_MAX 32
#define STATUS_MAX_FORMS 16

/* The report's members, in their order on the wire. */
enum status_member {
	STATUS_PENDING_CHANGES,
	STATUS_OLDEST_UNSENT_AGE_S,
	STATUS_LAST_ERROR,
	STATUS_AGENT_VERSION,
	STATUS_FORM_VERSION,
	STATUS_CLOCK_SKEW_MS,
	STATUS_FREE_DISK_BYTES,
	STATUS_NMEMBERS
};

extern const char *const status_members[STATUS_NMEMBERS];

struct status_report {
	uint8_t device[16];
	uint64_t wall_ms;
	uint64_t pending_changes;
	int64_t oldest_unsent_age_s;	      /* -1: nothing unsent */
	char last_error[STATUS_TEXT_MAX + 1]; /* "": none */
	char agent_version[STATUS_TEXT_MAX + 1];
	struct {
		char collection[STATUS_TEXT_MAX + 1];
		uint32_t version;
	} forms[STATUS_MAX_FORMS];
	size_t nforms;
	int has_skew;
	int64_t clock_skew_ms;
	uint64_t free_disk_bytes;
};

/* The report, signed; *ret is malloc'd. */
int status_encode(const struct status_report *r, const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES],
		  uint8_t **ret, size_t *ret_len, struct fs_error *err) FS_WUR;

/* Shape and limits into *ret; *ret_json (when not NULL) the report's JSON
 * object as sent (the caller's).  Not yet trusted: see status_verify. */
int status_parse(const uint8_t *buf, size_t len, struct status_report *ret, cJSON **ret_json,
		 struct fs_error *err) FS_WUR;

/* The device's signature over the whole report. */
int status_verify(const uint8_t *buf, size_t len,
		  const uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES]) FS_WUR;

#endif
