/* formtype.h - the field types and limits of forms (sync/form.h), on
 * their own so that the form's private layout (sync/form_impl.h) can
 * name them without including the whole API.
 */
#ifndef FS_FORMTYPE_H
#define FS_FORMTYPE_H

#define FORM_MAX_FIELDS 128
#define FORM_MAX_NAME 64
#define FORM_DEFAULT_MAX_LENGTH 10000
#define FORM_MAX_DEFINITION_BYTES (256 * 1024)
#define FORM_DEFAULT_MAX_ROWS 50
#define FORM_MAX_ROWS 1000
/* 'YYYY-MM-DD' and its NUL. */
#define FORM_DATE_SIZE 11
/* An attachment's size when the form says none, and the most it may say. */
#define FORM_DEFAULT_MAX_BYTES (10ull * 1024 * 1024)
/* A photo's longest side, when the form scales photos down, and the
 * JPEG quality it writes them at (sync/form.h, agent/photo.h). */
#define FORM_MIN_SIDE 64
#define FORM_MAX_SIDE 16384
#define FORM_DEFAULT_QUALITY 85
#define FORM_MAX_MAX_BYTES (4ull * 1024 * 1024 * 1024)

enum form_type {
	FORM_TEXT,
	FORM_INTEGER,
	FORM_BOOLEAN,
	FORM_DATE,
	FORM_CHOICE,
	FORM_MULTI_CHOICE,
	FORM_GPS,
	FORM_REF,
	FORM_REPEAT,
	FORM_ATTACHMENT,
};

#endif
