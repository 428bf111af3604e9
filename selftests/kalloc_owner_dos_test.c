// SPDX-License-Identifier: GPL-2.0
/*
 * kalloc_owner_dos_test: one user holding its own mmap_lock does not stall
 * another user's VMALLOC CREATE (module/owner.c).
 *
 * A VMALLOC CREATE has a worker subscribe the caller's mm to an
 * mmu_notifier, which needs the caller's mmap_lock for writing.  The
 * worker used to sleep on that lock in system_unbound_wq, and a process
 * that holds its own mmap_lock as long as it likes parked one kworker per
 * CREATE: past the workqueue's 512 at once, every other user's VMALLOC
 * CREATE waited behind them, in D state (an outside security review's
 * finding).  Now the worker only tries the lock, and the caller waits
 * killably.
 *
 * How the attacker (uid 1000) holds its own mmap_read_lock: it maps a file
 * of a FUSE file system whose server never answers READ and pread()s
 * /proc/self/mem at that address: access_remote_vm() takes mmap_read_lock
 * and faults the page in with GUP, which cannot drop the lock, and
 * filemap_fault() waits for the FUSE READ.
 *
 * As root in a kalloc-vm guest, with kalloc loaded:
 *   kalloc_owner_dos_test [NTHREADS]      (default 600)
 * 1. mounts a one-file FUSE file system (no libfuse) at /tmp/kalloc-dos-fuse,
 *    its server a child process that never answers READ;
 * 2. a uid 1000 child maps the file, starts a thread that preads
 *    /proc/self/mem there, then NTHREADS threads that each do a
 *    1-page VMALLOC CREATE;
 * 3. a uid 1001 child times one VMALLOC CREATE of its own (alarm 10 s).
 * Then aborts the FUSE connection, kills the children and unmounts.
 * Prints TAP: no kworker sleeps on the attacker's lock, and uid 1001's
 * CREATE completes within 5 s.  On the module before the fix: 512
 * kworkers in D state, uid 1001's CREATE still blocked after 12 s.
 * Skipped where the kernel has no FUSE.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/fuse.h>
#include <linux/kalloc.h>
#include "kalloc_test.h"

#define MNT		"/tmp/kalloc-dos-fuse"
#define FNAME		"file"
#define FILE_SIZE	(64 * 1024)
#define ATTACKER_UID	KT_USER_ID
#define VICTIM_UID	KT_OTHER_USER_ID
#define STACK_SIZE	(64 * 1024)
#define FILE_INO	2

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- FUSE */

static void fuse_attr_fill(struct fuse_attr *a, uint64_t ino)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->blksize = 4096;
	if (ino == FUSE_ROOT_ID) {
		a->mode = S_IFDIR | 0755;
		a->nlink = 2;
	} else {
		a->mode = S_IFREG | 0444;
		a->nlink = 1;
		a->size = FILE_SIZE;
		a->blocks = FILE_SIZE / 512;
	}
}

static void fuse_reply(int fd, uint64_t unique, int error, const void *arg,
		       size_t argsz)
{
	char buf[sizeof(struct fuse_out_header) + 512];
	struct fuse_out_header *out = (void *)buf;

	if (error)
		argsz = 0;
	out->len = sizeof(*out) + argsz;
	out->error = error;
	out->unique = unique;
	if (argsz)
		memcpy(buf + sizeof(*out), arg, argsz);
	if (write(fd, buf, out->len) < 0 && errno != ENOENT)
		fprintf(stderr, "fuse server: reply: %m\n");
}

/*
 * The server: one regular file FNAME of FILE_SIZE bytes in the root.
 * READ is never answered; the first one is announced on @notify.
 */
