/* fserr.h - the one error convention every fieldsync module uses.
 *
 * Functions return 0 on success and a negative code on failure: either a
 * negated errno value (-ENOENT) or a negated project code below
 * (-FS_EAUTH).  Functions that can say more than a code take a
 * struct fs_error and fill it with a message that names what failed and
 * why.  Messages never carry field values, keys or passphrases.
 *
 * Thread safety: fs_strerror() is thread-safe; an fs_error belongs to
 * the caller.
 */
#ifndef FS_FSERR_H
#define FS_FSERR_H

#include <stddef.h>

#define FS_WUR __attribute__((warn_unused_result))

enum fs_code {
	FS_EBASE = 1000,
	FS_EAUTH,     /* a MAC, tag or signature did not verify */
	FS_EKEY,      /* wrong passphrase or key file */
	FS_EFORMAT,   /* malformed input, bad magic, unknown version */
	FS_EKEYPERM,  /* a key file that others may read */
	FS_EVALID,    /* a record failed validation against its form */
	FS_ENOTFOUND, /* no such record */
	FS_EEXIST,    /* already exists */
	FS_ESTORE,    /* the database reported an error */
	FS_ECORRUPT,  /* stored data failed its integrity checks */
	FS_EUSAGE,    /* the caller asked for something meaningless */
	FS_ELIMIT,    /* input over a size limit */
};

/* Error detail filled in by the function that failed.  code is the same
 * value the function returned. */
struct fs_error {
	int code;
	char msg[512];
};

/* Set e (which may be NULL) and return code, so callers can write
 * `return fs_error_set(err, -FS_EVALID, "field '%s': required", name);`. */
int fs_error_set(struct fs_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message with more context ("open store X: ..."). */
int fs_error_prefix(struct fs_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For messages that must say what the user typed where it failed (an
 * unknown column, command or id): s quoted when it looks like a name or
 * an id ([A-Za-z0-9_.-], at most 64 bytes), else "(not shown)", since a
 * mistyped value may be a person's name.  buf holds the quoted copy. */
#define FS_TOKEN_MAX 64
const char *fs_error_token(const char *s, char buf[FS_TOKEN_MAX + 3]);

/* The exit status a command-line program gives for a code: 0 ok, 1
 * usage, 2 validation or data, 3 key or crypto, 4 I/O (everything else,
 * including network).  Both fieldsync and fieldsync-hq use it, so a
 * script sees the same status for the same failure. */
enum fs_exit {
	FS_EXIT_OK = 0,
	FS_EXIT_USAGE = 1,
	FS_EXIT_DATA = 2,
	FS_EXIT_KEY = 3,
	FS_EXIT_IO = 4,
};
int fs_exit_code(int code);

/* Static description of a code; never NULL. */
const char *fs_strerror(int code);

#endif
