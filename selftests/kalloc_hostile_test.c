// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile users: an unprivileged user (uid 1000) shares the machine with
 * root.  The device node is root's, mode 0660: a member of its group opens
 * it, anyone else gets EACCES and liballoc falls back to anonymous memory.
 * A member must not see root's rows in /proc/kalloc (its own it sees),
 * must not reach another process's regions by guessing ids or offsets
 * (INFO, RELEASE, DESTROY: ENOENT; mmap: EINVAL), not even through a file
 * it inherited, must not pass max_pages or max_region_pages nor change
 * them, and every page it first sees is zero: fresh, after RELEASE, and
 * after root filled pages with a pattern and freed them.
 *
 * The tests start as root (the harness runs each in a child of its own)
 * and drop to uid 1000 with setresuid, as a member of the device's group
 * unless the test is about a non-member; what root must do first or keep
 * doing meanwhile happens before the drop or in a root "holder" child.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

#define USER_ID		KT_USER_ID
#define HOLD_PAGES	64UL

static unsigned char pattern(unsigned long i)
{
	return (unsigned char)(0xa5 ^ (i * 7) ^ (i >> 12));
}

/* Become uid/gid 1000 for good, a member of the device's group; 0 or -errno. */
static int drop_privileges(void)
{
	return kt_become(USER_ID, true);
}

/*
 * A root process that holds regions: it creates @n regions of HOLD_PAGES
 * (VMALLOC and PAGES in turn), maps them, fills them with the pattern,
 * writes its region ids to the pipe and waits for a byte.  Then it checks
 * that its data, resident counts and release counts are unchanged and
 * exits 0 if so.
 */
struct holder {
	pid_t pid;
	int go;			/* write a byte here to let it check and exit */
	int n;
	unsigned int ids[8];
};

static int holder_body(int n, int ready, int go)
{
	struct kalloc_create c[8];
	struct kalloc_info info;
	unsigned char *p[8];
	char byte;
	int fd = kt_open();

	if (fd < 0)
		return 2;
	for (int i = 0; i < n; i++) {
		if (kt_create(fd, HOLD_PAGES * KT_PAGE,
			      i & 1 ? KALLOC_BACKING_PAGES : KALLOC_BACKING_VMALLOC,
			      0, -1, &c[i]))
			return 3;
		p[i] = kt_map(fd, &c[i], 0);
		if (p[i] == MAP_FAILED)
			return 4;
		for (unsigned long j = 0; j < HOLD_PAGES * KT_PAGE; j++)
			p[i][j] = pattern(j);
		if (write(ready, &c[i].id, sizeof(c[i].id)) != sizeof(c[i].id))
			return 5;
	}
	if (read(go, &byte, 1) != 1)
		return 6;
	for (int i = 0; i < n; i++) {
		for (unsigned long j = 0; j < HOLD_PAGES * KT_PAGE; j++)
			if (p[i][j] != pattern(j))
				return 10 + i;	/* data changed */
		if (kt_info(fd, c[i].id, &info) || info.resident != HOLD_PAGES ||
		    info.releases != 0)
			return 20 + i;		/* released or gone */
	}
	return 0;
}

static int holder_start(struct holder *h, int n)
{
	int ready[2], go[2];

	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -errno;
	h->n = n;
	h->pid = fork();
	if (h->pid < 0)
		return -errno;
	if (h->pid == 0) {
		close(ready[0]);
		close(go[1]);
		_exit(holder_body(n, ready[1], go[0]));
	}
	close(ready[1]);
	close(go[0]);
	h->go = go[1];
	for (int i = 0; i < n; i++)
		if (read(ready[0], &h->ids[i], sizeof(h->ids[i])) != sizeof(h->ids[i]))
			return -EIO;
	close(ready[0]);
	return 0;
}

