// SPDX-License-Identifier: GPL-2.0
/*
 * kallocctl: load, unload and show the kalloc module, on libkmod.
 *
 *   kallocctl [--module PATH] load [PARAM=VALUE...]
 *   kallocctl unload
 *   kallocctl status
 *
 * load inserts the kalloc.ko built for the running kernel: the project's
 * build/$(uname -r)/ next to this binary's tools/, else the one modules.dep
 * names (make install's extra/, the kalloc-dkms package's updates/dkms/),
 * else extra/ or updates/dkms/ under /lib/modules/$(uname -r)/ by path.
 * Parameters are checked against the module's own list before the kernel
 * sees them.  unload while a process holds the device names the processes
 * (EBUSY).
 *
 * Exit status: 0, 1 for any failure (one line on stderr), 2 when kalloc is
 * not loaded (status, unload).
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <libkmod.h>
#include <linux/kalloc.h>

#include "proc_kalloc.h"

#define NAME		"kalloc"
#define SYS_MODULE	"/sys/module/" NAME

static struct kmod_ctx *ctx;
static const char *module_path;	/* --module */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kallocctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kallocctl [--module PATH] load [PARAM=VALUE...]\n"
		"       kallocctl unload\n"
		"       kallocctl status\n"
		"  load    insert kalloc.ko for the running kernel (build/$(uname -r)/,\n"
		"          else the one modules.dep names, else /lib/modules/$(uname -r)/\n"
		"          extra or updates/dkms)\n"
		"  unload  remove it; refused, naming the processes, while any holds it\n"
		"  status  loaded or not, version, parameters, regions, resident memory\n"
		"Exit status: 0 ok, 1 failure, 2 kalloc is not loaded.\n");
}

/* The first line of a small file, without its newline; false if unreadable. */
static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static bool loaded(struct kmod_module *mod)
{
	return kmod_module_get_initstate(mod) >= 0;
}

static struct kmod_module *module_by_name(void)
{
	struct kmod_module *mod;
	int err = kmod_module_new_from_name(ctx, NAME, &mod);

	if (err < 0)
		fail("libkmod: %s", strerror(-err));
	return mod;
}

/* The path modules.dep gives for kalloc, if depmod has seen one. */
static bool lookup_module(char *path, size_t len)
{
	struct kmod_list *list = NULL;
	struct kmod_module *mod;
	const char *found;
	bool ok = false;

	if (kmod_module_new_from_lookup(ctx, NAME, &list) < 0 || !list)
		return false;
	mod = kmod_module_get_module(list);
	found = kmod_module_get_path(mod);
	if (found) {
		snprintf(path, len, "%s", found);
		ok = !access(path, R_OK);
	}
	kmod_module_unref(mod);
	kmod_module_unref_list(list);
	return ok;
}

/* Where kalloc.ko for the running kernel is; NULL, with tried[] filled, if nowhere. */
static const char *find_module(char *tried, size_t len)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX], *dir;
	struct utsname u;
	size_t used = 0;

	if (module_path)
		return module_path;
	uname(&u);
	if (realpath("/proc/self/exe", exe)) {
		dir = dirname(dirname(exe));	/* tools/kallocctl -> the project */
		snprintf(path, sizeof(path), "%s/build/%s/" NAME ".ko", dir, u.release);
		if (!access(path, R_OK))
			return path;
		used += snprintf(tried + used, len - used, "%s", path);
	}
	/*
	 * By name, as modprobe would: modules.dep knows where make install
	 * (extra/) or dkms (updates/dkms/) put it, compressed or not (dkms
	 * compresses it like the kernel's own modules, as 6.12's .ko.xz).
	 */
	if (lookup_module(path, sizeof(path)))
		return path;
	snprintf(path, sizeof(path), "/lib/modules/%s/extra/" NAME ".ko", u.release);
	if (!access(path, R_OK))
		return path;
	used += snprintf(tried + used, len - used, "%s%s", used ? ", " : "", path);
	snprintf(path, sizeof(path), "/lib/modules/%s/updates/dkms/" NAME ".ko", u.release);
	if (!access(path, R_OK))
		return path;
	snprintf(tried + used, len - used, "%s%s", used ? ", " : "", path);
	return NULL;
}

