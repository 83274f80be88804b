/* test_photo.c - photos made fit to keep (agent/photo.h): a camera's
 * EXIF and comment are gone and the pixels' size stays, losslessly;
 * "keep_location" keeps the EXIF; "max_side" scales the photo down to
 * at most that; a photo the camera tagged as turned is turned for real;
 * what is not a JPEG is refused in words. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "agent/photo.h"
#include "tests/test.h"

#define SECRET "GPS 43.2706N 20.0070E Sjenica"

/* A w x h JPEG with an EXIF marker and a comment holding SECRET; with
 * turn (2 to 8) the EXIF is a real one, holding that orientation. */
static unsigned char *make_jpeg_turned(unsigned w, unsigned h, int turn, unsigned long *len)
{
	/* Exif, then a big-endian TIFF header and one IFD of one entry:
	 * Orientation (0x0112), SHORT, 1, the value; no next IFD. */
	static const unsigned char tiff[] = { 'E', 'x', 'i', 'f', 0, 0,	   'M',	 'M', 0, 0x2a, 0,
					      0,   0,	8,   0,	  1, 0x01, 0x12, 0,   3, 0,    0,
					      0,   1,	0,   0,	  0, 0,	   0,	 0,   0, 0 };
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	unsigned char *out = NULL, *row = malloc((size_t)w * 3), app1[64];

	ASSERT_TRUE(row);
	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, len);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_start_compress(&c, TRUE);
	if (turn) {
		memcpy(app1, tiff, sizeof(tiff));
		app1[25] = (unsigned char)turn;
		jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)sizeof(tiff));
	} else {
		memcpy(app1, "Exif\0\0", 6);
		memcpy(app1 + 6, SECRET, strlen(SECRET));
		jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)(6 + strlen(SECRET)));
	}
	jpeg_write_marker(&c, JPEG_COM, (const JOCTET *)SECRET, (unsigned)strlen(SECRET));
	/* APP2: a colour profile (kept) and a FlashPix block (not). */
	jpeg_write_marker(&c, JPEG_APP0 + 2, (const JOCTET *)"ICC_PROFILE\0\1\1profile", 22);
	jpeg_write_marker(&c, JPEG_APP0 + 2, (const JOCTET *)"FPXR\0" SECRET,
			  (unsigned)(5 + strlen(SECRET)));
	while (c.next_scanline < h) {
		for (unsigned x = 0; x < w; x++) {
			row[3 * x] = (unsigned char)x;
			row[3 * x + 1] = (unsigned char)c.next_scanline;
			row[3 * x + 2] = 77;
		}
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	return out;
}

static unsigned char *make_jpeg(unsigned w, unsigned h, unsigned long *len)
{
	return make_jpeg_turned(w, h, 0, len);
}

static void dimensions(const uint8_t *b, size_t len, unsigned *w, unsigned *h)
{
	struct jpeg_decompress_struct d;
	struct jpeg_error_mgr jerr;

	d.err = jpeg_std_error(&jerr);
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, b, (unsigned long)len);
	ASSERT_EQ(jpeg_read_header(&d, TRUE), JPEG_HEADER_OK);
	*w = d.image_width;
	*h = d.image_height;
	jpeg_destroy_decompress(&d);
}

static int holds(const uint8_t *b, size_t len, const char *what)
{
	return memmem(b, len, what, strlen(what)) != NULL;
}

TEST(photo_metadata_stripped_and_scaled)
{
	struct fs_error err = { 0 };
	unsigned long len = 0;
	unsigned char *in = make_jpeg(1200, 900, &len);
	uint8_t *out = NULL;
	size_t olen = 0;
	unsigned w = 0, h = 0;

	ASSERT_TRUE(holds(in, len, SECRET));
	/* Stripped, lossless: same size of picture, no EXIF, no comment. */
	ASSERT_OK(photo_clean(in, len, 0, 85, 0, &out, &olen, &err));
	ASSERT_TRUE(!holds(out, olen, SECRET));
	ASSERT_TRUE(!holds(out, olen, "Exif"));
	ASSERT_TRUE(!holds(out, olen, "FPXR"));
	ASSERT_TRUE(holds(out, olen, "ICC_PROFILE"));
	dimensions(out, olen, &w, &h);
	ASSERT_EQ(w, 1200);
	ASSERT_EQ(h, 900);
	free(out);
	/* The form keeps the location: the EXIF stays (the comment not). */
	ASSERT_OK(photo_clean(in, len, 0, 85, 1, &out, &olen, &err));
	ASSERT_TRUE(holds(out, olen, "Exif"));
	free(out);
	/* Scaled: the longest side at most 500 (libjpeg's 3/8: 450 x 338). */
	ASSERT_OK(photo_clean(in, len, 500, 70, 0, &out, &olen, &err));
	dimensions(out, olen, &w, &h);
	ASSERT_TRUE(w <= 500 && h <= 500);
	ASSERT_EQ(w, 450);
	ASSERT_TRUE(!holds(out, olen, SECRET));
	ASSERT_TRUE(olen < len);
	free(out);
	/* Small enough already: stripped, not scaled. */
	ASSERT_OK(photo_clean(in, len, 4000, 70, 0, &out, &olen, &err));
	dimensions(out, olen, &w, &h);
	ASSERT_EQ(w, 1200);
	free(out);
	/* Not a JPEG, and one cut short. */
	ASSERT_EQ(photo_clean((const uint8_t *)"\xff\xd8\xff\xe0 not really", 16, 0, 85, 0, &out,
			      &olen, &err),
		  -FS_EVALID);
	ASSERT_TRUE(strstr(err.msg, "not a JPEG"));
	ASSERT_EQ(photo_clean(in, len / 3, 0, 85, 0, &out, &olen, &err) == 0 ||
			  photo_clean(in, 200, 0, 85, 0, &out, &olen, &err) == -FS_EVALID,
		  1);
	free(out);
	free(in);
	/* More than eight times the side: scaled in two passes. */
	in = make_jpeg(4000, 3000, &len);
	ASSERT_OK(photo_clean(in, len, 256, 70, 0, &out, &olen, &err));
	dimensions(out, olen, &w, &h);
	ASSERT_TRUE(w <= 256 && h <= 256 && w >= 128);
	free(out);
	free(in);
	/* A camera's "turned a quarter" (orientation 6): turned for real,
	 * its edge blocks trimmed (900 is not a multiple of 16); scaled too
	 * when asked.  Kept with its EXIF, it keeps the tag instead. */
	in = make_jpeg_turned(1200, 900, 6, &len);
	ASSERT_OK(photo_clean(in, len, 0, 85, 0, &out, &olen, &err));
	dimensions(out, olen, &w, &h);
	ASSERT_EQ(w, 896);
	ASSERT_EQ(h, 1200);
	ASSERT_TRUE(!holds(out, olen, "Exif"));
	free(out);
	ASSERT_OK(photo_clean(in, len, 600, 80, 0, &out, &olen, &err));
	dimensions(out, olen, &w, &h);
	ASSERT_TRUE(h <= 600 && w < h);
	free(out);
	ASSERT_OK(photo_clean(in, len, 0, 85, 1, &out, &olen, &err));
	dimensions(out, olen, &w, &h);
	ASSERT_EQ(w, 1200);
	ASSERT_TRUE(holds(out, olen, "Exif"));
	free(out);
	free(in);
}
