/*
 * Store-wide commands: init, stat.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cow/store.h"

int cmd_init(const struct cli_args *a)
{
	if (a->argc == 1)
		setenv("COW_STORE", a->argv[0], 1);
	const char *path = cli_store_path();
	if (!path)
		return cli_usage("init", "no store: give STORE, -s STORE or set COW_STORE");
	cow_store *s;
	cow_store_options o = {COW_STORE_CREATE | COW_STORE_EXCL};
	int rc = cow_store_open(path, &o, &s);
	if (rc)
		return cli_fail(rc, "%s: cannot create store", path);
	cow_store_close(s);
	printf("created store %s\n", path);
	return EXIT_OK;
}

/* A byte count, or "unknown" when @known is false. */
static const char *figure(char *buf, size_t len, bool known, uint64_t v)
{
	if (!known)
		snprintf(buf, len, "%s", "unknown (needs write access)");
	else
		cli_size(buf, len, (double)v);
	return buf;
}

int cmd_stat(const struct cli_args *args)
{
	bool json = cli_flag(args, "json");
	cow_store_stats st;
	bool space;
	int ex = cli_stat("stat", &st, &space);
	if (ex)
		return ex;
	char a[32], b[32], c[32], d[32];
	if (json) {
		struct json j;
		json_init(&j, stdout);
		json_object(&j);
		json_ku64(&j, "generation", st.gen);
		cli_json_space(&j, &st, space);
		json_ku64(&j, "readers", st.readers);
		json_end(&j);
		return EXIT_OK;
	}
	printf("generation  %llu\nfile        %s\nused        %s\npending     %s\nfree        %s\n"
	       "readers     %llu\n",
	       (unsigned long long)st.gen, cli_size(a, sizeof(a), (double)st.file_bytes),
	       figure(b, sizeof(b), space, st.used_bytes),
	       figure(c, sizeof(c), space, st.pending_bytes),
	       figure(d, sizeof(d), space, st.free_bytes), (unsigned long long)st.readers);
	return EXIT_OK;
}
