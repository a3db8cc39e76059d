/*
 * cow serve: a volume, snapshot or clone as an NBD disk. Runs nbdkit with
 * nbdkit-cow-plugin (plugins/nbdkit/) in the foreground, prints the URI once
 * nbdkit is listening, and stops it cleanly on SIGINT, SIGTERM or SIGHUP
 * (the plugin then commits what it still caches). Its row in the command
 * table (commands.c) names its options.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define PLUGIN_FILE "nbdkit-cow-plugin.so"

static volatile sig_atomic_t stop_signal;
static volatile pid_t child = -1;

static void on_signal(int sig)
{
	stop_signal = sig;
	if (child > 0)
		kill(child, SIGTERM);
}

static bool is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The plugin: $COW_NBDKIT_PLUGIN; beside this binary in a build tree
 * (build/tools/cow/cow -> build/plugins/nbdkit/); in an install
 * (bin/cow -> LIBDIR/nbdkit/plugins/); the configured install directory;
 * else the name "cow", which nbdkit looks up in its own plugin directory.
 */
static const char *find_plugin(char *buf, size_t len)
{
	const char *env = getenv("COW_NBDKIT_PLUGIN");
	if (env && *env)
		return env;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		const char *rel[] = {
			"../../plugins/nbdkit/" PLUGIN_FILE,
#ifdef COW_NBDKIT_PLUGINDIR
			"../" COW_NBDKIT_PLUGINDIR "/" PLUGIN_FILE,
#endif
		};
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			int w = snprintf(buf, len, "%s/%s", exe, rel[i]);
			if (w > 0 && (size_t)w < len && is_file(buf))
				return buf;
		}
	}
#ifdef COW_NBDKIT_PLUGINDIR_FULL
	int w = snprintf(buf, len, "%s/%s", COW_NBDKIT_PLUGINDIR_FULL, PLUGIN_FILE);
	if (w > 0 && (size_t)w < len && is_file(buf))
		return buf;
#endif
	return "cow";
}

/* Remove a socket file nobody listens on (a server that was killed left it). */
static void remove_stale(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct stat st;
	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED)
		unlink(path);
	close(fd);
}

int cmd_serve(const struct cli_args *a)
{
	const char *name = a->argv[0];
	const char *sock = cli_str(a, "socket", NULL), *cache = cli_str(a, "cache", NULL);
	uint64_t port = cli_num(a, "port", 0);
	bool readonly = cli_flag(a, "readonly"), verbose = cli_flag(a, "verbose");
	if (sock && port)
		return cli_usage("serve", "--socket and --port exclude each other");

	/* Check the store and the volume here, so mistakes get cow's exit codes. */
	cow_store *s;
	cow_txn *t;
	int ex = cli_begin("serve", false, &s, &t);
	if (ex)
		return ex;
	cow_vol *v;
	int rc = cow_vol_open(t, name, &v);
	cow_txn_abort(t);
	cow_store_close(s);
	if (rc)
		return cli_fail(rc, "%s: volume '%s'", cli_store_path(), name);
	char store[PATH_MAX];
	if (!realpath(cli_store_path(), store))
		return cli_fail(-errno, "%s", cli_store_path());

	char dir[] = "/tmp/cow-serve-XXXXXX"; /* the pid file, and the socket by default */
	if (!mkdtemp(dir))
		return cli_fail(-errno, "cannot create a temporary folder");
	char pidfile[sizeof(dir) + 16], defsock[sizeof(dir) + 16], sockabs[PATH_MAX];
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	snprintf(defsock, sizeof(defsock), "%s/nbd.sock", dir);
	if (!sock && !port)
		sock = defsock;
	if (sock && sock[0] != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) || (size_t)snprintf(sockabs, sizeof(sockabs), "%s/%s",
								  cwd, sock) >= sizeof(sockabs)) {
			rmdir(dir);
			return cli_usage("serve", "socket path too long");
		}
		sock = sockabs;
	}
	if (sock)
		remove_stale(sock);

	char plugin_buf[PATH_MAX], storearg[PATH_MAX + 8], volarg[COW_NAME_MAX * 2 + 16],
		cachearg[64], portarg[16];
	const char *plugin = find_plugin(plugin_buf, sizeof(plugin_buf));
	snprintf(storearg, sizeof(storearg), "store=%s", store);
	snprintf(volarg, sizeof(volarg), "volume=%s", name);
	const char *nbdkit = getenv("COW_NBDKIT");
	if (!nbdkit || !*nbdkit)
		nbdkit = "nbdkit";
	const char *args[24];
	int n = 0;
	args[n++] = nbdkit;
	args[n++] = "--foreground";
	args[n++] = "--exit-with-parent";
	args[n++] = "-P";
	args[n++] = pidfile;
	if (sock) {
		args[n++] = "-U";
		args[n++] = sock;
	} else {
		snprintf(portarg, sizeof(portarg), "%u", (unsigned)port);
		args[n++] = "-i";
		args[n++] = "127.0.0.1";
		args[n++] = "-p";
		args[n++] = portarg;
	}
	if (readonly)
		args[n++] = "-r";
	if (verbose)
		args[n++] = "-v";
	args[n++] = plugin;
	args[n++] = storearg;
	args[n++] = volarg;
	if (readonly)
		args[n++] = "readonly=true";
	if (cache) {
		snprintf(cachearg, sizeof(cachearg), "cache=%s", cache);
		args[n++] = cachearg;
	}
	args[n] = NULL;

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		rmdir(dir);
		return cli_fail(rc, "fork");
	}
	if (pid == 0) {
		execvp(nbdkit, (char *const *)args);
		fprintf(stderr, "cow serve: cannot run %s: %s (apt-get install nbdkit)\n", nbdkit,
			strerror(errno));
		_exit(127);
	}
	child = pid;
	if (stop_signal) /* a signal before child was set */
		kill(pid, SIGTERM);

	/* nbdkit writes its pid file once it accepts connections. */
	int status = 0;
	bool exited = false, ready = false;
	for (int i = 0; i < 3000 && !ready; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			exited = true;
			break;
		}
		ready = is_file(pidfile);
		if (!ready)
			nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	if (ready) {
		if (sock)
			printf("nbd+unix:///?socket=%s\n", sock);
		else
			printf("nbd://127.0.0.1:%u\n", (unsigned)port);
		fflush(stdout);
	} else if (!exited) {
		fprintf(stderr, "cow serve: nbdkit did not start within 30 s; stopping it\n");
		kill(pid, SIGTERM);
	}
	while (!exited) {
		if (waitpid(pid, &status, 0) == pid)
			exited = true;
		else if (errno != EINTR)
			break;
	}
	child = -1;
	unlink(pidfile);
	if (sock && ready)
		unlink(sock); /* nbdkit leaves its socket behind */
	rmdir(dir);
	if (stop_signal && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return EXIT_OK;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return EXIT_FAIL;
	if (!ready || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "cow serve: nbdkit %s %d\n",
			WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
			WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
