/*
 * Replay a fuzz target's corpus without libFuzzer, with any compiler:
 *
 *   fuzz_open_replay FILE|DIR...
 *
 * Runs LLVMFuzzerTestOneInput once for every file named, and every regular
 * file directly inside every directory named (in name order, so a failure
 * names the same input each run). Exits 0 when every input passed; an input
 * that breaks the target aborts, after the file's name is printed. An empty
 * or missing corpus is an error: the test would otherwise pass vacuously.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fclose(f);
			fprintf(stderr, "%s: out of memory\n", path);
			return -1;
		}
		len += fread(buf + len, 1, cap - len, f);
		if (len < cap)
			break;
		cap *= 2;
		uint8_t *nb = realloc(buf, cap);
		if (!nb)
			free(buf);
		buf = nb;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		return -1;
	}
	printf("replay %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	int runs = 0, fails = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			fails++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			fails += run_file(argv[i]) != 0;
			runs++;
			continue;
		}
		struct dirent **ents;
		int n = scandir(argv[i], &ents, NULL, by_name);
		if (n < 0) {
			perror(argv[i]);
			fails++;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", argv[i], ents[j]->d_name);
			if (ents[j]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				fails += run_file(p) != 0;
				runs++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	printf("%d inputs, %d unreadable\n", runs, fails);
	return runs == 0 || fails ? 1 : 0;
}
