// SPDX-License-Identifier: GPL-2.0
/*
 * Reading /proc/kalloc: "key value" totals, a blank line, a header line,
 * one row per region.  See proc_kalloc.h for what is accepted.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kalloc.h>

#include "proc_kalloc.h"

/* The columns this reader knows, in order; later ones are ignored. */
static const char *const kp_columns[] = {
	"id", "pid", "comm", "backing", "order", "node",
	"size_pages", "resident_pages", "faults", "mappings",
};
#define KP_NR_COLUMNS (sizeof(kp_columns) / sizeof(kp_columns[0]))

/* Totals every version of the format has had. */
static const char *const kp_required[] = {
	"version", "abi", "regions", "resident_vmalloc", "resident_pages",
};

const char *kp_default_path(void)
{
	const char *env = getenv("KALLOCSTAT_PROC");

	return env && *env ? env : KALLOC_PROC;
}

static bool parse_ul(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !errno && !*end;
}

static bool parse_l(const char *s, long *out)
{
	char *end;

	if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	*out = strtol(s, &end, 10);
	return !errno && !*end;
}

/*
 * A "userUID_resident PAGES" or "userUID_regions N" total: into that
 * user's entry of snap->users, appended the first time (true), or false
 * if @key is neither.  -1 in *err when memory ran out.
 */
static bool kp_user_total(struct kp_snapshot *snap, const char *key,
			  const char *value, size_t *cap, int *err)
{
	unsigned long uid, n;
	struct kp_user *grown;
	char tail[16];
	bool resident;

	if (sscanf(key, "user%lu_%15s", &uid, tail) != 2 ||
	    (strcmp(tail, "resident") && strcmp(tail, "regions")) ||
	    key[4] < '0' || key[4] > '9' || !parse_ul(value, &n))
		return false;
	resident = !strcmp(tail, "resident");
	/* the module prints a user's two lines together */
	if (snap->nr_users && snap->users[snap->nr_users - 1].uid == uid) {
		if (resident)
			snap->users[snap->nr_users - 1].resident_pages = n;
		else
			snap->users[snap->nr_users - 1].regions = n;
		return true;
	}
	if (snap->nr_users == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		grown = realloc(snap->users, *cap * sizeof(*grown));
		if (!grown) {
			*err = -1;
			return true;
		}
		snap->users = grown;
	}
	snap->users[snap->nr_users].uid = uid;
	snap->users[snap->nr_users].resident_pages = resident ? n : 0;
	snap->users[snap->nr_users].regions = resident ? 0 : n;
	snap->nr_users++;
	return true;
}

static bool is_key(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* Split line in place on single spaces; returns the number of words. */
static size_t split(char *line, char **words, size_t max)
{
	size_t n = 0;
	char *save, *w;

	for (w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n < max)
			words[n] = w;
		n++;
	}
	return n;
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 8192, n = 0, got;
	char *buf = malloc(cap + 1), *bigger;

	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			bigger = realloc(buf, cap + 1);
			if (!bigger)
				free(buf);
			buf = bigger;
		}
	}
	if (!buf || ferror(f)) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

#define bad(...) do { snprintf(error, error_len, __VA_ARGS__); goto out; } while (0)