static void fuse_server(int fd, int notify)
{
	static char buf[1 << 20];
	bool told = false;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct fuse_in_header *in = (void *)buf;
		void *arg = buf + sizeof(*in);

		if (n < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			/* ENODEV: aborted or unmounted */
			_exit(0);
		}
		if ((size_t)n < sizeof(*in))
			continue;
		switch (in->opcode) {
		case FUSE_INIT: {
			struct fuse_init_in *ii = arg;
			struct fuse_init_out io = { 0 };

			io.major = FUSE_KERNEL_VERSION;
			io.minor = ii->minor < FUSE_KERNEL_MINOR_VERSION ?
				   ii->minor : FUSE_KERNEL_MINOR_VERSION;
			io.max_readahead = ii->max_readahead;
			io.max_write = 65536;
			io.max_background = 16;
			io.congestion_threshold = 12;
			fuse_reply(fd, in->unique, 0, &io, sizeof(io));
			break;
		}
		case FUSE_LOOKUP: {
			struct fuse_entry_out eo = { 0 };

			if (in->nodeid != FUSE_ROOT_ID || strcmp(arg, FNAME)) {
				fuse_reply(fd, in->unique, -ENOENT, NULL, 0);
				break;
			}
			eo.nodeid = FILE_INO;
			eo.generation = 1;
			eo.entry_valid = 3600;
			eo.attr_valid = 3600;
			fuse_attr_fill(&eo.attr, FILE_INO);
			fuse_reply(fd, in->unique, 0, &eo, sizeof(eo));
			break;
		}
		case FUSE_GETATTR: {
			struct fuse_attr_out ao = { 0 };

			if (in->nodeid != FUSE_ROOT_ID && in->nodeid != FILE_INO) {
				fuse_reply(fd, in->unique, -ENOENT, NULL, 0);
				break;
			}
			ao.attr_valid = 3600;
			fuse_attr_fill(&ao.attr, in->nodeid);
			fuse_reply(fd, in->unique, 0, &ao, sizeof(ao));
			break;
		}
		case FUSE_OPEN:
		case FUSE_OPENDIR: {
			struct fuse_open_out oo = { 0 };

			oo.fh = 1;
			fuse_reply(fd, in->unique, 0, &oo, sizeof(oo));
			break;
		}
		case FUSE_READ:
			/* never answered: the fault that waits for it holds mmap_lock */
			if (!told) {
				told = true;
				if (write(notify, "R", 1) != 1)
					fprintf(stderr, "fuse server: notify: %m\n");
			}
			break;
		case FUSE_FLUSH:
		case FUSE_RELEASE:
		case FUSE_RELEASEDIR:
			fuse_reply(fd, in->unique, 0, NULL, 0);
			break;
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break;		/* no reply */
		default:
			fuse_reply(fd, in->unique, -ENOSYS, NULL, 0);
			break;
		}
	}
}

/* ----------------------------------------------------------- privileges */

/* Become @uid for good, a member of the device's group (kt_become()). */
static int become(uid_t uid)
{
	int err = kt_become(uid, true);

	/* a uid change clears dumpable, which makes /proc/self/mem root's */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return err;
}

static int vmalloc_create(int fd, struct kalloc_create *c)
{
	return kt_create(fd, 4096, KALLOC_BACKING_VMALLOC, 0, KALLOC_NODE_LOCAL, c);
}

/* ------------------------------------------------------------ attacker */

static int kfd = -1;
static int memfd = -1;
static const char *fmap;
static pthread_barrier_t go;
static volatile int created_ok, created_err;

static void *pread_thread(void *unused)
{
	char b[64];
	ssize_t n;

	(void)unused;
	/* blocks in filemap_fault under mmap_read_lock until the READ is answered */
	n = pread(memfd, b, sizeof(b), (off_t)(uintptr_t)fmap);
	fprintf(stderr, "attacker: pread of /proc/self/mem returned %zd (%s)\n",
		n, n < 0 ? strerror(errno) : "ok");
	return NULL;
}

static void *create_thread(void *unused)
{
	struct kalloc_create c;

	(void)unused;
	pthread_barrier_wait(&go);
	if (vmalloc_create(kfd, &c))
		__sync_fetch_and_add(&created_err, 1);
	else
		__sync_fetch_and_add(&created_ok, 1);
	return NULL;
}