/* Is NAME=VALUE a parameter mod takes?  known[] gets the list, for the error. */
static bool takes_param(struct kmod_module *mod, const char *arg, char *known, size_t len)
{
	struct kmod_list *info = NULL, *l;
	size_t name_len = strcspn(arg, "="), used = 0;
	bool found = false;

	known[0] = '\0';
	if (kmod_module_get_info(mod, &info) < 0)
		return true;	/* cannot tell: let the kernel judge */
	kmod_list_foreach(l, info) {
		const char *key = kmod_module_info_get_key(l);
		const char *value = kmod_module_info_get_value(l);
		size_t n;

		if (strcmp(key, "parm") || !value)
			continue;
		n = strcspn(value, ":");
		if (n == name_len && !strncmp(value, arg, n))
			found = true;
		if (used < len)
			used += snprintf(known + used, len - used, "%s%.*s",
					 used ? ", " : "", (int)n, value);
	}
	kmod_module_info_free_list(info);
	return found;
}

static int cmd_load(int argc, char **argv)
{
	char tried[3 * PATH_MAX], known[256], options[4096] = "", version[64];
	struct kmod_module *mod, *named = module_by_name();
	const char *path;
	size_t used = 0;
	struct utsname u;
	int err;

	uname(&u);
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (!eq || eq == argv[i] || !eq[1])
			fail("'%s': parameters are NAME=VALUE", argv[i]);
	}
	if (loaded(named))
		fail("kalloc is already loaded (kallocctl unload first)");
	kmod_module_unref(named);
	path = find_module(tried, sizeof(tried));
	if (!path)
		fail("no kalloc.ko for kernel %s (looked at %s): build it with make, or "
		     "install it with make install or the kalloc-dkms package",
		     u.release, tried);
	err = kmod_module_new_from_path(ctx, path, &mod);
	if (err < 0)
		fail("%s: %s", path, strerror(-err));
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (!takes_param(mod, argv[i], known, sizeof(known)))
			fail("'%s': kalloc has no parameter '%.*s' (it takes: %s)", argv[i],
			     (int)(eq - argv[i]), argv[i], known);
		if (used + strlen(argv[i]) + 2 > sizeof(options))
			fail("parameters too long");
		used += snprintf(options + used, sizeof(options) - used, "%s%s",
				 used ? " " : "", argv[i]);
	}
	err = kmod_module_insert_module(mod, 0, options);
	switch (-err) {
	case 0:
		break;
	case EEXIST:
		fail("kalloc is already loaded (kallocctl unload first)");
	case EPERM:
		fail("loading %s: permission denied: loading a module needs root", path);
	case ENOEXEC:
		fail("%s is not a module this kernel (%s) can load: was it built for another kernel?",
		     path, u.release);
	case EINVAL:
		fail("the kernel refused %s%s%s: a parameter value is out of range or the "
		     "module does not match the kernel (see dmesg)",
		     path, used ? " with " : "", options);
	default:
		fail("loading %s: %s (see dmesg)", path, strerror(-err));
	}
	kmod_module_unref(mod);
	if (!read_line(SYS_MODULE "/version", version, sizeof(version)))
		strcpy(version, "?");
	printf("kalloc %s loaded from %s%s%s\n", version, path, used ? " with " : "", options);
	return 0;
}

/* Does /proc/PID hold the device, by an open fd or a mapping? */
static bool holds_device(const char *pid)
{
	char path[PATH_MAX], target[PATH_MAX], line[1024];
	struct dirent *d;
	bool found = false;
	ssize_t n;
	FILE *maps;
	DIR *fds;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fds = opendir(path);
	while (fds && !found && (d = readdir(fds))) {
		snprintf(path, sizeof(path), "/proc/%s/fd/%s", pid, d->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			found = !strcmp(target, KALLOC_DEVICE);
		}
	}
	if (fds)
		closedir(fds);
	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	maps = found ? NULL : fopen(path, "r");
	while (maps && !found && fgets(line, sizeof(line), maps)) {
		size_t len = strcspn(line, "\n"), dl = strlen(KALLOC_DEVICE);

		found = len >= dl && !strncmp(line + len - dl, KALLOC_DEVICE, dl);
	}
	if (maps)
		fclose(maps);
	return found;
}

/* "PID 12 (comm), PID 34 (comm)": the processes holding the device. */
static size_t holders(char *buf, size_t len)
{
	char path[PATH_MAX], comm[64];
	struct dirent *d;
	size_t used = 0, n = 0;
	DIR *proc = opendir("/proc");

	buf[0] = '\0';
	while (proc && (d = readdir(proc))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9' || !holds_device(d->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		if (!read_line(path, comm, sizeof(comm)))
			strcpy(comm, "?");
		if (used < len)
			used += snprintf(buf + used, len - used, "%sPID %s (%s)",
					 n ? ", " : "", d->d_name, comm);
		n++;
	}
	if (proc)
		closedir(proc);
	return n;
}

