/* photo.c - JPEG metadata stripped, and scaled down (agent/photo.h). */
#include "agent/photo.h"

#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <sodium.h>
#include <turbojpeg.h>

/* libjpeg reports a fatal error by calling error_exit, which must not
 * return: it jumps back to photo_clean's setjmp. */
struct photo_error {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	char msg[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr c)
{
	struct photo_error *e = (struct photo_error *)c->err;

	(*c->err->format_message)(c, e->msg);
	longjmp(e->jump, 1);
}

/* Warnings (a corrupt but readable stream) are not printed to stderr. */
static void on_message(j_common_ptr c)
{
	(void)c;
}

/* The markers kept: the colour profile always, EXIF when asked. */
static void save_markers(j_decompress_ptr src, int keep_location)
{
	jpeg_save_markers(src, JPEG_APP0 + 2, 0xFFFF);
	if (keep_location)
		jpeg_save_markers(src, JPEG_APP0 + 1, 0xFFFF);
}

/* APP2 carries more than the colour profile (MPF, FlashPix previews):
 * only "ICC_PROFILE" segments are copied. */
static void copy_markers(j_decompress_ptr src, j_compress_ptr dst)
{
	for (jpeg_saved_marker_ptr m = src->marker_list; m; m = m->next) {
		if (m->marker == JPEG_APP0 + 2 &&
		    (m->data_length < 12 || memcmp(m->data, "ICC_PROFILE\0", 12) != 0))
			continue;
		jpeg_write_marker(dst, m->marker, m->data, m->data_length);
	}
}

/* The scale M/8 (M = 1..8) with the longest side at most max_side; 8
 * when none is needed. */
static unsigned scale_for(unsigned width, unsigned height, unsigned max_side)
{
	unsigned longest = width > height ? width : height, m = 8;

	while (m > 1 && (unsigned long)longest * m > (unsigned long)max_side * 8)
		m--;
	return m;
}

/* libexif copies the EXIF, the GPS position with it, into memory of its
 * own: these wipe it before it is freed. */
static void *exif_alloc(ExifLong n)
{
	return calloc(1, n ? n : 1);
}

static void exif_release(void *p)
{
	if (p) {
		sodium_memzero(p, malloc_usable_size(p));
		free(p);
	}
}

static void *exif_grow(void *p, ExifLong n)
{
	void *q = exif_alloc(n);
	size_t had = p ? malloc_usable_size(p) : 0;

	if (q && p)
		memcpy(q, p, had < n ? had : n);
	if (q)
		exif_release(p);
	return q;
}

/* The EXIF orientation (1 to 8) of a JPEG; 1 when it has none, or one
 * libexif cannot read. */
static int orientation(const uint8_t *in, size_t len)
{
	ExifMem *mem = exif_mem_new(exif_alloc, exif_grow, exif_release);
	ExifData *ed = mem ? exif_data_new_mem(mem) : NULL;
	ExifEntry *e;
	int o = 1;

	exif_mem_unref(mem);
	if (!ed)
		return 1;
	exif_data_load_data(ed, in, (unsigned int)len);
	e = exif_data_get_entry(ed, EXIF_TAG_ORIENTATION);
	if (e && e->format == EXIF_FORMAT_SHORT && e->components == 1 && e->size >= 2)
		o = exif_get_short(e->data, exif_data_get_byte_order(ed));
	exif_data_unref(ed);
	return o >= 1 && o <= 8 ? o : 1;
}

/* A JPEG the camera only tagged as turned, turned for real (lossless,
 * TurboJPEG's transform; the edge blocks that would not fit are
 * trimmed, and no marker is copied): *ret (tjFree) or NULL when it is
 * upright.  The orientation is EXIF's, which goes with the rest. */
static int upright(const uint8_t *in, size_t len, unsigned char **ret, unsigned long *ret_len)
{
	static const int ops[9] = { 0,		 TJXOP_NONE,	  TJXOP_HFLIP, TJXOP_ROT180,
				    TJXOP_VFLIP, TJXOP_TRANSPOSE, TJXOP_ROT90, TJXOP_TRANSVERSE,
				    TJXOP_ROT270 };
	int o = orientation(in, len), r;
	tjtransform xf;
	tjhandle tj;

	*ret = NULL;
	*ret_len = 0;
	if (o == 1)
		return 0;
	if (!(tj = tjInitTransform()))
		return -ENOMEM;
	memset(&xf, 0, sizeof(xf));
	xf.op = ops[o];
	xf.options = TJXOPT_TRIM | TJXOPT_COPYNONE;
	r = tjTransform(tj, in, (unsigned long)len, 1, ret, ret_len, &xf, 0) == 0 ? 0 : -FS_EVALID;
	tjDestroy(tj);
	if (r < 0 && *ret) {
		tjFree(*ret);
		*ret = NULL;
	}
	return r;
}

static int clean(const uint8_t *in, size_t len, unsigned max_side, unsigned quality,
		 int keep_location, uint8_t **ret, size_t *ret_len, unsigned *ret_longest,
		 struct fs_error *err);

static void wipe_free(void *p, size_t n)
{
	if (p) {
		sodium_memzero(p, n);
		free(p);
	}
}

int photo_clean(const uint8_t *in, size_t len, unsigned max_side, unsigned quality,
		int keep_location, uint8_t **ret, size_t *ret_len, struct fs_error *err)
{
	unsigned char *turned = NULL;
	unsigned long turned_len = 0;
	unsigned longest = 0;
	int r;

	*ret = NULL;
	*ret_len = 0;
	if (len > PHOTO_INPUT_MAX)
		return fs_error_set(err, -FS_ELIMIT,
				    "a photo over %d MB cannot be made fit to keep (its metadata "
				    "stripped)",
				    PHOTO_INPUT_MAX / (1024 * 1024));
	/* Kept with its EXIF, the photo keeps its orientation tag too. */
	if (!keep_location && (r = upright(in, len, &turned, &turned_len)) < 0)
		return r == -ENOMEM ? fs_error_set(err, r, "out of memory")
				    : fs_error_set(err, r, "not a JPEG libjpeg can read: %s",
						   "its orientation cannot be applied");
	r = clean(turned ? turned : in, turned ? (size_t)turned_len : len, max_side, quality,
		  keep_location, ret, ret_len, &longest, err);
	if (turned) {
		sodium_memzero(turned, turned_len);
		tjFree(turned);
	}
	/* libjpeg scales by 1/8 at most in one pass: a photo more than
	 * eight times the side goes through again. */
	for (int pass = 0; r == 0 && max_side && longest > max_side && pass < 3; pass++) {
		uint8_t *again = NULL;
		size_t again_len = 0;

		r = clean(*ret, *ret_len, max_side, quality, keep_location, &again, &again_len,
			  &longest, err);
		wipe_free(*ret, *ret_len);
		*ret = again;
		*ret_len = again_len;
	}
	return r;
}

/* The output goes to one buffer of ours, twice the input's size (a
 * rewrite is about the input's size at most), so libjpeg does not grow
 * it by copying and leave copies of the photo behind unwiped. */
static int clean(const uint8_t *in, size_t len, unsigned max_side, unsigned quality,
		 int keep_location, uint8_t **ret, size_t *ret_len, unsigned *ret_longest,
		 struct fs_error *err)
{
	struct jpeg_decompress_struct src;
	struct jpeg_compress_struct dst;
	struct photo_error jerr;
	size_t cap = 2 * len + 65536;
	/* volatile: read after a longjmp back to the setjmp below. */
	unsigned char *volatile buf = malloc(cap);
	unsigned char *volatile out = buf;
	JSAMPROW volatile row = NULL;
	volatile size_t row_len = 0;
	unsigned long out_len = cap;
	volatile int made_dst = 0;
	unsigned m = 8;

