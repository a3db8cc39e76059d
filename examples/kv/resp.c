/*
 * RESP for kv: the request parser and the reply builders.
 *
 * A request is either an array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
 * what redis-cli and redis-benchmark send) or an inline command ("PING\r\n",
 * what a person types into telnet). The parser is restartable: it parses
 * from the start of the buffer each time and says how many bytes it needs,
 * so a request split over many reads costs one parse per read of its
 * header, never a copy. Lengths are read as strict decimals and checked
 * against the limits before anything is allocated or skipped: "$1e30",
 * "$-1", "*99999999999" and binary garbage are errors, never crashes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

bool kv_parse_ll(const char *p, size_t n, long long *out)
{
	if (n == 0 || n > 20)
		return false;
	size_t i = 0;
	bool neg = p[0] == '-';
	if (neg && n == 1)
		return false;
	i = neg;
	if (p[i] == '0' && n > i + 1)
		return false; /* no leading zeros, as Redis */
	unsigned long long v = 0;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (9223372036854775808ull - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (!neg && v > 9223372036854775807ull)
		return false;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

/* A header line "<c><decimal>\r\n" at @p; @end is the buffer's end. */
static enum kv_parse header(const char *p, const char *end, long long *n, const char **next)
{
	const char *cr = memchr(p, '\r', (size_t)(end - p));
	if (!cr || cr + 1 >= end) {
		/* Headers are short: one that runs on and on is garbage. */
		return end - p > 32 ? KV_PARSE_ERROR : KV_PARSE_MORE;
	}
	if (cr[1] != '\n' || !kv_parse_ll(p + 1, (size_t)(cr - p - 1), n))
		return KV_PARSE_ERROR;
	*next = cr + 2;
	return KV_PARSE_OK;
}

static bool reserve(struct kv_req *req, size_t n)
{
	if (n <= req->cap)
		return true;
	size_t cap = req->cap ? req->cap : 8;
	while (cap < n)
		cap *= 2;
	struct kv_arg *a = realloc(req->argv, cap * sizeof(*a));
	if (!a)
		return false;
	req->argv = a;
	req->cap = cap;
	return true;
}

static enum kv_parse inline_cmd(const char *buf, size_t len, struct kv_req *req, size_t *used,
				const char **err)
{
	const char *nl = memchr(buf, '\n', len);
	if (!nl) {
		if (len > 64 * 1024) {
			*err = "ERR Protocol error: too big inline request";
			return KV_PARSE_ERROR;
		}
		req->want = len + 1;
		return KV_PARSE_MORE;
	}
	const char *p = buf, *end = nl > buf && nl[-1] == '\r' ? nl - 1 : nl;
	req->argc = 0;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			break;
		const char *s = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		if (!reserve(req, req->argc + 1)) {
			*err = "ERR out of memory";
			return KV_PARSE_ERROR;
		}
		req->argv[req->argc++] = (struct kv_arg){s, (size_t)(p - s)};
	}
	*used = (size_t)(nl + 1 - buf);
	return KV_PARSE_OK;
}

enum kv_parse kv_parse(const char *buf, size_t len, struct kv_req *req, size_t *used,
		       const char **err)
{
	req->argc = 0;
	req->want = 0;
	if (len == 0) {
		req->want = 1;
		return KV_PARSE_MORE;
	}
	if (buf[0] != '*')
		return inline_cmd(buf, len, req, used, err);
	const char *p = buf, *end = buf + len, *next;
	long long n;
	enum kv_parse r = header(p, end, &n, &next);
	if (r != KV_PARSE_OK) {
		*err = "ERR Protocol error: invalid multibulk length";
		req->want = len + 1;
		return r;
	}
	if (n > KV_MAX_ARGS || n < -1) {
		*err = "ERR Protocol error: invalid multibulk length";
		return KV_PARSE_ERROR;
	}
	p = next;
	if (n <= 0) { /* "*0" and "*-1": an empty request, skipped as Redis does */
		*used = (size_t)(p - buf);
		return KV_PARSE_OK;
	}
	if (!reserve(req, (size_t)n)) {
		*err = "ERR out of memory";
		return KV_PARSE_ERROR;
	}
	for (long long i = 0; i < n; i++) {
		if (p == end) {
			req->want = len + 1;
			return KV_PARSE_MORE;
		}
		if (*p != '$') {
			static char msg[64];
			snprintf(msg, sizeof(msg), "ERR Protocol error: expected '$', got '%c'",
				 *p >= 32 && *p < 127 ? *p : '?');
			*err = msg;
			return KV_PARSE_ERROR;
		}
		long long bl;
		r = header(p, end, &bl, &next);
		if (r == KV_PARSE_MORE) {
			req->want = len + 1;
			return r;
		}
		if (r == KV_PARSE_ERROR || bl < 0 || (unsigned long long)bl > KV_MAX_BULK) {
			*err = "ERR Protocol error: invalid bulk length";
			return KV_PARSE_ERROR;
		}
		size_t need = (size_t)(next - buf) + (size_t)bl + 2;
		if (need > len) {
			req->want = need;
			return KV_PARSE_MORE;
		}
		if (next[bl] != '\r' || next[bl + 1] != '\n') {
			*err = "ERR Protocol error: bulk string not followed by CRLF";
			return KV_PARSE_ERROR;
		}
		req->argv[req->argc++] = (struct kv_arg){next, (size_t)bl};
		p = next + bl + 2;
	}
	*used = (size_t)(p - buf);
	return KV_PARSE_OK;
}

/* ---- replies ---- */

static bool grow(struct kv_out *o, size_t n)
{
	if (o->oom)
		return false;
	if (o->cap - o->len >= n)
		return true;
	if (o->off) { /* slide out what was sent */
		memmove(o->p, o->p + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
		if (o->cap - o->len >= n)
			return true;
	}
	size_t cap = o->cap ? o->cap : 16 * 1024;
	while (cap - o->len < n)
		cap *= 2;
	char *p = realloc(o->p, cap);
	if (!p) {
		o->oom = true;
		return false;
	}
	o->p = p;
	o->cap = cap;
	return true;
}

void kv_out_raw(struct kv_out *o, const void *p, size_t n)
{
	if (!grow(o, n))
		return;
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void line(struct kv_out *o, char c, const char *s, size_t n)
{
	if (!grow(o, n + 3))
		return;
	o->p[o->len++] = c;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len++] = '\r';
	o->p[o->len++] = '\n';
}

void kv_out_status(struct kv_out *o, const char *s)
{
	line(o, '+', s, strlen(s));
}

void kv_out_error(struct kv_out *o, const char *s)
{
	/* An error line must not break the framing: no CR or LF inside. */
	size_t n = strcspn(s, "\r\n");
	line(o, '-', s, n);
}

void kv_out_errorf(struct kv_out *o, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kv_out_error(o, msg);
}

static void number(struct kv_out *o, char c, long long v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%lld", v);
	line(o, c, b, (size_t)n);
}

void kv_out_int(struct kv_out *o, long long v)
{
	number(o, ':', v);
}

void kv_out_bulk(struct kv_out *o, const void *p, size_t n)
{
	number(o, '$', (long long)n);
	if (!grow(o, n + 2))
		return;
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len++] = '\r';
	o->p[o->len++] = '\n';
}

void kv_out_null(struct kv_out *o)
{
	kv_out_raw(o, "$-1\r\n", 5);
}

void kv_out_array(struct kv_out *o, long long n)
{
	number(o, '*', n);
}
