/* photo.c - JPEG metadata stripped, and scaled down (agent/photo.h). */
#include "agent/photo.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <libexif/exif-data.h>
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

static void copy_markers(j_decompress_ptr src, j_compress_ptr dst)
{
	for (jpeg_saved_marker_ptr m = src->marker_list; m; m = m->next)
		jpeg_write_marker(dst, m->marker, m->data, m->data_length);
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

/* The EXIF orientation (1 to 8) of a JPEG; 1 when it has none, or one
 * libexif cannot read. */
static int orientation(const uint8_t *in, size_t len)
{
	ExifData *ed = exif_data_new_from_data(in, (unsigned int)len);
	ExifEntry *e;
	int o = 1;

	if (!ed)
		return 1;
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
		 int keep_location, uint8_t **ret, size_t *ret_len, struct fs_error *err);

int photo_clean(const uint8_t *in, size_t len, unsigned max_side, unsigned quality,
		int keep_location, uint8_t **ret, size_t *ret_len, struct fs_error *err)
{
	unsigned char *turned = NULL;
	unsigned long turned_len = 0;
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
		  keep_location, ret, ret_len, err);
	if (turned)
		tjFree(turned);
	return r;
}

static int clean(const uint8_t *in, size_t len, unsigned max_side, unsigned quality,
		 int keep_location, uint8_t **ret, size_t *ret_len, struct fs_error *err)
{
	struct jpeg_decompress_struct src;
	struct jpeg_compress_struct dst;
	struct photo_error jerr;
	/* volatile: read after a longjmp back to the setjmp below. */
	unsigned char *volatile out = NULL;
	JSAMPROW volatile row = NULL;
	unsigned long out_len = 0;
	volatile int made_dst = 0;
	unsigned m = 8;

	memset(&jerr, 0, sizeof(jerr));
	src.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = on_error;
	jerr.pub.output_message = on_message;
	if (setjmp(jerr.jump)) {
		if (made_dst)
			jpeg_destroy_compress(&dst);
		jpeg_destroy_decompress(&src);
		free(row);
		free(out);
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
		if (!(row = malloc((size_t)src.output_width * (size_t)src.output_components))) {
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
	free(row);
	*ret = out;
	*ret_len = (size_t)out_len;
	return 0;
}
