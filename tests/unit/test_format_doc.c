/*
 * docs/FORMAT.md is the protocol the code runs: its tables and constants are
 * checked against the code. Superblock and catalog-record offsets are read
 * from the document's tables and compared with what the encoders write;
 * sizes and limits quoted in the text are compared with the constants.
 *
 *   unit_format_doc PATH/TO/FORMAT.md
 */
#include <stdio.h>
#include <stdlib.h>

#include "block/block.h"
#include "btree/btree.h"
#include "btree/node.h"
#include "check.h"
#include "store/store.h"

static char *doc;

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	CHECK_EQ(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	CHECK_GT(n, 0);
	rewind(f);
	char *s = malloc((size_t)n + 1);
	CHECK(s != NULL);
	CHECK_EQ(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

/* The text of section @title ("## 3. Superblock") up to the next "## ". */
static char *section(const char *title)
{
	char *a = strstr(doc, title);
	if (!a)
		check__fail(__FILE__, __LINE__, "FORMAT.md has no section '%s'", title);
	char *b = strstr(a + 3, "\n## ");
	size_t n = b ? (size_t)(b - a) : strlen(a);
	char *s = malloc(n + 1);
	CHECK(s != NULL);
	memcpy(s, a, n);
	s[n] = 0;
	return s;
}

static void expect_text(const char *sec, const char *text)
{
	if (!strstr(sec, text))
		check__fail(__FILE__, __LINE__, "FORMAT.md does not say '%s'", text);
}

/*
 * The offset and size that the table row naming @field (in backticks, or as
 * the first words of its description) gives; fails if no row does.
 */
static void row(const char *sec, const char *field, unsigned *off, unsigned *size)
{
	for (const char *p = sec; (p = strstr(p, "\n| ")); p++) {
		unsigned o, n;
		char rest[512];
		if (sscanf(p, "\n| %u | %u | %511[^\n]", &o, &n, rest) != 3)
			continue;
		char want[128];
		snprintf(want, sizeof(want), "`%s`", field);
		if (strstr(rest, want) || strncmp(rest, field, strlen(field)) == 0) {
			*off = o;
			*size = n;
			return;
		}
	}
	check__fail(__FILE__, __LINE__, "FORMAT.md has no table row for '%s'", field);
}

static void superblock(void)
{
	char *sec = section("## 3. Superblock");
	struct cow__sb sb = {
		.gen = 0x1111,
		.synced = 0x2222,
		.nblocks = 0x3333,
		.catalog = {0x4444, 0x4445, 0x4446},
		.space_base = {0x5555, 0x5556, 0x5557},
		.space_log = {0x6666, 0x6667, 0x6668},
		.log_blocks = 0x7777,
		.next_id = 0x8888,
		.refs = {0x9999, 0x999a, 0x999b},
		.used_blocks = 0xaaaa,
		.pending_blocks = 0xbbbb,
	};
	for (int i = 0; i < 16; i++)
		sb.uuid[i] = (uint8_t)(0xc0 + i);
	uint8_t b[COW_BLOCK_SIZE];
	cow__sb_encode(&sb, b);
	struct {
		const char *name;
		uint64_t value;
		unsigned size;
	} f[] = {
		{"gen", sb.gen, 8},
		{"synced", sb.synced, 8},
		{"nblocks", sb.nblocks, 8},
		{"catalog", sb.catalog.addr, 24},
		{"space_base", sb.space_base.addr, 24},
		{"space_log", sb.space_log.addr, 24},
		{"log_blocks", sb.log_blocks, 8},
		{"next_id", sb.next_id, 8},
		{"refs", sb.refs.addr, 24},
		{"used_blocks", sb.used_blocks, 8},
		{"pending_blocks", sb.pending_blocks, 8},
	};
	for (size_t i = 0; i < COW_ARRAY_SIZE(f); i++) {
		unsigned off, size;
		row(sec, f[i].name, &off, &size);
		CHECK_EQ(size, f[i].size);
		CHECK_LE(off + size, COW_BLOCK_SIZE);
		if (cow__le64(b + off) != f[i].value)
			check__fail(__FILE__, __LINE__, "superblock field %s is not at offset %u",
				    f[i].name, off);
	}
	unsigned off, size;
	row(sec, "store UUID", &off, &size);
	CHECK_EQ(size, 16);
	CHECK_EQ(b[off], 0xc0);
	CHECK_EQ(b[off + 15], 0xcf);
	row(sec, "magic", &off, &size);
	CHECK_EQ(off, 0);
	CHECK_MEMEQ(b, "COWKITSB", 8);
	row(sec, "XXH3-64", &off, &size);
	CHECK_EQ(off, COW_BLOCK_SIZE - 8);
	CHECK_EQ(cow__le64(b + off), cow__csum(b, off));
	free(sec);
}

static void catalog_record(void)
{
	char *sec = section("## 5. The catalog");
	char want[64];
	snprintf(want, sizeof(want), "Record (%u bytes + origin)", (unsigned)CAT_FIXED);
	expect_text(sec, want);
	struct cow__obj o = {.type = OBJ_VOLUME,
			     .flags = OBJF_SNAPSHOT,
			     .id = 0x1212,
			     .root = {0x3434, 0x3435, 0x3436},
			     .count = 0x5656,
			     .created = 0x7878,
			     .shared_gen = 0x9a9a,
			     .blocks = 0xbcbc};
	memcpy(o.origin, "v@s", 4);
	uint8_t v[CAT_FIXED + COW_FULLNAME_MAX];
	CHECK_EQ(cow__obj_encode(&o, v), CAT_FIXED + 3);
	struct {
		const char *name;
		uint64_t value;
	} f[] = {
		{"object id", o.id},	      {"root pointer", o.root.addr},
		{"entries", o.count},	      {"generation the object", o.created},
		{"shared_gen", o.shared_gen}, {"referenced", o.blocks},
	};
	for (size_t i = 0; i < COW_ARRAY_SIZE(f); i++) {
		unsigned off, size;
		row(sec, f[i].name, &off, &size);
		if (cow__le64(v + off) != f[i].value)
			check__fail(__FILE__, __LINE__, "catalog field '%s' is not at offset %u",
				    f[i].name, off);
	}
	unsigned off, size;
	row(sec, "type", &off, &size);
	CHECK_EQ(v[off], OBJ_VOLUME);
	row(sec, "flags", &off, &size);
	CHECK_EQ(v[off], OBJF_SNAPSHOT);
	row(sec, "origin_len", &off, &size);
	CHECK_EQ(cow__le16(v + off), 3);
	row(sec, "GUID", &off, &size);
	CHECK_EQ(off + size, CAT_FIXED);
	free(sec);
}

/* 32256 -> "32,256" */
static void thousands(char *buf, size_t n, unsigned long v)
{
	if (v >= 1000)
		snprintf(buf, n, "%lu,%03lu", v / 1000, v % 1000);
	else
		snprintf(buf, n, "%lu", v);
}

static void constants(void)
{
	char *nodes = section("## 4. Tree nodes");
	char want[128];
	snprintf(want, sizeof(want), "Node header (%u bytes)", (unsigned)N_HDR);
	expect_text(nodes, want);
	snprintf(want, sizeof(want), "keys 1..%u bytes", (unsigned)COW_KEY_MAX);
	expect_text(nodes, want);
	snprintf(want, sizeof(want), "fits in\n%u bytes", (unsigned)COW_CELL_MAX);
	expect_text(nodes, want);
	snprintf(want, sizeof(want), "magic `0x%08x`", (unsigned)N_MAGIC);
	expect_text(nodes, want);
	free(nodes);

	char *space = section("## 6. Space map");
	char num[32];
	thousands(num, sizeof(num), (unsigned long)COW_BITMAP_BITS);
	snprintf(want, sizeof(want), "at most %s per block", num);
	expect_text(space, want);
	snprintf(want, sizeof(want), "payload from offset %u", (unsigned)COW_SPACE_HDR);
	expect_text(space, want);
	snprintf(want, sizeof(want), "`u32 magic 0x%08x", (unsigned)COW_SPACE_MAGIC);
	expect_text(space, want);
	free(space);

	char *locks = section("## 8. Locks and readers");
	expect_text(locks, "| 0 | write lock |");
	CHECK_EQ(COW_PIN_BASE, 1ull << 62);
	expect_text(locks, "| 2^62 + g | read lock |");
	free(locks);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		check__fail(__FILE__, __LINE__, "usage: unit_format_doc FORMAT.md");
	doc = read_file(argv[1]);
	superblock();
	catalog_record();
	constants();
	free(doc);
	return 0;
}
