/*
 * Numbers on the command line: the one parser every numeric argument and
 * option of `cow` goes through. It is exact (no floating point, so offsets
 * above 2^53 do not round) and strict: a string is accepted whole or not at
 * all, never read up to the first junk character.
 *
 * Accepted, for sizes and offsets (CLI_NUM_BYTES):
 *	DIGITS [SUFFIX]
 * where DIGITS are ASCII 0-9 (decimal; a leading 0 does not mean octal,
 * and 0x... is refused) and SUFFIX is one of
 *	B                                       1
 *	K KiB  M MiB  G GiB  T TiB  P PiB  E EiB powers of 1024 (as dd, qemu-img)
 *	kB KB  MB     GB     TB     PB     EB    powers of 1000
 * (k may stand for K). Refused: an empty string, signs, spaces, fractions,
 * exponents, inf and nan, any other suffix, and values above the maximum,
 * including after multiplying by the suffix.
 *
 * Counts and ids (CLI_NUM_COUNT) are DIGITS only. Durations and percentages
 * go through cli_num_parse_fixed(): DIGITS [. DIGITS], scaled to an integer.
 *
 * This file depends on nothing else in the tool, so tests link it alone.
 */
#ifndef COW_CLI_NUM_H
#define COW_CLI_NUM_H

#include <stddef.h>
#include <stdint.h>

enum cli_num_kind {
	CLI_NUM_BYTES, /* sizes and offsets: digits with an optional unit suffix */
	CLI_NUM_COUNT, /* counts, ids, step numbers: digits only */
	CLI_NUM_FIXED, /* what cli_num_parse_fixed() reads */
};

enum cli_num_error {
	CLI_NUM_OK = 0,
	CLI_NUM_EMPTY,	  /* "" */
	CLI_NUM_SYNTAX,	  /* not digits: sign, space, '.', 'e', "inf", UTF-8 digits, ... */
	CLI_NUM_SUFFIX,	  /* digits, then something that is not a known suffix */
	CLI_NUM_DECIMALS, /* fixed point: more decimals than the caller can keep */
	CLI_NUM_RANGE,	  /* above @max (after the suffix's multiplier) */
};

/*
 * cli_num_parse - parse @s as @kind (CLI_NUM_BYTES or CLI_NUM_COUNT).
 *
 * On success stores the value (at most @max) in *@out and returns CLI_NUM_OK;
 * otherwise returns the reason and leaves *@out alone.
 */
enum cli_num_error cli_num_parse(const char *s, enum cli_num_kind kind, uint64_t max,
				 uint64_t *out);

/*
 * cli_num_parse_fixed - parse a non-negative decimal "12" or "0.25" and store
 * it times 10^@decimals in *@out ("0.25" with 3 decimals is 250). More than
 * @decimals digits after the point is CLI_NUM_DECIMALS, not rounded. The
 * scaled value must be at most @max. @decimals is at most 18.
 */
enum cli_num_error cli_num_parse_fixed(const char *s, unsigned decimals, uint64_t max,
				       uint64_t *out);

/*
 * cli_num_explain - a sentence for @err (which was returned for @kind with
 * @max), such as "expected a whole number of bytes, ...", into @buf.
 * Returns @buf.
 */
const char *cli_num_explain(enum cli_num_error err, enum cli_num_kind kind, uint64_t max, char *buf,
			    size_t len);

#endif