enum kp_status kp_read(const char *path, struct kp_snapshot *snap,
		       char *error, size_t error_len)
{
	enum kp_status status = KP_BAD_FORMAT;
	enum { TOTALS, HEADER, ROWS } part = TOTALS;
	char *buf, *line, *next, *words[KP_NR_COLUMNS + 1];
	size_t len, n, cap = 0, user_cap = 0, lineno = 0, i;
	int err = 0;
	struct kp_region *r, *grown;
	FILE *f;

	memset(snap, 0, sizeof(*snap));
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return KP_MISSING;
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		return KP_UNREADABLE;
	}
	buf = read_all(f, &len);
	if (!buf) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno ? errno : EIO));
		fclose(f);
		return KP_UNREADABLE;
	}
	fclose(f);
	if (len == 0) {
		snprintf(error, error_len, "%s: unknown format: the file is empty", path);
		goto out;
	}
	if (memchr(buf, '\0', len)) {
		snprintf(error, error_len, "%s: unknown format: binary data", path);
		goto out;
	}

	for (line = buf; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else if (!*line)
			break;		/* after the last newline */
		lineno++;
		switch (part) {
		case TOTALS:
			if (!*line) {
				part = HEADER;
				break;
			}
			n = split(line, words, 3);
			if (n != 2 || !is_key(words[0]) ||
			    strlen(words[0]) >= KP_KEY_LEN || strlen(words[1]) >= KP_KEY_LEN)
				bad("%s: unknown format at line %zu: expected \"key value\"",
				    path, lineno);
			if (kp_user_total(snap, words[0], words[1], &user_cap, &err)) {
				if (err)
					bad("%s: out of memory", path);
				break;
			}
			if (snap->nr_totals == KP_MAX_TOTALS)
				bad("%s: unknown format at line %zu: more than %d totals",
				    path, lineno, KP_MAX_TOTALS);
			strcpy(snap->totals[snap->nr_totals].key, words[0]);
			strcpy(snap->totals[snap->nr_totals].value, words[1]);
			snap->nr_totals++;
			break;
		case HEADER:
			n = split(line, words, KP_NR_COLUMNS);
			for (i = 0; i < KP_NR_COLUMNS; i++)
				if (i >= n || strcmp(words[i], kp_columns[i]))
					bad("%s: unknown format at line %zu: the region header "
					    "does not begin \"id pid comm backing order node "
					    "size_pages resident_pages faults mappings\"",
					    path, lineno);
			part = ROWS;
			break;
		case ROWS:
			n = split(line, words, KP_NR_COLUMNS);
			if (n < KP_NR_COLUMNS)
				bad("%s: unknown format at line %zu: a region row has %zu "
				    "fields, not %zu", path, lineno, n, KP_NR_COLUMNS);
			if (snap->nr_regions == cap) {
				cap = cap ? cap * 2 : 64;
				grown = realloc(snap->regions, cap * sizeof(*r));
				if (!grown)
					bad("%s: out of memory", path);
				snap->regions = grown;
			}
			r = &snap->regions[snap->nr_regions];
			memset(r, 0, sizeof(*r));
			if (!parse_ul(words[0], &r->id) || !parse_l(words[1], &r->pid) ||
			    !parse_ul(words[4], &r->order) || !parse_l(words[5], &r->node) ||
			    !parse_ul(words[6], &r->size_pages) ||
			    !parse_ul(words[7], &r->resident_pages) ||
			    !parse_ul(words[8], &r->faults) ||
			    !parse_ul(words[9], &r->mappings))
				bad("%s: unknown format at line %zu: a region row has a "
				    "non-numeric field", path, lineno);
			snprintf(r->comm, sizeof(r->comm), "%s", words[2]);
			snprintf(r->backing, sizeof(r->backing), "%s", words[3]);
			snap->nr_regions++;
			break;
		}
	}
	if (part == TOTALS)
		bad("%s: unknown format: no blank line after the totals", path);
	if (part == HEADER)
		bad("%s: unknown format: no region header after the totals", path);
	for (i = 0; i < sizeof(kp_required) / sizeof(kp_required[0]); i++)
		if (!kp_total(snap, kp_required[i]))
			bad("%s: unknown format: no \"%s\" total", path, kp_required[i]);
	for (i = 0; i < snap->nr_totals; i++) {
		unsigned long v;

		if (strcmp(snap->totals[i].key, "version") &&
		    !parse_ul(snap->totals[i].value, &v))
			bad("%s: unknown format: the \"%s\" total is not a number",
			    path, snap->totals[i].key);
	}
	status = KP_OK;
out:
	free(buf);
	return status;
}

void kp_free(struct kp_snapshot *snap)
{
	free(snap->regions);
	snap->regions = NULL;
	snap->nr_regions = 0;
	free(snap->users);
	snap->users = NULL;
	snap->nr_users = 0;
}

const char *kp_total(const struct kp_snapshot *snap, const char *key)
{
	for (size_t i = 0; i < snap->nr_totals; i++)
		if (!strcmp(snap->totals[i].key, key))
			return snap->totals[i].value;
	return NULL;
}

unsigned long kp_total_ul(const struct kp_snapshot *snap, const char *key)
{
	const char *v = kp_total(snap, key);

	return v ? strtoul(v, NULL, 10) : 0;
}

const char *kp_human(char *buf, size_t len, unsigned long long bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", bytes);
		return buf;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}
