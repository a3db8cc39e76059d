/*
 * cow serve: a volume, snapshot or clone as an NBD disk. Runs nbdkit with
 * nbdkit-cow-plugin (plugins/nbdkit/) in the foreground, prints the URI once
 * nbdkit is listening, and stops it cleanly on SIGINT, SIGTERM or SIGHUP
 * (the plugin then commits what it still caches). All of the command is in
 * this file; main.c only lists cli_serve_cmds.
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

static int cmd_serve(int argc, char **argv)
{
	const char *name = NULL, *sock = NULL, *cache = NULL;
	uint64_t port = 0;
	bool readonly = false, verbose = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--socket") == 0 && i + 1 < argc) {
			sock = argv[++i];
		} else if (strcmp(a, "--port") == 0 && i + 1 < argc) {
			if (!cli_arg_num("serve", "--port", argv[++i], CLI_NUM_COUNT, 1, 65535,
					 &port))
				return EXIT_USAGE;
		} else if (strcmp(a, "--cache") == 0 && i + 1 < argc) {
			uint64_t v;
			if (!cli_arg_num("serve", "--cache", argv[++i], CLI_NUM_BYTES, 4096,
					 UINT64_C(1) << 34, &v))
				return EXIT_USAGE;
			cache = argv[i];
		} else if (strcmp(a, "--readonly") == 0 || strcmp(a, "-r") == 0) {
			readonly = true;
		} else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			verbose = true;
		} else if (a[0] == '-' && a[1]) {
			return cli_usage("serve", "unknown option '%s'", a);
		} else if (!name) {
			name = a;
		} else {
			return cli_usage("serve", "too many arguments");
		}
	}
	if (!name)
		return cli_usage("serve", "expected: cow serve VOLUME [--socket PATH | --port N]");
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

const struct cli_cmd cli_serve_cmds[] = {
	{"serve", cmd_serve, "VOLUME [--socket PATH | --port N] [--readonly] [--cache SIZE]",
	 "serve a volume, snapshot or clone over NBD (nbdkit) until interrupted",
	 "Runs nbdkit with nbdkit-cow-plugin in the foreground and prints the URI\n"
	 "(nbd+unix:///?socket=PATH, or nbd://127.0.0.1:N with --port) once it\n"
	 "listens. Without --socket or --port the socket is in a new folder under\n"
	 "/tmp. A snapshot (NAME@SNAP) is served read-only. SIGINT or SIGTERM stop\n"
	 "nbdkit cleanly. Writes between flushes are cached (--cache, default 16M)\n"
	 "and committed at each flush or FUA write: a flushed write is durable.\n"
	 "Use it from QEMU as -drive file=nbd+unix:///?socket=PATH,format=raw.\n"
	 "$COW_NBDKIT_PLUGIN names the plugin, $COW_NBDKIT the nbdkit binary.\n"},
	{NULL, NULL, NULL, NULL, NULL},
};