static void fail_busy(struct kmod_module *mod)
{
	char who[2048];
	size_t n = holders(who, sizeof(who));

	if (n)
		fail("cannot unload kalloc: in use (EBUSY) by %s", who);
	fail("cannot unload kalloc: in use (EBUSY): %d references, but no process "
	     "visible to this user holds " KALLOC_DEVICE, kmod_module_get_refcnt(mod));
}

static int cmd_unload(void)
{
	struct kmod_module *mod = module_by_name();
	int err;

	if (!loaded(mod)) {
		fprintf(stderr, "kallocctl: kalloc is not loaded\n");
		return 2;
	}
	if (kmod_module_get_refcnt(mod) > 0)
		fail_busy(mod);
	err = kmod_module_remove_module(mod, 0);
	if (err == -EBUSY || err == -EAGAIN)
		fail_busy(mod);
	if (err == -EPERM)
		fail("unloading kalloc: permission denied: it needs root");
	if (err < 0)
		fail("unloading kalloc: %s", strerror(-err));
	kmod_module_unref(mod);
	printf("kalloc unloaded\n");
	return 0;
}

static void print_parameters(void)
{
	struct dirent **names;
	char path[PATH_MAX], value[128];
	int n = scandir(SYS_MODULE "/parameters", &names, NULL, alphasort), shown = 0;

	printf("parameters:");
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), SYS_MODULE "/parameters/%s", names[i]->d_name);
		if (names[i]->d_name[0] != '.' && read_line(path, value, sizeof(value))) {
			printf(" %s=%s", names[i]->d_name, value);
			shown++;
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	printf("%s\n", shown ? "" : " (none readable)");
}

static int cmd_status(void)
{
	struct kmod_module *mod = module_by_name();
	char version[64], tried[3 * PATH_MAX], error[512], who[2048], a[32], b[32], c[32];
	unsigned long pg, vm, page_size = (unsigned long)sysconf(_SC_PAGESIZE);
	struct kp_snapshot s;
	const char *path;
	int refcnt;

	if (!loaded(mod)) {
		path = find_module(tried, sizeof(tried));
		printf("kalloc: not loaded\n");
		if (path)
			printf("module: %s (kallocctl load)\n", path);
		else
			printf("module: none found for this kernel (looked at %s)\n", tried);
		return 2;
	}
	if (!read_line(SYS_MODULE "/version", version, sizeof(version)))
		strcpy(version, "?");
	refcnt = kmod_module_get_refcnt(mod);
	printf("kalloc: loaded, version %s, %d user%s\n", version, refcnt,
	       refcnt == 1 ? "" : "s");
	print_parameters();
	switch (kp_read(KALLOC_PROC, &s, error, sizeof(error))) {
	case KP_OK:
		pg = kp_total_ul(&s, "resident_pages");
		vm = kp_total_ul(&s, "resident_vmalloc");
		printf("regions: %lu, resident %s (pages %s, vmalloc %s)\n",
		       kp_total_ul(&s, "regions"), kp_human(a, sizeof(a), (pg + vm) * page_size),
		       kp_human(b, sizeof(b), pg * page_size),
		       kp_human(c, sizeof(c), vm * page_size));
		break;
	case KP_MISSING:
		printf("regions: ? (" KALLOC_PROC " is missing)\n");
		break;
	default:
		printf("regions: ? (%s)\n", error);
	}
	kp_free(&s);
	if (refcnt > 0 && holders(who, sizeof(who)))
		printf("held by: %s\n", who);
	kmod_module_unref(mod);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1, status;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--module") && i + 1 < argc) {
			module_path = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--module=", 9)) {
			module_path = argv[i] + 9;
			i++;
		} else {
			fail("unknown option '%s' (kallocctl --help)", argv[i]);
		}
	}
	if (i == argc)
		fail("no command: load, unload or status (kallocctl --help)");
	ctx = kmod_new(NULL, NULL);
	if (!ctx)
		fail("libkmod: cannot create a context");
	if (!strcmp(argv[i], "load"))
		status = cmd_load(argc - i - 1, argv + i + 1);
	else if (!strcmp(argv[i], "unload") && i + 1 == argc)
		status = cmd_unload();
	else if (!strcmp(argv[i], "status") && i + 1 == argc)
		status = cmd_status();
	else if (!strcmp(argv[i], "unload") || !strcmp(argv[i], "status"))
		fail("%s takes no arguments", argv[i]);
	else
		fail("unknown command '%s': load, unload or status (kallocctl --help)", argv[i]);
	kmod_unref(ctx);
	return status;
}
