/* prompt.h - asking a person for a passphrase on the terminal.
 *
 * Reads from /dev/tty with echo off and restores the terminal on every
 * path, including SIGINT during the read (the handler restores and
 * re-raises).  The result is in secure memory.
 */
#ifndef FS_PROMPT_H
#define FS_PROMPT_H

#include <stddef.h>

#include "crypto/fserr.h"

#define PROMPT_MAX 1024

/* -ENOTTY when there is no terminal; -FS_EFORMAT for an empty answer. */
int prompt_passphrase(const char *question, char **ret_pass, size_t *ret_len,
		      struct fs_error *err) FS_WUR;

#endif
