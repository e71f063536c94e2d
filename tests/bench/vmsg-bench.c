// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmsg-bench: the small measurements of the bench (tests/bench/guest.sh),
 * timed with clock_gettime(CLOCK_MONOTONIC) inside the guest.
 *
 *   vmsg-bench pingpong pipe|eventfd CPU_A CPU_B ITERS
 *       1-byte (pipe) or 8-byte counter (eventfd) ping-pong between two
 *       threads pinned to CPU_A and CPU_B; prints the mean round trip in ns.
 *   vmsg-bench memcpy SIZE_KIB TOTAL_MIB
 *       copies a SIZE_KIB buffer until TOTAL_MIB are copied; prints MB/s.
 *   vmsg-bench readloop FILE ITERS
 *       open + read + close of FILE, ITERS times; prints ns per read.
 *   vmsg-bench rate FILE TOTAL_KIB BLOCK_KIB
 *       reads TOTAL_KIB from FILE in BLOCK_KIB reads; prints MB/s.
 *   vmsg-bench spawn-ready READY_FILE PROGRAM [ARGS...]
 *       starts PROGRAM (which must write READY_FILE when it is ready, as
 *       virtio-msg-backend --ready-file does), prints the ns from fork to
 *       the file's appearance, then waits for PROGRAM and exits 0 if it
 *       exited 0 (stop it by the pid in READY_FILE).
 *
 * Every figure is printed alone on stdout (one number); errors go to stderr
 * with exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "vmsg-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long arg_num(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *end || v < 0) {
		fprintf(stderr, "vmsg-bench: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

/* ---- ping-pong ---- */

struct pp {
	int eventfd;		/* 1: eventfd, 0: pipes */
	int ping[2];		/* pipe: a -> b; eventfd: [0] only */
	int pong[2];		/* pipe: b -> a; eventfd: [0] only */
	long iters;
	int cpu_b;
};

static void pp_send(int fd, int is_eventfd)
{
	uint64_t one = 1;
	ssize_t n;

	if (is_eventfd)
		n = write(fd, &one, sizeof(one));
	else
		n = write(fd, "x", 1);
	if (n < 0)
		die("write");
}

static void pp_recv(int fd, int is_eventfd)
{
	uint64_t v;
	ssize_t n;

	n = read(fd, &v, is_eventfd ? sizeof(v) : 1);
	if (n <= 0)
		die("read");
}

static void *pp_peer(void *arg)
{
	struct pp *p = arg;
	long i;

	pin_self(p->cpu_b);
	/* The untimed first round trip and ITERS timed ones. */
	for (i = 0; i <= p->iters; i++) {
		pp_recv(p->ping[0], p->eventfd);
		pp_send(p->eventfd ? p->pong[0] : p->pong[1], p->eventfd);
	}
	return NULL;
}

static int cmd_pingpong(int argc, char **argv)
{
	struct pp p = { 0 };
	pthread_t t;
	uint64_t t0, t1;
	int cpu_a;
	long i;

	if (argc != 6)
		return 2;
	p.eventfd = !strcmp(argv[2], "eventfd");
	if (!p.eventfd && strcmp(argv[2], "pipe"))
		return 2;
	cpu_a = (int)arg_num(argv[3]);
	p.cpu_b = (int)arg_num(argv[4]);
	p.iters = arg_num(argv[5]);
	if (p.eventfd) {
		p.ping[0] = eventfd(0, 0);
		p.pong[0] = eventfd(0, 0);
		if (p.ping[0] < 0 || p.pong[0] < 0)
			die("eventfd");
	} else if (pipe(p.ping) || pipe(p.pong)) {
		die("pipe");
	}
	pin_self(cpu_a);
	if (pthread_create(&t, NULL, pp_peer, &p))
		die("pthread_create");
	/* One untimed round trip: both threads are running and pinned. */
	pp_send(p.eventfd ? p.ping[0] : p.ping[1], p.eventfd);
	pp_recv(p.pong[0], p.eventfd);
	t0 = now_ns();
	for (i = 0; i < p.iters; i++) {
		pp_send(p.eventfd ? p.ping[0] : p.ping[1], p.eventfd);
		pp_recv(p.pong[0], p.eventfd);
	}
	t1 = now_ns();
	pthread_join(t, NULL);
	printf("%.0f\n", (double)(t1 - t0) / (double)p.iters);
	return 0;
}

/* ---- memcpy ---- */

static int cmd_memcpy(int argc, char **argv)
{
	size_t size, total, done = 0;
	uint64_t t0, t1;
	char *src, *dst;

	if (argc != 4)
		return 2;
	size = (size_t)arg_num(argv[2]) * 1024;
	total = (size_t)arg_num(argv[3]) * 1024 * 1024;
	if (!size || !total)
		return 2;
	src = malloc(size);
	dst = malloc(size);
	if (!src || !dst)
		die("malloc");
	memset(src, 0x5a, size);
	memset(dst, 0, size);
	t0 = now_ns();
	while (done < total) {
		memcpy(dst, src, size);
		/* The compiler must not drop or merge the copies. */
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		done += size;
	}
	t1 = now_ns();
	printf("%.1f\n", (double)done * 1000.0 / (double)(t1 - t0));
	free(src);
	free(dst);
	return 0;
}

/* ---- sysfs/file reads ---- */

static int cmd_readloop(int argc, char **argv)
{
	uint64_t t0, t1;
	char buf[256];
	long i, iters;
	int fd;

	if (argc != 4)
		return 2;
	iters = arg_num(argv[3]);
	if (!iters)
		return 2;
	t0 = now_ns();
	for (i = 0; i < iters; i++) {
		fd = open(argv[2], O_RDONLY);
		if (fd < 0)
			die(argv[2]);
		if (read(fd, buf, sizeof(buf)) < 0)
			die("read");
		close(fd);
	}
	t1 = now_ns();
	printf("%.0f\n", (double)(t1 - t0) / (double)iters);
	return 0;
}

static int cmd_rate(int argc, char **argv)
{
	size_t total, block, done = 0;
	uint64_t t0, t1;
	ssize_t n;
	char *buf;
	int fd;

	if (argc != 5)
		return 2;
	total = (size_t)arg_num(argv[3]) * 1024;
	block = (size_t)arg_num(argv[4]) * 1024;
	if (!total || !block)
		return 2;
	buf = malloc(block);
	if (!buf)
		die("malloc");
	fd = open(argv[2], O_RDONLY);
	if (fd < 0)
		die(argv[2]);
	t0 = now_ns();
	while (done < total) {
		n = read(fd, buf, block);
		if (n <= 0)
			die("read");
		done += (size_t)n;
	}
	t1 = now_ns();
	close(fd);
	free(buf);
	printf("%.3f\n", (double)done * 1000.0 / (double)(t1 - t0));
	return 0;
}

/* ---- start a program and time it to its ready file ---- */

static int cmd_spawn_ready(int argc, char **argv)
{
	char dir[PATH_MAX], *slash;
	const char *name;
	char ev[4096] __attribute__((aligned(8)));
	struct stat st;
	uint64_t t0, t1;
	int ifd, status;
	pid_t pid;

	if (argc < 4)
		return 2;
	if (snprintf(dir, sizeof(dir), "%s", argv[2]) >= (int)sizeof(dir))
		return 2;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 2;
	*slash = '\0';
	name = argv[2] + (slash - dir) + 1;
	unlink(argv[2]);
	ifd = inotify_init1(IN_CLOEXEC);
	if (ifd < 0)
		die("inotify_init1");
	if (inotify_add_watch(ifd, dir, IN_MOVED_TO | IN_CREATE) < 0)
		die(dir);
	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	for (;;) {
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		ssize_t n;
		char *p;

		if (poll(&pfd, 1, 200) < 0 && errno != EINTR)
			die("poll");
		if (pfd.revents & POLLIN) {
			n = read(ifd, ev, sizeof(ev));
			if (n < 0)
				die("read inotify");
			for (p = ev; p < ev + n;) {
				struct inotify_event *e = (struct inotify_event *)p;

				if (e->len && !strcmp(e->name, name))
					goto ready;
				p += sizeof(*e) + e->len;
			}
		}
		if (!stat(argv[2], &st))
			goto ready;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "vmsg-bench: %s exited before %s appeared\n",
				argv[3], argv[2]);
			return 1;
		}
	}
ready:
	t1 = now_ns();
	close(ifd);
	printf("%.0f\n", (double)(t1 - t0));
	fflush(stdout);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : 1;
}

int main(int argc, char **argv)
{
	int rc = 2;

	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "pingpong"))
		rc = cmd_pingpong(argc, argv);
	else if (!strcmp(argv[1], "memcpy"))
		rc = cmd_memcpy(argc, argv);
	else if (!strcmp(argv[1], "readloop"))
		rc = cmd_readloop(argc, argv);
	else if (!strcmp(argv[1], "rate"))
		rc = cmd_rate(argc, argv);
	else if (!strcmp(argv[1], "spawn-ready"))
		rc = cmd_spawn_ready(argc, argv);
	if (rc != 2)
		return rc;
usage:
	fprintf(stderr,
		"usage: vmsg-bench pingpong pipe|eventfd CPU_A CPU_B ITERS\n"
		"       vmsg-bench memcpy SIZE_KIB TOTAL_MIB\n"
		"       vmsg-bench readloop FILE ITERS\n"
		"       vmsg-bench rate FILE TOTAL_KIB BLOCK_KIB\n"
		"       vmsg-bench spawn-ready READY_FILE PROGRAM [ARGS...]\n");
	return 2;
}
