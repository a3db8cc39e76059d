/*
 * Probe, regions, sinks, argument checks, and the signal handler's chaining
 * of faults that are not cowkit's to the handler installed before.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "cow/mem.h"

static char *volatile guard; /* read by the handler */
static volatile sig_atomic_t caught;

static void user_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((char *)si->si_addr == guard) {
		caught++;
		mprotect(guard, 4096, PROT_READ | PROT_WRITE);
	}
}

int main(void)
{
	cow_mem_probe_info p;
	CHECK_RC(cow_mem_probe(NULL), COW_EINVAL);
	CHECK_OK(cow_mem_probe(&p));
	printf("uffd: %s via %s, features %#llx\n",
	       p.uffd_error ? cow_strerror(p.uffd_error) : "ok", p.uffd_via,
	       (unsigned long long)p.uffd_features);
	printf("snapshot: %s (%s)\ntrack: %s (%s)\nrestore: %s (%s)\nthp: %s\n",
	       cow_mem_backend_name(p.snapshot), p.snapshot_why, cow_mem_backend_name(p.track),
	       p.track_why, cow_mem_backend_name(p.restore), p.restore_why, p.thp);
	CHECK(p.snapshot_why[0] && p.track_why[0] && p.restore_why[0]);
	CHECK_NE(p.snapshot, COW_MEM_AUTO);
	if (p.uffd_error == 0)
		CHECK(p.uffd_via[0]);
	CHECK_STREQ(cow_mem_backend_name(COW_MEM_FORK), "fork");

	/* Forcing the fallback through the environment is reported. */
	setenv("COW_MEM_BACKEND", "mprotect", 1);
	cow_mem_probe_info q;
	CHECK_OK(cow_mem_probe(&q));
	CHECK_EQ(q.snapshot, COW_MEM_MPROTECT);
	CHECK_EQ(q.track, COW_MEM_MPROTECT);
	CHECK(strstr(q.snapshot_why, "forced") != NULL);
	unsetenv("COW_MEM_BACKEND");

	/* Regions. */
	cow_mem_region *r;
	CHECK_RC(cow_mem_region_alloc(0, 0, &r), COW_EINVAL);
	CHECK_RC(cow_mem_region_alloc(4096, 0x80, &r), COW_EINVAL);
	CHECK_OK(cow_mem_region_alloc(5000, 0, &r));
	CHECK_EQ(cow_mem_region_size(r), 8192);
	cow_mem_region_destroy(r);
	CHECK_OK(cow_mem_region_alloc(3u << 20, COW_MEM_THP, &r));
	CHECK_EQ(cow_mem_region_size(r), 4u << 20);
	CHECK_EQ((uintptr_t)cow_mem_region_addr(r) % (2u << 20), 0);
	cow_mem_region_destroy(r);
	cow_mem_region_destroy(NULL);

	char *anon =
		mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon != MAP_FAILED);
	CHECK_RC(cow_mem_region_register(anon + 1, 4096, &r), COW_EINVAL);
	CHECK_OK(cow_mem_region_register(anon, 1 << 20, &r));
	cow_mem_region_destroy(r);
	anon[0] = 1; /* still mapped: destroy of a registered region keeps the memory */
	char *shared =
		mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK_RC(cow_mem_region_register(shared, 1 << 20, &r), COW_EOPNOTSUPP);
	char *ro = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_RC(cow_mem_region_register(ro, 1 << 20, &r), COW_EOPNOTSUPP);
	int fd = open(check_path("file"), O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	char *file = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK_RC(cow_mem_region_register(file, 1 << 20, &r), COW_EOPNOTSUPP);
	munmap(anon + (512 << 10), 4096); /* a hole inside */
	CHECK_RC(cow_mem_region_register(anon, 1 << 20, &r), COW_EOPNOTSUPP);

	/* Sinks. */
	cow_mem_sink *s;
	CHECK_RC(cow_mem_sink_fd(-1, 0, &s), COW_EINVAL);
	CHECK_RC(cow_mem_sink_buffer(NULL, 10, &s), COW_EINVAL);
	cow_mem_sink_ops none = {0};
	CHECK_RC(cow_mem_sink_callbacks(&none, NULL, &s), COW_EINVAL);
	cow_mem_sink_destroy(NULL);

	/* A snapshot into a too-small buffer fails cleanly before touching anything. */
	CHECK_OK(cow_mem_region_alloc(1 << 20, 0, &r));
	char small[4096];
	CHECK_OK(cow_mem_sink_buffer(small, sizeof(small), &s));
	CHECK_RC(cow_mem_snapshot(r, s, NULL, NULL), COW_ERANGE);
	cow_mem_snap_opts bad = {.backend = COW_MEM_EAGER};
	CHECK_RC(cow_mem_snapshot(r, s, &bad, NULL), COW_EINVAL);
	cow_mem_sink_destroy(s);

	/* A fault outside cowkit's ranges reaches the handler installed before. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = user_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	CHECK_OK(cow_mem_track_start(r, COW_MEM_MPROTECT)); /* installs cowkit's handler */
	guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	*(volatile char *)guard = 1;
	CHECK_EQ(caught, 1);
	((volatile char *)cow_mem_region_addr(r))[100] = 1; /* ours: tracked, not chained */
	CHECK_EQ(caught, 1);
	cow_mem_track_stop(r);
	cow_mem_region_destroy(r);
	printf("ok\n");
	return 0;
}