	if (!buf)
		return fs_error_set(err, -ENOMEM, "out of memory");
	memset(&jerr, 0, sizeof(jerr));
	src.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = on_error;
	jerr.pub.output_message = on_message;
	if (setjmp(jerr.jump)) {
		if (made_dst)
			jpeg_destroy_compress(&dst);
		jpeg_destroy_decompress(&src);
		wipe_free(row, row_len);
		if (out != buf)
			free(out); /* libjpeg's, of a size it keeps */
		wipe_free(buf, cap);
		return fs_error_set(err, -FS_EVALID, "not a JPEG libjpeg can read: %s", jerr.msg);
	}
	jpeg_create_decompress(&src);
	jpeg_mem_src(&src, in, (unsigned long)len);
	save_markers(&src, keep_location);
	jpeg_read_header(&src, TRUE);
	dst.err = &jerr.pub;
	jpeg_create_compress(&dst);
	made_dst = 1;
	jpeg_mem_dest(&dst, (unsigned char **)&out, &out_len);
	if (max_side)
		m = scale_for(src.image_width, src.image_height, max_side);
	if (m == 8) {
		/* Lossless: the coefficients as they are, the markers chosen. */
		jvirt_barray_ptr *coefs = jpeg_read_coefficients(&src);

		jpeg_copy_critical_parameters(&src, &dst);
		jpeg_write_coefficients(&dst, coefs);
		copy_markers(&src, &dst);
		jpeg_finish_compress(&dst);
		*ret_longest =
			src.image_width > src.image_height ? src.image_width : src.image_height;
	} else {
		src.scale_num = m;
		src.scale_denom = 8;
		jpeg_start_decompress(&src);
		dst.image_width = src.output_width;
		dst.image_height = src.output_height;
		dst.input_components = src.output_components;
		dst.in_color_space = src.out_color_space;
		jpeg_set_defaults(&dst);
		jpeg_set_quality(&dst, (int)quality, TRUE);
		jpeg_start_compress(&dst, TRUE);
		copy_markers(&src, &dst);
		*ret_longest =
			src.output_width > src.output_height ? src.output_width : src.output_height;
		row_len = (size_t)src.output_width * (size_t)src.output_components;
		if (!(row = malloc(row_len))) {
			snprintf(jerr.msg, sizeof(jerr.msg), "out of memory");
			longjmp(jerr.jump, 1);
		}
		while (src.output_scanline < src.output_height) {
			JSAMPROW rows[1] = { row };

			jpeg_read_scanlines(&src, rows, 1);
			jpeg_write_scanlines(&dst, rows, 1);
		}
		jpeg_finish_compress(&dst);
	}
	jpeg_finish_decompress(&src);
	jpeg_destroy_compress(&dst);
	jpeg_destroy_decompress(&src);
	wipe_free(row, row_len);
	if (out != buf) /* it outgrew ours after all: libjpeg's buffer holds it */
		wipe_free(buf, cap);
	*ret = out;
	*ret_len = (size_t)out_len;
	return 0;
}
