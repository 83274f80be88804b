/* fixture.h - what the store-level unit tests set up alike: a key file,
 * an encrypted store in the test's directory, the default forms, a count
 * by SQL.  Each call fails the test (TEST_FAIL) when it cannot do its job,
 * so callers need not check.  One test at a time (the runner forks per
 * test); strings returned are the fixture's own.
 */
#ifndef FS_TEST_FIXTURE_H
#define FS_TEST_FIXTURE_H

#include <stddef.h>

#include "agent/keystore.h"
#include "agent/store.h"
#include "sync/changeset.h"
#include "sync/form.h"
#include "sync/uuid.h"

/* A key file in the test's directory (made on first use), as a secret
 * the caller frees with keystore_secret_free(). */
struct keystore_secret *fixture_key_secret(void);

/* The store in <test dir>/data: created first when create is set, then
 * opened with secret (NULL: fixture_key_secret()) and opt (may be NULL). */
struct store *fixture_store(const struct keystore_secret *secret, const struct store_options *opt,
			    int create);
/* <test dir>/data, the directory fixture_store() uses. */
const char *fixture_data_dir(void);

/* The default form of collection, from conf/forms; form_free() it. */
struct form *fixture_form(const char *collection);

/* Add a household of the beneficiaries form f in its own transaction:
 * name, municipality and status as given, 3 members, consent; its id
 * into id. */
void fixture_person(struct store *s, const struct form *f, const char *name, const char *muni,
		    const char *status, char id[UUID_TEXT_LEN + 1]);

/* The single integer sql answers on the store's connection. */
long long fixture_count(struct store *s, const char *sql);

/* A TCP socket listening on 127.0.0.1, a port the kernel picks; its URL
 * (http://127.0.0.1:PORT followed by path) into url. */
int fixture_http_listen(char *url, size_t cap, const char *path);

/* In a forked child: on the listening socket ls, answer n connections,
 * one each, with answers[i] (a whole HTTP response), then _exit(0).
 * What each request carried is written to the file log. */
void fixture_http_serve(int ls, const char *const answers[], int n, const char *log)
	__attribute__((noreturn));

/* A change set whose sealed payload is text, written by hand as a
 * hostile enrolled device could (docs/PROTOCOL.md): h's version, device,
 * sequence, previous hash, HLC range and count go into the header as
 * they are; from version 2 the binding (header bytes 8..63) is sealed in
 * front of the zstd frame.  Sealed to box_pk, signed with sign_sk;
 * *ret_buf is malloc'd. */
void fixture_raw_changeset(const struct changeset_header *h, const char *text, size_t tlen,
			   const uint8_t *box_pk, const uint8_t *sign_sk, uint8_t **ret_buf,
			   size_t *ret_len);

#endif
