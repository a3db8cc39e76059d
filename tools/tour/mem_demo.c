/* The live-snapshot demonstration; see mem_demo.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mem_demo.h"

struct writer {
	char *mem;
	uint64_t size;
	pthread_mutex_t gate;
	atomic_int stop;
	atomic_ulong writes;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One 8-byte write per random page: the worst case for page-granular copying. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t x = 0x9E3779B97F4A7C15ull, npages = w->size >> 12;
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		pthread_mutex_lock(&w->gate);
		for (int k = 0; k < 64; k++) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			uint64_t v = x * 0x2545F4914F6CDD1DULL;
			memcpy(w->mem + ((v % npages) << 12) + ((v >> 52) & 0xff8), &v, 8);
		}
		pthread_mutex_unlock(&w->gate);
		atomic_fetch_add_explicit(&w->writes, 64, memory_order_relaxed);
	}
	return NULL;
}

int mem_demo_run(struct mem_demo *d)
{
	cow_mem_region *r = NULL;
	cow_mem_sink *sink = NULL;
	char *ref = NULL, path[4096];
	int fd = -1, rc;
	bool started = false;
	pthread_t th;
	struct writer w = {.size = d->size, .gate = PTHREAD_MUTEX_INITIALIZER};

	snprintf(path, sizeof(path), "%s/cow-mem-demo.%d.img", d->dir ? d->dir : "/tmp",
		 (int)getpid());
	rc = cow_mem_region_alloc(d->size, d->thp ? COW_MEM_THP : 0, &r);
	if (rc)
		goto out;
	w.mem = cow_mem_region_addr(r);
	w.size = cow_mem_region_size(r);
	for (uint64_t i = 0; i < w.size; i += 4096)
		memset(w.mem + i, (int)(i >> 12) | 1, 64); /* every page resident */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	unlink(path);
	rc = cow_mem_sink_fd(fd, 0, &sink);
	if (rc)
		goto out;
	if (d->verify) {
		ref = malloc(w.size);
		if (!ref) {
			rc = COW_ENOMEM;
			goto out;
		}
	}

	if (pthread_create(&th, NULL, writer_main, &w)) {
		rc = COW_EAGAIN;
		goto out;
	}
	started = true;
	/* Baseline: the writer alone. */
	usleep(50000);
	uint64_t t0 = now_ns(), n0 = atomic_load(&w.writes);
	usleep(d->size >= (1ull << 30) ? 500000 : 200000);
	d->base_wps = (double)(atomic_load(&w.writes) - n0) * 1e9 / (double)(now_ns() - t0);

	/* The instant: the writer is held off only while the snapshot starts. */
	cow_mem_snap_opts o = {.backend = d->backend, .buffer = (size_t)d->buffer};
	cow_mem_snap *s;
	pthread_mutex_lock(&w.gate);
	if (ref)
		memcpy(ref, w.mem, w.size);
	n0 = atomic_load(&w.writes);
	t0 = now_ns();
	rc = cow_mem_snapshot_start(r, sink, &o, &s);
	pthread_mutex_unlock(&w.gate);
	if (rc)
		goto out;
	rc = cow_mem_snapshot_wait(s, &d->st);
	d->snap_wps = (double)(atomic_load(&w.writes) - n0) * 1e9 / (double)(now_ns() - t0);
	if (rc)
		goto out;
	if (ref) {
		char *img = mmap(NULL, w.size, PROT_READ, MAP_SHARED, fd, 0);
		if (img == MAP_FAILED) {
			rc = -errno;
			goto out;
		}
		d->matched = memcmp(img, ref, w.size) == 0;
		munmap(img, w.size);
	}
out:
	if (started) {
		atomic_store(&w.stop, 1);
		pthread_join(th, NULL);
	}
	free(ref);
	cow_mem_sink_destroy(sink);
	if (fd >= 0)
		close(fd);
	cow_mem_region_destroy(r);
	return rc;
}
