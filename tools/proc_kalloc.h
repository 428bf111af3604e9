/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading /proc/kalloc (Documentation/ABI/testing/procfs-kalloc), shared by
 * kallocstat and kallocctl.
 *
 * The format only ever grows at the end of the totals or of a row, so the
 * reader keeps totals it does not know, as strings, and ignores columns past
 * the ten it knows; anything else it does not recognise is refused with the
 * line that broke it, never guessed at.  The per-user totals
 * ("userUID_resident", one per user holding regions: as many as there are
 * users) are kept apart, in users[].
 */
#ifndef PROC_KALLOC_H
#define PROC_KALLOC_H

#include <stddef.h>

#define KP_MAX_TOTALS	64
#define KP_KEY_LEN	32
#define KP_COMM_LEN	64

struct kp_total {
	char key[KP_KEY_LEN];
	char value[KP_KEY_LEN];
};

struct kp_region {
	unsigned long id;
	long pid;
	char comm[KP_COMM_LEN];
	char backing[16];
	unsigned long order;
	long node;
	unsigned long size_pages;
	unsigned long resident_pages;
	unsigned long faults;
	unsigned long mappings;
};

struct kp_user {
	unsigned long uid;
	unsigned long resident_pages;
	unsigned long regions;
};

struct kp_snapshot {
	struct kp_total totals[KP_MAX_TOTALS];
	size_t nr_totals;
	struct kp_user *users;
	size_t nr_users;
	struct kp_region *regions;
	size_t nr_regions;
};

enum kp_status {
	KP_OK = 0,
	KP_MISSING,	/* no such file: the module is not loaded */
	KP_UNREADABLE,	/* open or read failed otherwise: errno says why */
	KP_BAD_FORMAT,	/* error[] says where and what */
};

/*
 * Read and parse path.  On KP_BAD_FORMAT or KP_UNREADABLE, error holds a
 * one-line explanation.  Free the snapshot with kp_free() whatever the result.
 */
enum kp_status kp_read(const char *path, struct kp_snapshot *snap,
		       char *error, size_t error_len);
void kp_free(struct kp_snapshot *snap);

/* A total by key, or NULL. */
const char *kp_total(const struct kp_snapshot *snap, const char *key);
/* A numeric total by key, or 0 when absent. */
unsigned long kp_total_ul(const struct kp_snapshot *snap, const char *key);

/* bytes as "512 B", "4.0 KiB", "1.5 MiB", ...; returns buf */
const char *kp_human(char *buf, size_t len, unsigned long long bytes);

/* /proc/kalloc's path: $KALLOCSTAT_PROC when set, else KALLOC_PROC. */
const char *kp_default_path(void);

#endif /* PROC_KALLOC_H */
