/*
 * The CLI's JSON writer (tools/cow/json.c): separators and nesting, JSON's
 * own escapes, valid UTF-8 passed through unchanged, and every byte that is
 * not valid UTF-8 written as the lone surrogate \udcXX (Python's
 * surrogateescape), one per byte, so the bytes can be recovered.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

static char *buf;
static size_t len;

static struct json *start(struct json *j)
{
	FILE *f = open_memstream(&buf, &len);
	CHECK(f != NULL);
	json_init(j, f);
	return j;
}

static void expect(struct json *j, const char *want)
{
	fclose(j->f);
	if (strcmp(buf, want) != 0) {
		fprintf(stderr, "got  [%s]\nwant [%s]\n", buf, want);
		CHECK(!"JSON output differs");
	}
	free(buf);
}

/* One string value as a whole document. */
static void string_is(const char *in, size_t n, const char *want)
{
	struct json j;
	json_bytes(start(&j), in, n);
	expect(&j, want);
}

int main(void)
{
	struct json j;

	/* Separators: objects on one line, array elements a line each. */
	start(&j);
	json_object(&j);
	json_ku64(&j, "a", 1);
	json_kstr(&j, "b", "x");
	json_key(&j, "c");
	json_array(&j);
	json_u64(&j, 1);
	json_object(&j);
	json_kbool(&j, "t", true);
	json_key(&j, "n");
	json_null(&j);
	json_end(&j);
	json_end(&j);
	json_key(&j, "e");
	json_array(&j);
	json_end(&j);
	json_end(&j);
	expect(&j,
	       "{\"a\": 1, \"b\": \"x\", \"c\": [\n    1,\n    {\"t\": true, \"n\": null}\n  ], "
	       "\"e\": []}\n");

	start(&j);
	json_array(&j);
	json_end(&j);
	expect(&j, "[]\n");

	start(&j);
	json_double(&j, 1.0 / 0.0, 1);
	expect(&j, "null\n");

	/* JSON's escapes. */
	string_is("a\"b\\c", 5, "\"a\\\"b\\\\c\"\n");
	string_is("\t\n\x01\x1f\x7f", 5, "\"\\t\\n\\u0001\\u001f\x7f\"\n");
	string_is("a\0b", 3, "\"a\\u0000b\"\n");

	/* Valid UTF-8 passes through: é, €, U+10FFFF, an emoji. */
	string_is("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"\n");
	string_is("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"\n");
	string_is("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"\n");
	string_is("\xf0\x9f\x90\x84", 4, "\"\xf0\x9f\x90\x84\"\n");

	/* Not UTF-8: one \udcXX per byte. */
	string_is("\xff", 1, "\"\\udcff\"\n");
	string_is("a\xff\x00", 3, "\"a\\udcff\\u0000\"\n");
	string_is("\xc3", 1, "\"\\udcc3\"\n");			     /* cut short */
	string_is("\xc3(", 2, "\"\\udcc3(\"\n");		     /* bad continuation */
	string_is("\xc0\x80", 2, "\"\\udcc0\\udc80\"\n");	     /* overlong NUL */
	string_is("\xe0\x80\xaf", 3, "\"\\udce0\\udc80\\udcaf\"\n"); /* overlong '/' */
	string_is("\xed\xa0\x80", 3, "\"\\udced\\udca0\\udc80\"\n"); /* a surrogate */
	string_is("\xf4\x90\x80\x80", 4, "\"\\udcf4\\udc90\\udc80\\udc80\"\n"); /* > U+10FFFF */
	string_is("\x80\xc3\xa9", 3, "\"\\udc80\xc3\xa9\"\n"); /* stray, then valid */

	/* Keys are escaped the same way. */
	start(&j);
	json_object(&j);
	json_ku64(&j, "k\xff", 0);
	json_end(&j);
	expect(&j, "{\"k\\udcff\": 0}\n");

	CHECK_EQ(json_utf8_len((const unsigned char *)"\xc3\xa9", 2), 2u);
	CHECK_EQ(json_utf8_len((const unsigned char *)"\xc3\xa9", 1), 0u);
	CHECK_EQ(json_utf8_len((const unsigned char *)"\xf5\x80\x80\x80", 4), 0u);
	return 0;
}