/*
 * uid 1000: everything this process touches after the threads start is
 * faulted in beforehand, since once a kworker waits for mmap_write_lock
 * our own mmap_lock readers (faults on 6.1, mmap for thread stacks) would
 * queue behind it.
 */
static void attacker(int nthreads, int read_seen, int ready)
{
	pthread_attr_t attr;
	pthread_t reader;
	struct pollfd p = { .fd = read_seen, .events = POLLIN };
	char *stacks;
	int ffd, i, err;
	char c;

	err = become(ATTACKER_UID);
	if (err) {
		fprintf(stderr, "attacker: become uid %d: %s\n", ATTACKER_UID, strerror(-err));
		_exit(2);
	}
	kfd = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
	ffd = open(MNT "/" FNAME, O_RDONLY | O_CLOEXEC);
	memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (kfd < 0 || ffd < 0 || memfd < 0) {
		fprintf(stderr, "attacker: open: kalloc %d fuse file %d /proc/self/mem %d: %m\n",
			kfd, ffd, memfd);
		_exit(2);
	}
	fmap = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, ffd, 0);
	if (fmap == MAP_FAILED) {
		perror("attacker: mmap of the FUSE file");
		_exit(2);
	}
	stacks = mmap(NULL, (size_t)nthreads * STACK_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (stacks == MAP_FAILED) {
		perror("attacker: mmap stacks");
		_exit(2);
	}
	pthread_barrier_init(&go, NULL, nthreads + 1);
	pthread_attr_init(&attr);
	for (i = 0; i < nthreads; i++) {
		pthread_t t;

		pthread_attr_setstack(&attr, stacks + (size_t)i * STACK_SIZE, STACK_SIZE);
		err = pthread_create(&t, &attr, create_thread, NULL);
		if (err) {
			fprintf(stderr, "attacker: thread %d: %s\n", i, strerror(err));
			_exit(2);
		}
	}
	err = pthread_create(&reader, NULL, pread_thread, NULL);
	if (err) {
		fprintf(stderr, "attacker: pread thread: %s\n", strerror(err));
		_exit(2);
	}
	/* the FUSE server tells us when the READ arrived: the fault waits now */
	if (poll(&p, 1, 10000) != 1 || read(read_seen, &c, 1) != 1) {
		fprintf(stderr, "attacker: the FUSE READ never came\n");
		_exit(2);
	}
	usleep(200000);
	fprintf(stderr, "attacker (uid %d): pread of /proc/self/mem blocked on the FUSE READ; "
		"starting %d VMALLOC CREATEs\n", getuid(), nthreads);
	pthread_barrier_wait(&go);
	if (write(ready, "A", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

/* -------------------------------------------------------------- victim */

static void on_alarm(int sig)
{
	(void)sig;
}

static void victim(int result)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct kalloc_create c;
	char msg[128];
	double t0, t;
	int fd, err;

	err = become(VICTIM_UID);
	fd = err ? -1 : open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "setup %s", strerror(err ? -err : errno));
		if (write(result, msg, strlen(msg) + 1) < 0)
			_exit(2);
		_exit(2);
	}
	sigaction(SIGALRM, &sa, NULL);	/* no SA_RESTART: EINTR if it can */
	alarm(10);
	t0 = now();
	err = vmalloc_create(fd, &c);
	t = now() - t0;
	alarm(0);
	snprintf(msg, sizeof(msg), "done %d %.3f", err, t);
	if (write(result, msg, strlen(msg) + 1) < 0)
		_exit(2);
	_exit(0);
}

/* ---------------------------------------------------------- diagnostics */