/* Let the holder check its regions: its exit status, 0 if all intact. */
static int holder_finish(struct holder *h)
{
	int status;

	if (write(h->go, "x", 1) != 1)
		return -1;
	close(h->go);
	if (waitpid(h->pid, &status, 0) != h->pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Does /proc/kalloc show any row of process @pid? */
static int proc_has_pid(int pid)
{
	struct kt_row row;

	if (access(KALLOC_PROC, R_OK))
		return -1;	/* unreadable must not pass for "not shown" */
	return kt_proc_row(0, pid, &row) == 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

FIXTURE(hostile) {
	int dummy;
};

FIXTURE_SETUP(hostile)
{
	if (getuid() != 0)
		SKIP(return, "must start as root to drop to uid %d", USER_ID);
	ASSERT_EQ(0, kt_device_group());
	ASSERT_EQ(0, kt_param("max_pages")) TH_LOG("a limit left set by someone");
	ASSERT_EQ(0, kt_param("max_region_pages"));
}

FIXTURE_TEARDOWN_PARENT(hostile)
{
	EXPECT_EQ(0, kt_set_param("max_pages", 0));
	EXPECT_EQ(0, kt_set_param("max_region_pages", 0));
}

TEST_F(hostile, device_node_is_root_0660_and_a_member_opens_it)
{
	struct stat st;

	ASSERT_EQ(0, stat(KALLOC_DEVICE, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0, (int)st.st_uid);
	EXPECT_EQ(0660, (int)(st.st_mode & 07777))
		TH_LOG("mode %#o: the module must not open the node to everyone",
		       st.st_mode & 07777);
	ASSERT_EQ(0, stat(KALLOC_PROC, &st));
	EXPECT_EQ(0444, (int)(st.st_mode & 07777));
	ASSERT_EQ(0, drop_privileges());
	EXPECT_LE(0, kt_open()) TH_LOG("uid %d in group %d cannot open " KALLOC_DEVICE,
				       USER_ID, KT_DEVICE_GID);
	EXPECT_EQ(-1, open(KALLOC_PROC, O_WRONLY));
	EXPECT_EQ(EACCES, errno);
}

/*
 * The path of liballoc.so next to these tests (selftests/build/X ->
 * lib/liballoc.so), or "" if it is not built.
 */
static void liballoc_path(char *path, size_t len)
{
	char exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	path[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');		/* .../selftests/build/X */
	if (!slash)
		return;
	*slash = '\0';
	snprintf(path, len, "%s/../../lib/liballoc.so", exe);
	if (access(path, R_OK))
		path[0] = '\0';
}

/*
 * Not a member: open() is EACCES, and a program under liballoc (the shell,
 * with LD_PRELOAD) still runs, on anonymous memory, saying why.
 */
TEST_F(hostile, non_member_gets_eacces_and_liballoc_falls_back)
{
	char lib[600], preload[640], out[1024];
	int pipefd[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	ASSERT_EQ(0, kt_become(USER_ID, false));
	EXPECT_EQ(-1, kt_open()) TH_LOG("uid %d outside the group opened " KALLOC_DEVICE,
					USER_ID);
	EXPECT_EQ(EACCES, errno);

	liballoc_path(lib, sizeof(lib));
	if (!lib[0])
		SKIP(return, "lib/liballoc.so is not built (make lib)");
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *const argv[] = { "sh", "-c", "echo ran", NULL };
		char *const envp[] = { preload, "KALLOC_BACKEND=auto", "PATH=/usr/bin:/bin", NULL };

		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = '\0';
	close(pipefd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("the program under liballoc failed: %s", out);
	EXPECT_NE(NULL, strstr(out, "ran")) TH_LOG("output: %s", out);
	EXPECT_NE(NULL, strstr(out, "(Permission denied); using anonymous memory"))
		TH_LOG("liballoc did not say it fell back on EACCES: %s", out);
}

TEST_F(hostile, proc_shows_own_rows_only)
{
	struct kalloc_create c;
	struct holder h;
	struct kt_row row;
	int fd;

	ASSERT_EQ(0, holder_start(&h, 1));
	/* root sees the holder's row */
	EXPECT_EQ(1, proc_has_pid(h.pid));
	ASSERT_EQ(0, drop_privileges());
	fd = kt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, 4 * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &c));
	EXPECT_EQ(0, kt_proc_row(c.id, getpid(), &row)) TH_LOG("own row invisible");
	EXPECT_EQ(0, proc_has_pid(h.pid)) TH_LOG("root's row visible to uid %d", USER_ID);
	/* the totals are everyone's: they count root's region too */
	EXPECT_LE(2, kt_proc_total("regions"));
	EXPECT_EQ(0, holder_finish(&h));
}

/*
 * A row's pid is the one the reader's /proc gives the owner: a process
 * alone in a pid namespace of its own, reading a /proc mounted for it,
 * finds its region under pid 1, and the machine's /proc shows it under
 * the pid the machine gives it.  Before, every reader saw the initial
 * namespace's number, a container's processes included (an outside
 * review's finding).
 */
TEST_F(hostile, proc_pid_is_the_readers_namespaces)
{
	int to_parent[2], to_child[2], status;
	struct kalloc_create c;
	struct kt_row row;
	unsigned int id;
	pid_t child;
	char ok = 0;

	if (unshare(CLONE_NEWPID))	/* for the child: this one stays where it is */
		SKIP(return, "unshare(CLONE_NEWPID): %s", strerror(errno));
	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(to_child));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		int fd;

		/* pid 1 here; a /proc of this namespace, seen by no one else */
		if (getpid() != 1 || unshare(CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("proc", "/proc", "proc", 0, NULL))
			_exit(2);
		fd = kt_open();
		if (fd < 0 || kt_create(fd, 4 * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &c))
			_exit(3);
		if (kt_proc_row(c.id, 1, &row))
			_exit(4);	/* not under its own pid */
		if (write(to_parent[1], &c.id, sizeof(c.id)) != sizeof(c.id) ||
		    read(to_child[0], &ok, 1) != 1)
			_exit(5);
		_exit(0);
	}
	close(to_parent[1]);
	close(to_child[0]);
	/* the machine's /proc: the child's pid there */
	if (read(to_parent[0], &id, sizeof(id)) == sizeof(id)) {
		EXPECT_EQ(0, kt_proc_row(id, child, &row))
			TH_LOG("no row of region %u under pid %d", id, child);
		EXPECT_EQ(1, write(to_child[1], &ok, 1));
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child: status %#x (2 setup, 3 create, 4 its row not under pid 1)", status);
}

TEST_F(hostile, guessed_ids_and_offsets_reach_nothing)
{
	static const unsigned int edge_ids[] = {
		0, 1, 2, 3, 4, 5, 100, 1000, 0x7fffff, 0x800000, 0xffffff,
		0x7fffffff, 0x80000000, 0xffffffff,
	};
	struct kalloc_create own;
	struct kalloc_info info;
	struct holder h;
	int fd;

	ASSERT_EQ(0, holder_start(&h, 4));
	ASSERT_EQ(0, drop_privileges());
	fd = kt_open();
	ASSERT_LE(0, fd);
	/* before it has regions of its own, every id and offset is nothing */
	for (unsigned int id = 0; id < 64; id++) {
		EXPECT_EQ(-ENOENT, kt_info(fd, id, &info)) TH_LOG("INFO id %u", id);
		EXPECT_EQ(-ENOENT, kt_release(fd, id, 0, KT_PAGE)) TH_LOG("RELEASE id %u", id);
		EXPECT_EQ(-ENOENT, kt_destroy(fd, id)) TH_LOG("DESTROY id %u", id);
		EXPECT_EQ(MAP_FAILED, mmap(NULL, KT_PAGE, PROT_READ | PROT_WRITE,
					   MAP_SHARED, fd,
					   (off_t)id << KALLOC_REGION_WINDOW_SHIFT));
		EXPECT_EQ(EINVAL, errno) TH_LOG("mmap of id %u", id);
	}
	for (size_t i = 0; i < sizeof(edge_ids) / sizeof(edge_ids[0]); i++) {
		EXPECT_EQ(-ENOENT, kt_info(fd, edge_ids[i], &info));
		EXPECT_EQ(-ENOENT, kt_release(fd, edge_ids[i], 0, KT_PAGE));
		EXPECT_EQ(-ENOENT, kt_destroy(fd, edge_ids[i]));
	}
	/* with one region: its id works, the holder's ids (1..4) do not */
	ASSERT_EQ(0, kt_create(fd, HOLD_PAGES * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &own));
	EXPECT_EQ(1U, own.id);
	EXPECT_EQ(0, kt_info(fd, own.id, &info));
	EXPECT_EQ(0U, info.resident);
	for (int i = 0; i < h.n; i++) {
		unsigned int id = h.ids[i];

		if (id == own.id)
			continue;
		EXPECT_EQ(-ENOENT, kt_info(fd, id, &info)) TH_LOG("holder's id %u", id);
		EXPECT_EQ(-ENOENT, kt_release(fd, id, 0, HOLD_PAGES * KT_PAGE));
		EXPECT_EQ(MAP_FAILED, mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, fd,
					   (off_t)id << KALLOC_REGION_WINDOW_SHIFT));
	}
	/* offsets past its own region's end, in its window and beyond */
	for (unsigned long pg = HOLD_PAGES; pg < HOLD_PAGES + 8; pg++) {
		EXPECT_EQ(MAP_FAILED, mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, fd,
					   own.offset + pg * KT_PAGE));
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(MAP_FAILED, mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, fd,
				   own.offset + (1ULL << KALLOC_REGION_WINDOW_SHIFT) - KT_PAGE));
	/* its own region, mapped, reads zero */
	{
		unsigned char *p = kt_map(fd, &own, 0);

		ASSERT_NE(MAP_FAILED, p);
		EXPECT_TRUE(all_zero(p, HOLD_PAGES * KT_PAGE));
		munmap(p, HOLD_PAGES * KT_PAGE);
	}
	/* nor through the holder's process: its fds, memory, address space */
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/fd/3", h.pid);
		EXPECT_EQ(-1, open(path, O_RDWR));
		snprintf(path, sizeof(path), "/proc/%d/mem", h.pid);
		EXPECT_EQ(-1, open(path, O_RDONLY));
	}
	EXPECT_EQ(0, holder_finish(&h)) TH_LOG("the holder's regions were touched");
}

/* A file inherited from root: the ids still name the caller's regions. */
TEST_F(hostile, inherited_file_does_not_reach_parent_regions)
{
	struct kalloc_create mapped, unmapped;
	struct kalloc_info info;
	unsigned char *p;
	int fd, status;
	pid_t pid;

	fd = kt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, HOLD_PAGES * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &mapped));
	ASSERT_EQ(0, kt_create(fd, HOLD_PAGES * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &unmapped));
	p = kt_map(fd, &mapped, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, HOLD_PAGES * KT_PAGE);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		void *q;

		if (drop_privileges())
			_exit(1);
		/* not mapped at the fork: still root's, so not the child's */
		if (kt_info(fd, unmapped.id, &info) != -ENOENT ||
		    kt_release(fd, unmapped.id, 0, KT_PAGE) != -ENOENT ||
		    kt_destroy(fd, unmapped.id) != -ENOENT)
			_exit(2);
		q = mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, fd, unmapped.offset);
		if (q != MAP_FAILED || errno != EINVAL)
			_exit(3);
		/* mapped at the fork: its own copy, which it may release */
		if (kt_release(fd, mapped.id, 0, HOLD_PAGES * KT_PAGE) ||
		    !all_zero(p, HOLD_PAGES * KT_PAGE))
			_exit(4);
		memset(p, 0x77, HOLD_PAGES * KT_PAGE);
		if (kt_destroy(fd, mapped.id))
			_exit(5);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("child as uid %d: step %d", USER_ID, WEXITSTATUS(status));
	for (unsigned long i = 0; i < HOLD_PAGES * KT_PAGE; i++)
		if (p[i] != 0x5a) {
			EXPECT_EQ(0x5a, p[i]) TH_LOG("byte %lu", i);
			break;
		}
	EXPECT_EQ(0, kt_info(fd, mapped.id, &info));
	EXPECT_EQ(HOLD_PAGES, info.resident);
	EXPECT_EQ(0U, info.releases);
	EXPECT_EQ(0, kt_info(fd, unmapped.id, &info));
	EXPECT_EQ(0U, info.releases);
}

