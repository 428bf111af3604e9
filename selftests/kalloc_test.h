/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What kalloc's selftests share: thin wrappers over the ioctls, and
 * readers of /proc/kalloc and the module's parameters.  Each wrapper
 * returns 0 or -errno so that tests can assert on the exact error.
 */
#ifndef KALLOC_TEST_H
#define KALLOC_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/kalloc.h>

#define KT_PAGE 4096UL

/*
 * Unprivileged users the tests become, and the group they give the device
 * node: the module makes it root:root 0660 and the guest has no udev to
 * apply the install's rule (group "kalloc"), so the tests chgrp it to a
 * group of their own, by number, and make the users they want members.
 */
#define KT_USER_ID	1000
#define KT_OTHER_USER_ID	1001
#define KT_DEVICE_GID	990

#ifdef _GNU_SOURCE	/* setresuid() and setresgid() */
/* Give the device node the tests' group (as root); 0 or -errno. */
static inline int kt_device_group(void)
{
	return chown(KALLOC_DEVICE, -1, KT_DEVICE_GID) ? -errno : 0;
}

/*
 * Become uid and gid @uid for good (from root), with KT_DEVICE_GID as the
 * only supplementary group when @member; 0 or -errno.
 */
static inline int kt_become(uid_t uid, bool member)
{
	gid_t group = KT_DEVICE_GID;

	if (setgroups(member ? 1 : 0, &group) || setresgid(uid, uid, uid) ||
	    setresuid(uid, uid, uid))
		return -errno;
	return geteuid() == uid && getegid() == uid ? 0 : -EPERM;
}
#endif

static inline int kt_open(void)
{
	return open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
}

static inline int kt_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int kt_create(int fd, unsigned long long size, unsigned int backing,
			    unsigned int order, int node, struct kalloc_create *c)
{
	memset(c, 0, sizeof(*c));
	c->argsz = sizeof(*c);
	c->size = size;
	c->backing = backing;
	c->order = order;
	c->node = node;
	return kt_ioctl(fd, KALLOC_IOC_CREATE, c);
}

static inline int kt_release(int fd, unsigned int id, unsigned long long offset,
			     unsigned long long length)
{
	struct kalloc_release r = {
		.argsz = sizeof(r), .id = id, .offset = offset, .length = length,
	};

	return kt_ioctl(fd, KALLOC_IOC_RELEASE, &r);
}

static inline int kt_info(int fd, unsigned int id, struct kalloc_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->id = id;
	return kt_ioctl(fd, KALLOC_IOC_INFO, info);
}

static inline int kt_destroy(int fd, unsigned int id)
{
	struct kalloc_destroy d = { .argsz = sizeof(d), .id = id };

	return kt_ioctl(fd, KALLOC_IOC_DESTROY, &d);
}

/* Map @c's region (all of it, or @len bytes when non-zero) shared. */
static inline void *kt_map(int fd, const struct kalloc_create *c, size_t len)
{
	return mmap(NULL, len ? len : c->size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, c->offset);
}

/* A "key value" total from the top of /proc/kalloc, or -1. */
static inline long kt_proc_total(const char *key)
{
	char line[256], name[64];
	long value, found = -1;
	FILE *f = fopen(KALLOC_PROC, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f) && line[0] != '\n') {
		if (sscanf(line, "%63s %ld", name, &value) == 2 &&
		    !strcmp(name, key)) {
			found = value;
			break;
		}
	}
	fclose(f);
	return found;
}

struct kt_row {
	unsigned int id;
	int pid;
	char comm[32];
	char backing[16];
	unsigned int order;
	int node;
	unsigned long size_pages, resident_pages, faults;
	int mappings;
	unsigned long pmd_pages;	/* 0 from a module before the column */
};

/*
 * The /proc/kalloc row of region @id of process @pid (@id 0: its first
 * row, as ids start at 1); 0, or -1 if none.
 */
static inline int kt_proc_row(unsigned int id, int pid, struct kt_row *row)
{
	char line[512];
	int in_rows = 0, ret = -1;
	FILE *f = fopen(KALLOC_PROC, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!in_rows) {
			in_rows = !strncmp(line, "id pid comm", 11);
			continue;
		}
		row->pmd_pages = 0;
		if (sscanf(line, "%u %d %31s %15s %u %d %lu %lu %lu %d %lu",
			   &row->id, &row->pid, row->comm, row->backing,
			   &row->order, &row->node, &row->size_pages,
			   &row->resident_pages, &row->faults,
			   &row->mappings, &row->pmd_pages) >= 10 &&
		    (!id || row->id == id) && row->pid == pid) {
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* A module parameter as a number, or -1. */
static inline long kt_param(const char *name)
{
	char path[128];
	long value = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/kalloc/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &value) != 1)
		value = -1;
	fclose(f);
	return value;
}

/* Set a module parameter; 0 or -errno. */
static inline int kt_set_param(const char *name, long value)
{
	char path[128], buf[32];
	int fd, n, ret = 0;

	snprintf(path, sizeof(path), "/sys/module/kalloc/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld", value);
	if (write(fd, buf, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

static inline long kt_minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

#endif /* KALLOC_TEST_H */