/* Count tasks in D state: kworkers, and threads of @pid. */
static void count_blocked(pid_t pid, int *kworkers, int *threads, char *wchan, size_t wsz)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], buf[512];

	*kworkers = *threads = 0;
	wchan[0] = 0;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char *comm, *end;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		comm = strchr(buf, '(');
		end = strrchr(buf, ')');
		if (!comm || !end || end[1] != ' ' || end[2] != 'D')
			continue;
		if (!strncmp(comm + 1, "kworker/u", 9)) {
			(*kworkers)++;
			if (!wchan[0]) {
				snprintf(path, sizeof(path), "/proc/%s/stack", e->d_name);
				f = fopen(path, "r");
				if (f) {
					size_t n = fread(wchan, 1, wsz - 1, f);

					wchan[n] = 0;
					fclose(f);
				}
			}
		}
	}
	closedir(d);
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		FILE *f;
		char *end;

		if (e->d_name[0] == '.')
			continue;
		snprintf(buf, sizeof(buf), "/proc/%d/task/%s/stat", pid, e->d_name);
		f = fopen(buf, "r");
		if (!f)
			continue;
		end = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		if (end && end[1] == ' ' && end[2] == 'D')
			(*threads)++;
		fclose(f);
	}
	closedir(d);
}

/* Abort the FUSE connection of MNT through fusectl; 0 or -errno. */
static int fuse_abort(dev_t dev)
{
	char path[96];
	int fd;

	mkdir("/sys/fs/fuse/connections", 0755);
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", minor(dev));
	if (access(path, F_OK))
		mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

/* ----------------------------------------------------------------- main */

/* TAP: text of several lines, each as a comment. */
static void print_comment(const char *what, const char *text)
{
	printf("# %s:\n", what);
	for (const char *l = text; *l;) {
		const char *e = strchr(l, '\n');
		int n = e ? (int)(e - l) : (int)strlen(l);

		printf("#   %.*s\n", n, l);
		l += n + (e ? 1 : 0);
	}
}

static int setup_failed(const char *what)
{
	printf("not ok 1 - setup: %s\nnot ok 2 - setup: %s\n", what, what);
	return 1;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 600;
	int read_seen[2], ready[2], result[2];
	pid_t server, att, vic;
	char opts[256], msg[128] = "", stack[2048];
	struct pollfd p;
	struct stat st;
	int fuse, kworkers, threads, status, verdict = 2, err;
	bool kworkers_ok = false;
	double t0, waited;
	char c;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (nthreads < 1) {
		fprintf(stderr, "usage: %s [NTHREADS]\n", argv[0]);
		return 2;
	}
	printf("TAP version 13\n1..2\n");
	if (geteuid()) {
		printf("ok 1 # SKIP needs root\nok 2 # SKIP needs root\n");
		return 0;
	}
	/* 6.12 builds FUSE in, 6.1 as a module */
	if (access("/dev/fuse", F_OK) && system("modprobe fuse 2>/dev/null") == -1)
		perror("modprobe");
	if (access("/dev/fuse", F_OK)) {
		printf("ok 1 # SKIP no FUSE in this kernel\nok 2 # SKIP no FUSE in this kernel\n");
		return 0;
	}
	if (kt_device_group() || chmod(KALLOC_DEVICE, 0660)) {
		perror(KALLOC_DEVICE);
		return setup_failed(KALLOC_DEVICE);
	}
	if (pipe(read_seen) || pipe(ready) || pipe(result)) {
		perror("pipe");
		return setup_failed("pipe");
	}

	/* 1. the FUSE file system */
	fuse = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fuse < 0) {
		perror("/dev/fuse");
		return setup_failed("/dev/fuse");
	}
	mkdir(MNT, 0755);
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions",
		 fuse);
	if (mount("kalloc-dos", MNT, "fuse", MS_NOSUID | MS_NODEV, opts)) {
		perror("mount fuse");
		return setup_failed("mount fuse");
	}
	server = fork();
	if (server == 0) {
		fuse_server(fuse, read_seen[1]);
		_exit(0);
	}
	close(fuse);
	if (stat(MNT "/" FNAME, &st) || st.st_size != FILE_SIZE) {
		perror("stat " MNT "/" FNAME);
		goto cleanup_mount;
	}
	stat(MNT, &st);
	printf("# FUSE mounted at %s (connection %u), %s is %d bytes; READ is never answered\n",
	       MNT, minor(st.st_dev), FNAME, FILE_SIZE);

	/* 2. the attacker */
	att = fork();
	if (att == 0)
		attacker(nthreads, read_seen[0], ready[1]);
	p = (struct pollfd){ .fd = ready[0], .events = POLLIN };
	if (poll(&p, 1, 30000) != 1 || read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "the attacker did not get going\n");
		goto cleanup;
	}
	sleep(3);
	count_blocked(att, &kworkers, &threads, stack, sizeof(stack));
	printf("# after 3 s: %d kworker/u* in D state, %d of the attacker's threads waiting\n",
	       kworkers, threads);
	if (stack[0])
		print_comment("stack of one such kworker", stack);
	/* A few may sleep for other reasons; 512 did, one per CREATE. */
	printf("%sok 1 - no kworker sleeps on the attacker's mmap_lock (%d in D state)\n",
	       kworkers < 16 ? "" : "not ", kworkers);
	kworkers_ok = kworkers < 16;

	/* 3. the victim */
	vic = fork();
	if (vic == 0)
		victim(result[1]);
	t0 = now();
	p = (struct pollfd){ .fd = result[0], .events = POLLIN };
	if (poll(&p, 1, 12000) == 1 && read(result[0], msg, sizeof(msg)) > 0) {
		double t = 0;

		if (sscanf(msg, "done %d %lf", &err, &t) == 2) {
			printf("# uid %d: VMALLOC CREATE returned %d (%s) after %.3f s\n",
			       VICTIM_UID, err, err ? strerror(-err) : "ok", t);
			verdict = err == 0 && t <= 5.0 ? 0 : 1;
		} else {
			printf("# victim: %s\n", msg);
		}
	} else {
		printf("# uid %d: VMALLOC CREATE still blocked after %.1f s\n",
		       VICTIM_UID, now() - t0);
		snprintf(stack, sizeof(stack), "/proc/%d/stack", vic);
		FILE *f = fopen(stack, "r");

		if (f) {
			size_t n = fread(stack, 1, sizeof(stack) - 1, f);

			stack[n] = 0;
			fclose(f);
			print_comment("its stack", stack);
		}
		verdict = 1;
	}