/*
 * A root parent that cleared VM_WIPEONFORK with MADV_KEEPONFORK forks a
 * child that drops to uid 1000: the child's writes must still stay in the
 * child (the ABI: each side's copy is private).
 */
TEST_F(hostile, child_cannot_write_parent_after_keeponfork)
{
	struct kalloc_create c;
	unsigned char *p;
	int fd, status, keep;
	pid_t pid;

	fd = kt_open();
	ASSERT_LE(0, fd);
	for (keep = 0; keep < 2; keep++) {
		ASSERT_EQ(0, kt_create(fd, HOLD_PAGES * KT_PAGE, KALLOC_BACKING_PAGES,
				       0, -1, &c));
		p = kt_map(fd, &c, 0);
		ASSERT_NE(MAP_FAILED, p);
		memset(p, 0x11, HOLD_PAGES * KT_PAGE);
		if (keep)
			ASSERT_EQ(0, madvise(p, HOLD_PAGES * KT_PAGE, MADV_KEEPONFORK));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			if (drop_privileges())
				_exit(1);
			memset(p, 0x66, HOLD_PAGES * KT_PAGE);
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_EQ(0, status);
		EXPECT_EQ(0x11, p[0]) TH_LOG("%s: the uid %d child wrote into root's memory",
					     keep ? "MADV_KEEPONFORK" : "plain fork", USER_ID);
		EXPECT_EQ(0x11, p[HOLD_PAGES * KT_PAGE - 1]);
		munmap(p, HOLD_PAGES * KT_PAGE);
		kt_destroy(fd, c.id);
	}
}

