/*
 * The command line's number parser (tools/cow/num.c), from a table: what is
 * accepted is exact to the last bit, and everything else is refused with the
 * right reason, never read up to the first junk character or rounded.
 */
#include <stdio.h>

#include "check.h"
#include "num.h"

#define MAX UINT64_MAX

struct row {
	const char *in;
	enum cli_num_kind kind;
	uint64_t max;
	enum cli_num_error want;
	uint64_t value; /* when want == CLI_NUM_OK */
};

static const struct row rows[] = {
	/* plain numbers */
	{"0", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 0},
	{"1", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 1},
	{"4096", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 4096},
	{"007", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 7}, /* decimal, not octal */
	{"9007199254740993", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 9007199254740993ull}, /* 2^53+1 */
	{"18446744073709551615", CLI_NUM_BYTES, MAX, CLI_NUM_OK, UINT64_MAX},
	{"18446744073709551616", CLI_NUM_BYTES, MAX, CLI_NUM_RANGE, 0},
	{"99999999999999999999999", CLI_NUM_BYTES, MAX, CLI_NUM_RANGE, 0},
	/* binary suffixes */
	{"4K", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 4096},
	{"4k", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 4096},
	{"4KiB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 4096},
	{"1M", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 1ull << 20},
	{"1MiB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 1ull << 20},
	{"3G", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 3ull << 30},
	{"16T", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 16ull << 40},
	{"2PiB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 2ull << 50},
	{"15E", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 15ull << 60},
	{"16E", CLI_NUM_BYTES, MAX, CLI_NUM_RANGE, 0},		/* 2^64: one past the top */
	{"17179869184G", CLI_NUM_BYTES, MAX, CLI_NUM_RANGE, 0}, /* 2^64 again */
	{"17179869183G", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 17179869183ull << 30},
	{"0K", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 0},
	/* decimal suffixes */
	{"4kB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 4000},
	{"4KB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 4000},
	{"1MB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 1000000},
	{"2GB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 2000000000},
	{"1TB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 1000000000000ull},
	{"18EB", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 18000000000000000000ull},
	{"19EB", CLI_NUM_BYTES, MAX, CLI_NUM_RANGE, 0},
	{"512B", CLI_NUM_BYTES, MAX, CLI_NUM_OK, 512},
	/* refused: not a whole number of bytes */
	{"", CLI_NUM_BYTES, MAX, CLI_NUM_EMPTY, 0},
	{"-1", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"+1", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"1e30", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1E30", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1e", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"inf", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"INF", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"infinity", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"nan", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"1.5", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1.5M", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{".5", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"1,000", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"0x10", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0}, /* hex: refused, see num.h */
	{" 1", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"1 ", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1 K", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1\n", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1KK", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1KiBB", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1Ki", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1kib", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1b", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0}, /* bits? blocks? refused */
	{"1m", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0}, /* only k may be lower case */
	{"1Q", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"1Z", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0},
	{"K", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},
	{"\xd9\xa1", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},	  /* ARABIC-INDIC DIGIT ONE */
	{"1\xef\xbc\x90", CLI_NUM_BYTES, MAX, CLI_NUM_SUFFIX, 0}, /* 1 then FULLWIDTH ZERO */
	{"\xef\xbc\x91", CLI_NUM_BYTES, MAX, CLI_NUM_SYNTAX, 0},  /* FULLWIDTH DIGIT ONE */
	/* a caller's maximum, checked after the multiplier */
	{"1K", CLI_NUM_BYTES, 1023, CLI_NUM_RANGE, 0},
	{"1K", CLI_NUM_BYTES, 1024, CLI_NUM_OK, 1024},
	{"1023", CLI_NUM_BYTES, 1023, CLI_NUM_OK, 1023},
	/* counts take digits only */
	{"10", CLI_NUM_COUNT, MAX, CLI_NUM_OK, 10},
	{"18446744073709551615", CLI_NUM_COUNT, MAX, CLI_NUM_OK, UINT64_MAX},
	{"18446744073709551616", CLI_NUM_COUNT, MAX, CLI_NUM_RANGE, 0},
	{"2147483647", CLI_NUM_COUNT, 2147483647, CLI_NUM_OK, 2147483647},
	{"2147483648", CLI_NUM_COUNT, 2147483647, CLI_NUM_RANGE, 0},
	{"1K", CLI_NUM_COUNT, MAX, CLI_NUM_SYNTAX, 0},
	{"1B", CLI_NUM_COUNT, MAX, CLI_NUM_SYNTAX, 0},
	{"x", CLI_NUM_COUNT, MAX, CLI_NUM_SYNTAX, 0},
	{"-5", CLI_NUM_COUNT, MAX, CLI_NUM_SYNTAX, 0},
	{"", CLI_NUM_COUNT, MAX, CLI_NUM_EMPTY, 0},
};

struct frow {
	const char *in;
	unsigned decimals;
	uint64_t max;
	enum cli_num_error want;
	uint64_t value;
};

static const struct frow frows[] = {
	{"2", 9, MAX, CLI_NUM_OK, 2000000000},
	{"0.5", 9, MAX, CLI_NUM_OK, 500000000},
	{"0.000000001", 9, MAX, CLI_NUM_OK, 1},
	{"0.0000000001", 9, MAX, CLI_NUM_DECIMALS, 0}, /* not rounded to 0 */
	{"86400", 9, 86400000000000ull, CLI_NUM_OK, 86400000000000ull},
	{"86400.000000001", 9, 86400000000000ull, CLI_NUM_RANGE, 0},
	{"100", 6, 100000000, CLI_NUM_OK, 100000000},
	{"12.25", 6, 100000000, CLI_NUM_OK, 12250000},
	{"0", 0, MAX, CLI_NUM_OK, 0},
	{"1.5", 0, MAX, CLI_NUM_DECIMALS, 0},
	{"18446744073709551615", 0, MAX, CLI_NUM_OK, UINT64_MAX},
	{"18446744073709551616", 0, MAX, CLI_NUM_RANGE, 0},
	{"18446744073709551615", 1, MAX, CLI_NUM_RANGE, 0},
	{"", 9, MAX, CLI_NUM_EMPTY, 0},
	{"1.", 9, MAX, CLI_NUM_SYNTAX, 0},
	{".5", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"-1", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"+1", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"1e3", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"inf", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"nan", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"0x1p3", 9, MAX, CLI_NUM_SYNTAX, 0},
	{" 1", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"1 ", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"1.2.3", 9, MAX, CLI_NUM_SYNTAX, 0},
	{"1s", 9, MAX, CLI_NUM_SYNTAX, 0},
};

int main(void)
{
	int bad = 0;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		uint64_t v = 12345;
		enum cli_num_error got = cli_num_parse(r->in, r->kind, r->max, &v);
		uint64_t want_v = r->want == CLI_NUM_OK ? r->value : 12345; /* untouched */
		if (got != r->want || v != want_v) {
			printf("FAIL: '%s' (kind %d, max %llu): error %d value %llu, expected "
			       "error "
			       "%d value %llu\n",
			       r->in, r->kind, (unsigned long long)r->max, got,
			       (unsigned long long)v, r->want, (unsigned long long)want_v);
			bad++;
		}
	}
	for (size_t i = 0; i < sizeof(frows) / sizeof(frows[0]); i++) {
		const struct frow *r = &frows[i];
		uint64_t v = 12345;
		enum cli_num_error got = cli_num_parse_fixed(r->in, r->decimals, r->max, &v);
		uint64_t want_v = r->want == CLI_NUM_OK ? r->value : 12345;
		if (got != r->want || v != want_v) {
			printf("FAIL: fixed '%s' (%u decimals): error %d value %llu, expected "
			       "error "
			       "%d value %llu\n",
			       r->in, r->decimals, got, (unsigned long long)v, r->want,
			       (unsigned long long)want_v);
			bad++;
		}
	}
	CHECK_EQ(cli_num_parse(NULL, CLI_NUM_BYTES, MAX, &(uint64_t){0}), CLI_NUM_EMPTY);

	/* The messages say what is accepted. */
	char buf[200];
	CHECK(strstr(cli_num_explain(CLI_NUM_SUFFIX, CLI_NUM_BYTES, MAX, buf, sizeof(buf)),
		     "whole number of bytes"));
	CHECK(strstr(buf, "kB, MB, GB, TB"));
	CHECK(strstr(cli_num_explain(CLI_NUM_RANGE, CLI_NUM_BYTES, MAX, buf, sizeof(buf)),
		     "18446744073709551615"));
	CHECK(strstr(cli_num_explain(CLI_NUM_SYNTAX, CLI_NUM_COUNT, MAX, buf, sizeof(buf)),
		     "decimal digits"));
	CHECK(strstr(cli_num_explain(CLI_NUM_EMPTY, CLI_NUM_FIXED, MAX, buf, sizeof(buf)),
		     "empty"));
	CHECK_EQ(bad, 0);
	printf("%zu numbers checked\n",
	       sizeof(rows) / sizeof(rows[0]) + sizeof(frows) / sizeof(frows[0]));
	return 0;
}
