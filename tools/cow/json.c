/*
 * The JSON writer (json.h). Objects stay on one line; each element of an
 * array starts a line of its own, so a long scan stays readable and
 * greppable.
 */
#include <math.h>
#include <string.h>

#include "json.h"

void json_init(struct json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
	j->array[0] = false;
	j->after_key = false;
	j->lines = false;
}

void json_init_lines(struct json *j, FILE *f)
{
	json_init(j, f);
	j->lines = true;
}

static void indent(struct json *j, int depth)
{
	if (j->lines)
		return;
	fputc('\n', j->f);
	for (int i = 0; i < depth; i++)
		fputs("  ", j->f);
}

/* Before a value or a key: the comma, and in arrays the line break. */
static void before(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (!j->first[j->depth])
		fputc(',', j->f);
	if (j->array[j->depth])
		indent(j, j->depth);
	else if (!j->first[j->depth])
		fputc(' ', j->f);
	j->first[j->depth] = false;
}

static void open_container(struct json *j, char c, bool array)
{
	before(j);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_MAXDEPTH)
		j->depth++;
	j->first[j->depth] = true;
	j->array[j->depth] = array;
}

void json_object(struct json *j)
{
	open_container(j, '{', false);
}

void json_array(struct json *j)
{
	open_container(j, '[', true);
}

void json_end(struct json *j)
{
	bool array = j->array[j->depth];
	if (array && !j->first[j->depth])
		indent(j, j->depth - 1);
	fputc(array ? ']' : '}', j->f);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0)
		fputc('\n', j->f);
}

size_t json_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t min, cp;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void write_bytes(FILE *f, const unsigned char *p, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t len = json_utf8_len(p + i, n - i);
		if (len == 0) {
			fprintf(f, "\\udc%02x", c); /* not UTF-8: surrogateescape */
			i++;
		} else if (len > 1) {
			fwrite(p + i, 1, len, f);
			i += len;
		} else {
			if (c == '"' || c == '\\')
				fprintf(f, "\\%c", c);
			else if (c == '\n')
				fputs("\\n", f);
			else if (c == '\t')
				fputs("\\t", f);
			else if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
			i++;
		}
	}
	fputc('"', f);
}

void json_key(struct json *j, const char *key)
{
	before(j);
	write_bytes(j->f, (const unsigned char *)key, strlen(key));
	fputs(": ", j->f);
	j->after_key = true;
}

void json_bytes(struct json *j, const void *p, size_t n)
{
	before(j);
	write_bytes(j->f, p, n);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void json_str(struct json *j, const char *s)
{
	json_bytes(j, s, strlen(s));
}

void json_str_or_null(struct json *j, const char *s)
{
	if (s && *s)
		json_str(j, s);
	else
		json_null(j);
}

static void scalar(struct json *j, const char *text)
{
	before(j);
	fputs(text, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void json_u64(struct json *j, uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
	scalar(j, b);
}

void json_i64(struct json *j, int64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "%lld", (long long)v);
	scalar(j, b);
}

void json_double(struct json *j, double v, int decimals)
{
	char b[64];
	if (!isfinite(v))
		snprintf(b, sizeof(b), "null");
	else
		snprintf(b, sizeof(b), "%.*f", decimals, v);
	scalar(j, b);
}

void json_bool(struct json *j, bool v)
{
	scalar(j, v ? "true" : "false");
}

void json_null(struct json *j)
{
	scalar(j, "null");
}

void json_kstr(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void json_kbytes(struct json *j, const char *key, const void *p, size_t n)
{
	json_key(j, key);
	json_bytes(j, p, n);
}

void json_ku64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_u64(j, v);
}

void json_kbool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	json_bool(j, v);
}