static sigjmp_buf bus_jb;

static void on_bus(int sig)
{
	siglongjmp(bus_jb, sig);
}

TEST_F(hostile, limits_hold_and_cannot_be_changed)
{
	long resident = kt_proc_total("resident_vmalloc") + kt_proc_total("resident_pages");
	struct kalloc_create c;
	volatile unsigned long touched = 0;
	unsigned char *p;
	int fd;

	ASSERT_EQ(0, kt_set_param("max_region_pages", 256));
	ASSERT_EQ(0, kt_set_param("max_pages", resident + 128));
	ASSERT_EQ(0, drop_privileges());
	/* the parameters are root's */
	EXPECT_EQ(-EACCES, kt_set_param("max_pages", 0));
	EXPECT_EQ(-EACCES, kt_set_param("max_region_pages", 0));
	EXPECT_EQ(-EACCES, kt_set_param("fault_around", 1));
	fd = kt_open();
	ASSERT_LE(0, fd);
	/* a region past max_region_pages: ENOMEM, whatever the backing */
	EXPECT_EQ(-ENOMEM, kt_create(fd, 257 * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &c));
	EXPECT_EQ(-ENOMEM, kt_create(fd, 257 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c));
	EXPECT_EQ(-ENOMEM, kt_create(fd, 1ULL << 40, KALLOC_BACKING_PAGES, 0, -1, &c));
	/* a VMALLOC region past max_pages: ENOMEM at create */
	EXPECT_EQ(-ENOMEM, kt_create(fd, 200 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c));
	/* a PAGES region touched past max_pages: SIGBUS at the limit */
	ASSERT_EQ(0, kt_create(fd, 256 * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &c));
	p = kt_map(fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	signal(SIGBUS, on_bus);
	if (!sigsetjmp(bus_jb, 1)) {
		for (touched = 0; touched < 256; touched++)
			p[touched * KT_PAGE] = 1;
	}
	signal(SIGBUS, SIG_DFL);
	EXPECT_GE(128UL, touched) TH_LOG("touched %lu pages past max_pages", touched);
	EXPECT_LE(64UL, touched);
	EXPECT_GE(resident + 128, kt_proc_total("resident_vmalloc") +
				  kt_proc_total("resident_pages"));
	munmap(p, 256 * KT_PAGE);
}

/*
 * Root fills many pages with a pattern and frees them; then uid 1000
 * allocates as many and finds every byte zero, also after RELEASE.
 */
TEST_F(hostile, pages_first_seen_are_zero)
{
	static const struct { unsigned int backing, order; } kinds[] = {
		{ KALLOC_BACKING_PAGES, 0 }, { KALLOC_BACKING_PAGES, 4 },
		{ KALLOC_BACKING_PAGES, 9 }, { KALLOC_BACKING_VMALLOC, 0 },
	};
	const size_t size = 16UL << 20;
	struct kalloc_create c;
	unsigned char *p;
	int fd, status;
	pid_t pid;

	/* root, in a child of its own so that its exit frees everything */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		fd = kt_open();
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			if (fd < 0 || kt_create(fd, size, kinds[k].backing,
						kinds[k].order, -1, &c))
				_exit(1);
			p = kt_map(fd, &c, 0);
			if (p == MAP_FAILED)
				_exit(2);
			memset(p, 0xa5, size);
			if (kt_release(fd, c.id, 0, size / 2))	/* half freed here */
				_exit(3);
		}
		_exit(0);				/* and the rest at exit */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);

	ASSERT_EQ(0, drop_privileges());
	fd = kt_open();
	ASSERT_LE(0, fd);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t bad = size;

		ASSERT_EQ(0, kt_create(fd, size, kinds[k].backing, kinds[k].order, -1, &c));
		p = kt_map(fd, &c, 0);
		ASSERT_NE(MAP_FAILED, p);
		for (size_t i = 0; i < size; i++)
			if (p[i]) {
				bad = i;
				break;
			}
		EXPECT_EQ(size, bad) TH_LOG("backing %u order %u: byte %zu is %#x",
					    kinds[k].backing, kinds[k].order, bad, p[bad]);
		/* its own data, released: zero again */
		memset(p, 0x3c, size);
		ASSERT_EQ(0, kt_release(fd, c.id, KT_PAGE, size - 2 * KT_PAGE));
		EXPECT_EQ(0x3c, p[0]);
		EXPECT_EQ(0x3c, p[size - 1]);
		EXPECT_TRUE(all_zero(p + KT_PAGE, size - 2 * KT_PAGE))
			TH_LOG("backing %u order %u: released pages not zero",
			       kinds[k].backing, kinds[k].order);
		munmap(p, size);
		EXPECT_EQ(0, kt_destroy(fd, c.id));
	}
}

TEST_HARNESS_MAIN
