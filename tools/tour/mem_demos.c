/*
 * The live-memory demonstrations, `cow mem snapshot|checkpoint|restore`:
 * they run on memory this process allocates and measure the mem API on it
 * (a library user calls the same API on its own memory, include/cow/mem.h).
 * They live in cow-tour with the tour, not in the production cow binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cow/mem.h"
#include "mem_demo.h"

/* A backend's name; "lazy" is a lazy restore (userfaultfd). The option's choices are checked. */
static bool parse_backend(const char *s, cow_mem_backend *b)
{
	if (strcmp(s, "lazy") == 0) {
		*b = COW_MEM_UFFD;
		return true;
	}
	return cow_mem_backend_parse(s, b) == 0;
}

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

int cmd_mem_snapshot(const struct cli_args *args)
{
	struct mem_demo d = {.size = cli_num(args, "size", 256ull << 20),
			     .buffer = cli_num(args, "buffer", 0),
			     .thp = cli_flag(args, "thp"),
			     .verify = !cli_flag(args, "no-verify")};
	bool json = cli_flag(args, "json"), compare = !cli_flag(args, "backend");
	if (!compare)
		parse_backend(cli_str(args, "backend", "auto"), &d.backend);
	const char *tmp = getenv("TMPDIR");
	d.dir = tmp && *tmp ? tmp : "/tmp";
	cow_mem_backend runs[2] = {d.backend, COW_MEM_FORK};
	int nruns = compare ? 2 : 1;
	char a[32], b[32];
	for (int k = 0; k < nruns; k++) {
		d.backend = runs[k];
		int rc = mem_demo_run(&d);
		if (rc)
			return cli_fail(rc, "mem snapshot (%s)", cow_mem_backend_name(d.backend));
		if (json) {
			struct json j;
			json_init(&j, stdout);
			json_object(&j);
			json_kstr(&j, "backend", cow_mem_backend_name(d.st.backend));
			json_ku64(&j, "size", d.size);
			json_kbool(&j, "thp", d.thp);
			json_ku64(&j, "pause_ns", d.st.pause_ns);
			json_ku64(&j, "total_ns", d.st.total_ns);
			json_ku64(&j, "faults", d.st.faults);
			json_ku64(&j, "fault_median_ns", d.st.fault_median_ns);
			json_ku64(&j, "stalls", d.st.stalls);
			json_ku64(&j, "extra_bytes", d.st.extra_peak);
			json_key(&j, "writes_per_s_base");
			json_double(&j, d.base_wps, 0);
			json_key(&j, "writes_per_s_snapshot");
			json_double(&j, d.snap_wps, 0);
			json_key(&j, "image_matches");
			if (d.verify)
				json_bool(&j, d.matched);
			else
				json_null(&j);
			json_end(&j);
			continue;
		}
		printf("%s snapshot of %s%s:\n", cow_mem_backend_name(d.st.backend),
		       cli_size(a, sizeof(a), (double)d.size), d.thp ? " (THP)" : "");
		printf("  pause:               %.3f ms\n", d.st.pause_ns / 1e6);
		printf("  image complete:      %.1f ms\n", d.st.total_ns / 1e6);
		printf("  extra memory:        %s\n",
		       cli_size(b, sizeof(b), (double)d.st.extra_peak));
		printf("  writer throughput:   %.2fx of no snapshot (%.1f M writes/s)\n",
		       d.base_wps > 0 ? d.snap_wps / d.base_wps : 0, d.snap_wps / 1e6);
		if (d.st.backend != COW_MEM_FORK)
			printf("  trapped writes:      %llu, median %.1f us, %llu waited for "
			       "buffer\n",
			       (unsigned long long)d.st.faults, d.st.fault_median_ns / 1e3,
			       (unsigned long long)d.st.stalls);
		if (d.verify)
			printf("  image matches:       %s\n", yes(d.matched));
		if (d.verify && !d.matched)
			return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int null_write(void *ctx, uint64_t off, const void *data, size_t len)
{
	(void)ctx;
	(void)off;
	(void)data;
	(void)len;
	return 0;
}

int cmd_mem_checkpoint(const struct cli_args *args)
{
	uint64_t size = cli_num(args, "size", 1ull << 30);
	double pct = (double)cli_num(args, "dirty", 1000000) / 1e6;
	cow_mem_backend b = COW_MEM_AUTO;
	parse_backend(cli_str(args, "backend", "auto"), &b);
	cow_mem_region *r;
	cow_mem_sink *sink;
	cow_mem_sink_ops ops = {.write = null_write};
	int rc = cow_mem_region_alloc(size, 0, &r);
	if (rc)
		return cli_fail(rc, "mem checkpoint");
	char *m = cow_mem_region_addr(r);
	for (uint64_t i = 0; i < size; i += 4096)
		m[i] = 1;
	char *img = malloc(size);
	if (img)
		rc = cow_mem_sink_buffer(img, size, &sink);
	else
		rc = cow_mem_sink_callbacks(&ops, NULL, &sink);
	if (!rc)
		rc = cow_mem_track_start(r, b);
	cow_mem_ckpt_stats full, inc;
	if (!rc)
		rc = cow_mem_checkpoint(r, sink, &full);
	uint64_t npages = size >> 12, every = pct > 0 ? (uint64_t)(100.0 / pct) : 0;
	for (uint64_t p = 0; every && p < npages; p += every)
		m[p << 12] ^= 2;
	if (!rc)
		rc = cow_mem_checkpoint(r, sink, &inc);
	if (rc) {
		cow_mem_sink_destroy(sink);
		cow_mem_region_destroy(r);
		free(img);
		return cli_fail(rc, "mem checkpoint");
	}
	char a[32];
	printf("checkpoints of %s, tracking by %s:\n", cli_size(a, sizeof(a), (double)size),
	       cow_mem_backend_name(full.backend));
	printf("  full:         %8.2f ms, %llu pages\n", full.total_ns / 1e6,
	       (unsigned long long)full.pages);
	printf("  %.1f%% dirty:   %8.2f ms, %llu pages in %llu runs (%.1f%% of full)\n", pct,
	       inc.total_ns / 1e6, (unsigned long long)inc.pages, (unsigned long long)inc.runs,
	       100.0 * (double)inc.total_ns / (double)full.total_ns);
	printf("  image matches: %s\n", yes(img && memcmp(img, m, size) == 0));
	cow_mem_sink_destroy(sink);
	cow_mem_region_destroy(r);
	free(img);
	return EXIT_OK;
}

int cmd_mem_restore(const struct cli_args *args)
{
	uint64_t size = cli_num(args, "size", 1ull << 30);
	size = (size + 4095) & ~4095ull;
	char *img = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (img == MAP_FAILED)
		return cli_fail(-errno, "mem restore");
	/* An image with data in 7 of every 8 MiB; the rest zeros (holes). */
	for (uint64_t i = 0; i < size; i += 4096)
		if ((i >> 20) % 8 != 7)
			memset(img + i, (int)(i >> 12) | 1, 4096);
	cow_mem_backend modes[2] = {COW_MEM_EAGER, COW_MEM_UFFD};
	char a[32];
	printf("restore of a %s image (1/8 zeros):\n", cli_size(a, sizeof(a), (double)size));
	double eager_ms = 0;
	for (int k = 0; k < 2; k++) {
		cow_mem_region *r;
		cow_mem_restore *h;
		cow_mem_restore_stats st;
		int rc = cow_mem_region_alloc(size, 0, &r);
		if (!rc)
			rc = cow_mem_restore_start(r, img, size, modes[k], &h);
		if (rc == COW_EOPNOTSUPP || (rc && k == 1 && rc == COW_EPERM)) {
			printf("  lazy:  unavailable here (%s); `cow mem probe` says why\n",
			       cow_strerror(rc));
			cow_mem_region_destroy(r);
			break;
		}
		if (rc) {
			cow_mem_region_destroy(r);
			munmap(img, size);
			return cli_fail(rc, "mem restore");
		}
		volatile char *m = cow_mem_region_addr(r);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		char c = m[size / 2 + 123];
		clock_gettime(CLOCK_MONOTONIC, &t1);
		rc = cow_mem_restore_wait(h, &st);
		bool ok =
			!rc && c == img[size / 2 + 123] && memcmp((const char *)m, img, size) == 0;
		double touch_us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 +
				  (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
		if (k == 0) {
			eager_ms = st.total_ns / 1e6;
			printf("  eager: %8.1f ms until usable, matches: %s\n", eager_ms, yes(ok));
		} else {
			printf("  lazy:  %8.3f ms until usable, first touch %.1f us, all present "
			       "after %.1f ms (%.2fx eager), %llu zero chunks left as holes, "
			       "matches: %s\n",
			       st.setup_ns / 1e6, touch_us, st.total_ns / 1e6,
			       eager_ms > 0 ? st.total_ns / 1e6 / eager_ms : 0,
			       (unsigned long long)st.zero_chunks, yes(ok));
		}
		cow_mem_region_destroy(r);
		if (!ok) {
			munmap(img, size);
			return EXIT_FAIL;
		}
	}
	munmap(img, size);
	return EXIT_OK;
}
