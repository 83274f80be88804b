/* mkjpeg.c - synthetic JPEG photos for the tests, with libjpeg-turbo.
 *
 *   mkjpeg OUT WIDTH HEIGHT [--exif TEXT] [--quality Q] [--noise]
 *
 * Writes a baseline JPEG of WIDTH x HEIGHT: a colour gradient, or with
 * --noise random pixels (a large file: photos of a roof are not smooth).
 * --exif adds an APP1 marker that starts "Exif\0\0" and holds TEXT, and a
 * comment (COM) holding TEXT, as a camera adds its metadata: the tests
 * check they are gone after the device keeps the photo.  Not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

int main(int argc, char **argv)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	const char *exif = NULL;
	int quality = 90, noise = 0;
	unsigned w, h;
	unsigned char *row;
	FILE *out;

	if (argc < 4) {
		fputs("usage: mkjpeg OUT WIDTH HEIGHT [--exif TEXT] [--quality Q] [--noise]\n",
		      stderr);
		return 2;
	}
	w = (unsigned)atoi(argv[2]);
	h = (unsigned)atoi(argv[3]);
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--exif") && i + 1 < argc)
			exif = argv[++i];
		else if (!strcmp(argv[i], "--quality") && i + 1 < argc)
			quality = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--noise"))
			noise = 1;
		else {
			fprintf(stderr, "mkjpeg: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!w || !h || !(out = fopen(argv[1], "wb")) || !(row = malloc((size_t)w * 3))) {
		perror("mkjpeg");
		return 1;
	}
	srand(12345);
	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, out);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	jpeg_start_compress(&c, TRUE);
	if (exif) {
		size_t n = strlen(exif);
		unsigned char *app1 = malloc(6 + n);

		memcpy(app1, "Exif\0\0", 6);
		memcpy(app1 + 6, exif, n);
		jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)(6 + n));
		jpeg_write_marker(&c, JPEG_COM, (const JOCTET *)exif, (unsigned)n);
		free(app1);
	}
	while (c.next_scanline < h) {
		for (unsigned x = 0; x < w; x++) {
			row[3 * x] = noise ? (unsigned char)rand() : (unsigned char)(x * 255 / w);
			row[3 * x + 1] = noise ? (unsigned char)rand()
					       : (unsigned char)(c.next_scanline * 255 / h);
			row[3 * x + 2] = noise ? (unsigned char)rand() : 128;
		}
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	return fclose(out) == 0 ? 0 : 1;
}
