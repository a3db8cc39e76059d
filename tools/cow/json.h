/*
 * The one JSON writer of every --json output. It writes as it goes (no
 * tree in memory) and places commas and separators itself, so callers only
 * say what comes next.
 *
 * Strings are bytes. Valid UTF-8 passes through as UTF-8; '"', '\\' and
 * control bytes are escaped as JSON requires; each byte that is not part
 * of valid UTF-8 (a stray 0x80-0xFF, an overlong form, an encoded
 * surrogate, past U+10FFFF) becomes the lone surrogate \udcXX, XX the byte,
 * as Python's "surrogateescape" does. So no byte is lost or changed in
 * meaning: Python's s.encode("utf-8", "surrogateescape") gives the bytes
 * back (docs/cow.1, JSON OUTPUT).
 */
#ifndef COW_CLI_JSON_H
#define COW_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAXDEPTH 16

struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAXDEPTH]; /* nothing written yet at this depth */
	bool array[JSON_MAXDEPTH]; /* the container at this depth is an array */
	bool after_key;		   /* a key was written; its value comes next */
	bool lines;		   /* the whole document on one line */
};

/* Write to @f. A document is one value: an object, an array or a scalar. */
void json_init(struct json *j, FILE *f);
/* Likewise, but each document on one line (JSON Lines), for repeated output. */
void json_init_lines(struct json *j, FILE *f);
void json_object(struct json *j); /* { */
void json_array(struct json *j);  /* [ */
void json_end(struct json *j);	  /* } or ], then a newline at the top level */
/* The key of the next member of the current object. */
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_bytes(struct json *j, const void *p, size_t n);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_double(struct json *j, double v, int decimals); /* null if not finite */
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* A string or null when @s is NULL or "". */
void json_str_or_null(struct json *j, const char *s);

/*
 * Shorthands for one object member: json_key, then the value.
 */
void json_kstr(struct json *j, const char *key, const char *s);
void json_kbytes(struct json *j, const char *key, const void *p, size_t n);
void json_ku64(struct json *j, const char *key, uint64_t v);
void json_kbool(struct json *j, const char *key, bool v);

/*
 * The length of the valid UTF-8 sequence at @p (at most @n bytes), or 0 if
 * the byte at @p does not start one. Shared with the text escaping.
 */
size_t json_utf8_len(const unsigned char *p, size_t n);

#endif
