/*
 * Numbers on the command line (see num.h for what is accepted and why).
 *
 * Everything is integer arithmetic with an overflow check before each
 * multiply and add, so the result is exact or an error, never rounded.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "num.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9'; /* not isdigit(): no locale, no UTF-8 digits */
}

/* *v = *v * m + a, or false if that exceeds @max. */
static bool mul_add(uint64_t *v, uint64_t m, uint64_t a, uint64_t max)
{
	if (m && *v > max / m)
		return false;
	uint64_t p = *v * m;
	if (a > max - p)
		return false;
	*v = p + a;
	return true;
}

/* Read DIGITS at *@s into *@v; false on overflow past @max. Leaves *@s after them. */
static bool digits(const char **s, uint64_t max, uint64_t *v)
{
	bool ok = true;
	*v = 0;
	for (; is_digit(**s); (*s)++)
		if (ok && !mul_add(v, 10, (uint64_t)(**s - '0'), max))
			ok = false; /* keep going: junk after digits is still a syntax error */
	return ok;
}

/* The multiplier a suffix stands for, or 0 if @s is not one. */
static uint64_t suffix(const char *s)
{
	static const char letters[] = "KMGTPE";
	if (strcmp(s, "") == 0 || strcmp(s, "B") == 0)
		return 1;
	char c = s[0] == 'k' ? 'K' : s[0];
	const char *l = c ? strchr(letters, c) : NULL;
	if (!l)
		return 0;
	unsigned power = (unsigned)(l - letters) + 1;
	uint64_t base;
	if (strcmp(s + 1, "") == 0 || strcmp(s + 1, "iB") == 0)
		base = 1024;
	else if (strcmp(s + 1, "B") == 0)
		base = 1000;
	else
		return 0;
	uint64_t m = 1;
	while (power--)
		m *= base; /* at most 1024^6 = 2^60: no overflow */
	return m;
}

enum cli_num_error cli_num_parse(const char *s, enum cli_num_kind kind, uint64_t max, uint64_t *out)
{
	if (!s || !*s)
		return CLI_NUM_EMPTY;
	if (!is_digit(*s))
		return CLI_NUM_SYNTAX;
	uint64_t v;
	bool fits = digits(&s, max, &v);
	uint64_t m = 1;
	if (*s) { /* 1.5, 0x10, "1 ", 1e30 and 4X all end up here */
		m = kind == CLI_NUM_BYTES ? suffix(s) : 0;
		if (!m)
			return kind == CLI_NUM_BYTES ? CLI_NUM_SUFFIX : CLI_NUM_SYNTAX;
	}
	if (!fits || !mul_add(&v, m, 0, max))
		return CLI_NUM_RANGE;
	*out = v;
	return CLI_NUM_OK;
}

enum cli_num_error cli_num_parse_fixed(const char *s, unsigned decimals, uint64_t max,
				       uint64_t *out)
{
	if (!s || !*s)
		return CLI_NUM_EMPTY;
	if (!is_digit(*s) || decimals > 18)
		return CLI_NUM_SYNTAX;
	uint64_t v;
	bool fits = digits(&s, UINT64_MAX, &v);
	unsigned used = 0;
	uint64_t frac = 0;
	if (*s == '.') {
		s++;
		if (!is_digit(*s))
			return CLI_NUM_SYNTAX; /* "1." */
		for (; is_digit(*s); s++, used++)
			if (used < decimals)
				frac = frac * 10 + (uint64_t)(*s - '0'); /* < 10^18 */
	}
	if (*s)
		return CLI_NUM_SYNTAX;
	if (used > decimals)
		return CLI_NUM_DECIMALS;
	for (; used < decimals; used++)
		frac *= 10;
	uint64_t scale = 1;
	for (unsigned i = 0; i < decimals; i++)
		scale *= 10;
	if (!fits || !mul_add(&v, scale, frac, max))
		return CLI_NUM_RANGE;
	*out = v;
	return CLI_NUM_OK;
}

const char *cli_num_explain(enum cli_num_error err, enum cli_num_kind kind, uint64_t max, char *buf,
			    size_t len)
{
	if (err == CLI_NUM_RANGE && kind != CLI_NUM_FIXED) {
		snprintf(buf, len, "too large: at most %llu", (unsigned long long)max);
		return buf;
	}
	if (err == CLI_NUM_RANGE) {
		snprintf(buf, len, "out of range");
		return buf;
	}
	const char *empty = err == CLI_NUM_EMPTY ? "empty; " : "";
	switch (kind) {
	case CLI_NUM_BYTES:
		snprintf(buf, len,
			 "%sexpected a whole number of bytes, optionally with K, M, G, T, P, E "
			 "(1024) or kB, MB, GB, TB, PB, EB (1000)",
			 empty);
		break;
	case CLI_NUM_COUNT:
		snprintf(buf, len, "%sexpected a whole number (decimal digits only)", empty);
		break;
	case CLI_NUM_FIXED:
		snprintf(buf, len, "%sexpected a decimal number such as 2 or 0.5%s", empty,
			 err == CLI_NUM_DECIMALS ? ", with fewer decimals" : "");
		break;
	}
	return buf;
}