cleanup:
	/* abort FUSE: the READ fails, the pread lets go of mmap_lock */
	stat(MNT, &st);
	err = fuse_abort(st.st_dev);
	if (err)
		printf("# fusectl abort: %s; killing the server instead\n", strerror(-err));
	kill(server, SIGKILL);
	if (verdict == 1 && !msg[0]) {
		/* did the blocked CREATE come back once the lock was free? */
		waited = now();
		p = (struct pollfd){ .fd = result[0], .events = POLLIN };
		if (poll(&p, 1, 30000) == 1 && read(result[0], msg, sizeof(msg)) > 0)
			printf("# after the abort, %.1f s later: victim reports \"%s\"\n",
			       now() - waited, msg);
		else
			printf("# victim still blocked 30 s after the abort\n");
	}
	if (att > 0) {
		kill(att, SIGKILL);
		waited = now();
		waitpid(att, &status, 0);
		printf("# attacker reaped %.1f s after SIGKILL\n", now() - waited);
	}
cleanup_mount:
	kill(server, SIGKILL);
	waitpid(server, &status, 0);
	if (umount2(MNT, MNT_DETACH))
		perror("umount " MNT);
	rmdir(MNT);
	while (waitpid(-1, &status, 0) > 0)
		;
	if (verdict == 2 && !kworkers_ok)
		printf("not ok 1 - the attacker's side did not get going\n");
	printf("%sok 2 - uid %d's VMALLOC CREATE completes while uid %d holds its mmap_lock%s\n",
	       verdict == 0 ? "" : "not ", VICTIM_UID, ATTACKER_UID,
	       verdict == 2 ? " (setup failed)" : "");
	return verdict == 0 && kworkers_ok ? 0 : 1;
}
