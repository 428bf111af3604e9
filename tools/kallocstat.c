// SPDX-License-Identifier: GPL-2.0
/*
 * kallocstat: what kalloc holds now, from /proc/kalloc.
 *
 * Totals, then one row per region sorted by resident memory (or --sort
 * FIELD), sizes in KiB/MiB/GiB; --json for scripts; -w SECONDS redraws
 * like top (on a terminal) or appends frames like vmstat (into a pipe).
 *
 * Exit status: 0, 1 for a usage error or a /proc/kalloc this tool does not
 * understand, 2 when the module is not loaded (no /proc/kalloc).
 * KALLOCSTAT_PROC or --proc reads another file (the tests' fixtures).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc_kalloc.h"

#define MAX_PIDS 64

/* How rows are ordered: the key, and whether larger comes first. */
enum sort_key {
	SORT_ID, SORT_PID, SORT_COMM, SORT_BACKING, SORT_ORDER, SORT_NODE,
	SORT_SIZE, SORT_RESIDENT, SORT_FAULTS, SORT_MAPPINGS,
};

static const struct {
	const char *name;
	const char *alias;
	enum sort_key key;
	bool descending;
} sort_fields[] = {
	{ "resident", "resident_pages", SORT_RESIDENT, true },
	{ "size", "size_pages", SORT_SIZE, true },
	{ "faults", NULL, SORT_FAULTS, true },
	{ "mappings", NULL, SORT_MAPPINGS, true },
	{ "pid", NULL, SORT_PID, false },
	{ "id", NULL, SORT_ID, false },
	{ "comm", NULL, SORT_COMM, false },
	{ "backing", NULL, SORT_BACKING, false },
	{ "order", NULL, SORT_ORDER, true },
	{ "node", NULL, SORT_NODE, false },
};
#define NR_SORT_FIELDS (sizeof(sort_fields) / sizeof(sort_fields[0]))

static struct {
	const char *path;
	long pids[MAX_PIDS];
	int nr_pids;
	double interval;	/* -w; 0: once */
	long count;		/* -n; 0: forever */
	bool json;
	enum sort_key sort;
	bool descending;
} opt = { .sort = SORT_RESIDENT, .descending = true };

static unsigned long page_size;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kallocstat [-p PID]... [-w SECONDS [-n COUNT]] [-s FIELD] [--json] [--proc PATH]\n"
		"  -p, --pid PID        only the regions of PID (repeatable)\n"
		"  -w, --watch SECONDS  redraw every SECONDS\n"
		"  -n, --count COUNT    with -w: stop after COUNT frames\n"
		"  -s, --sort FIELD     order rows by FIELD (default resident):\n"
		"                       resident size faults mappings pid id comm backing order node\n"
		"  -j, --json           one JSON object per frame\n"
		"      --proc PATH      read PATH instead of /proc/kalloc ($KALLOCSTAT_PROC)\n"
		"  -h, --help           this text\n"
		"Exit status: 0 ok, 1 error, 2 kalloc is not loaded.\n");
}

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "kallocstat: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (kallocstat --help)\n");
	exit(1);
}

static const char *pages(char *buf, size_t len, unsigned long long n)
{
	return kp_human(buf, len, n * page_size);
}

static int cmp_num(unsigned long long a, unsigned long long b)
{
	return a < b ? -1 : a > b;
}

static int cmp_regions(const void *pa, const void *pb)
{
	const struct kp_region *a = pa, *b = pb;
	int c = 0;

	switch (opt.sort) {
	case SORT_ID: c = cmp_num(a->id, b->id); break;
	case SORT_PID: c = (a->pid > b->pid) - (a->pid < b->pid); break;
	case SORT_COMM: c = strcmp(a->comm, b->comm); break;
	case SORT_BACKING: c = strcmp(a->backing, b->backing); break;
	case SORT_ORDER: c = cmp_num(a->order, b->order); break;
	case SORT_NODE: c = (a->node > b->node) - (a->node < b->node); break;
	case SORT_SIZE: c = cmp_num(a->size_pages, b->size_pages); break;
	case SORT_RESIDENT: c = cmp_num(a->resident_pages, b->resident_pages); break;
	case SORT_FAULTS: c = cmp_num(a->faults, b->faults); break;
	case SORT_MAPPINGS: c = cmp_num(a->mappings, b->mappings); break;
	}
	if (opt.descending)
		c = -c;
	if (!c)		/* stable and predictable: by owner, then id */
		c = (a->pid > b->pid) - (a->pid < b->pid);
	if (!c)
		c = cmp_num(a->id, b->id);
	return c;
}

static bool wanted(const struct kp_region *r)
{
	if (!opt.nr_pids)
		return true;
	for (int i = 0; i < opt.nr_pids; i++)
		if (opt.pids[i] == r->pid)
			return true;
	return false;
}

/* Drop the rows -p does not want, then sort what is left. */
static size_t select_rows(struct kp_snapshot *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nr_regions; i++)
		if (wanted(&s->regions[i]))
			s->regions[n++] = s->regions[i];
	qsort(s->regions, n, sizeof(*s->regions), cmp_regions);
	return n;
}

static void limit(char *buf, size_t len, const struct kp_snapshot *s, const char *key)
{
	unsigned long v = kp_total_ul(s, key);

	if (!kp_total(s, key))
		snprintf(buf, len, "?");
	else if (!v)
		snprintf(buf, len, "none");
	else
		pages(buf, len, v);
}

static void print_text(const struct kp_snapshot *s, size_t shown)
{
	unsigned long vm = kp_total_ul(s, "resident_vmalloc");
	unsigned long pg = kp_total_ul(s, "resident_pages");
	char a[32], b[32], c[32];
	size_t i, nodes;

	printf("kalloc %s (abi %s): %lu region%s, %s resident (pages %s, vmalloc %s)\n",
	       kp_total(s, "version"), kp_total(s, "abi"), kp_total_ul(s, "regions"),
	       kp_total_ul(s, "regions") == 1 ? "" : "s",
	       pages(a, sizeof(a), vm + pg), pages(b, sizeof(b), pg),
	       pages(c, sizeof(c), vm));
	printf("high water %s, %lu faults, %s released\n",
	       pages(a, sizeof(a), kp_total_ul(s, "high_water")),
	       kp_total_ul(s, "faults"), pages(b, sizeof(b), kp_total_ul(s, "releases")));
	/* pages regions let go of that a pipe or I/O still holds: still counted */
	if (kp_total_ul(s, "pinned_pages"))
		printf("of the resident, %s let go by regions but still held by pipes or I/O\n",
		       pages(a, sizeof(a), kp_total_ul(s, "pinned_pages")));
	limit(a, sizeof(a), s, "max_pages");
	limit(b, sizeof(b), s, "max_region_pages");
	printf("limits: max_pages %s, max_region_pages %s, fault_around %s pages\n",
	       a, b, kp_total(s, "fault_around") ? kp_total(s, "fault_around") : "?");
	for (i = 0, nodes = 0; i < s->nr_totals; i++) {
		unsigned node;
		char tail;

		if (sscanf(s->totals[i].key, "node%u_residen%c", &node, &tail) != 2)
			continue;
		printf("%snode%u %s", nodes++ ? ", " : "resident by node: ", node,
		       pages(a, sizeof(a), strtoul(s->totals[i].value, NULL, 10)));
	}
	if (nodes)
		printf("\n");
	if (kp_total(s, "max_user_pages")) {
		limit(a, sizeof(a), s, "max_user_pages");
		printf("max_user_pages %s; resident by user:", a);
		for (i = 0; i < s->nr_users; i++)
			printf("%s uid %lu %s", i ? "," : "", s->users[i].uid,
			       pages(b, sizeof(b), s->users[i].resident_pages));
		printf("%s\n", s->nr_users ? "" : " none");
	}
	printf("\n");
	if (!shown) {
		if (opt.nr_pids)
			printf("no regions of the given pid%s\n", opt.nr_pids > 1 ? "s" : "");
		else
			printf("no regions\n");
		return;
	}
	printf("%7s %-15s %5s %-7s %5s %4s %10s %10s %8s %4s\n", "PID", "COMMAND", "ID",
	       "BACKING", "ORDER", "NODE", "SIZE", "RESIDENT", "FAULTS", "MAPS");
	for (i = 0; i < shown; i++) {
		const struct kp_region *r = &s->regions[i];

		printf("%7ld %-15.15s %5lu %-7s %5lu %4ld %10s %10s %8lu %4lu\n",
		       r->pid, r->comm, r->id, r->backing, r->order, r->node,
		       pages(a, sizeof(a), r->size_pages),
		       pages(b, sizeof(b), r->resident_pages), r->faults, r->mappings);
	}
	if (opt.nr_pids)
		printf("(%zu of %zu regions)\n", shown, s->nr_regions);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(const struct kp_snapshot *s, size_t shown)
{
	const char *sep = "";
	size_t i;

	printf("{\"version\": ");
	json_string(kp_total(s, "version"));
	printf(", \"page_size\": %lu, \"totals\": {", page_size);
	for (i = 0; i < s->nr_totals; i++) {
		if (!strcmp(s->totals[i].key, "version"))
			continue;
		printf("%s\"%s\": %s", sep, s->totals[i].key, s->totals[i].value);
		sep = ", ";
	}
	printf("}, \"users\": [");
	for (i = 0; i < s->nr_users; i++)
		printf("%s{\"uid\": %lu, \"resident_pages\": %lu, \"regions\": %lu}",
		       i ? ", " : "", s->users[i].uid, s->users[i].resident_pages,
		       s->users[i].regions);
	printf("], \"regions_total\": %zu, \"regions\": [", s->nr_regions);
	for (i = 0; i < shown; i++) {
		const struct kp_region *r = &s->regions[i];

		printf("%s{\"id\": %lu, \"pid\": %ld, \"comm\": ", i ? ", " : "", r->id, r->pid);
		json_string(r->comm);
		printf(", \"backing\": ");
		json_string(r->backing);
		printf(", \"order\": %lu, \"node\": %ld, \"size_pages\": %lu, "
		       "\"resident_pages\": %lu, \"faults\": %lu, \"mappings\": %lu, "
		       "\"size_bytes\": %llu, \"resident_bytes\": %llu}",
		       r->order, r->node, r->size_pages, r->resident_pages, r->faults,
		       r->mappings, (unsigned long long)r->size_pages * page_size,
		       (unsigned long long)r->resident_pages * page_size);
	}
	printf("]}\n");
}

/* One frame; returns the exit status it would end with. */
static int frame(long n)
{
	struct kp_snapshot s;
	char error[512];
	size_t shown;
	int status = 0;

	switch (kp_read(opt.path, &s, error, sizeof(error))) {
	case KP_OK:
		break;
	case KP_MISSING:
		kp_free(&s);
		if (opt.json && opt.interval)
			printf("{\"loaded\": false}\n");
		else
			fprintf(opt.interval ? stdout : stderr,
				"kallocstat: %s does not exist: the kalloc module is not "
				"loaded (load it with: kallocctl load)\n", opt.path);
		fflush(stdout);
		return 2;
	default:
		kp_free(&s);
		fprintf(stderr, "kallocstat: %s\n", error);
		return 1;
	}
	shown = select_rows(&s);
	if (opt.json) {
		print_json(&s, shown);
	} else {
		if (opt.interval) {
			char when[32];
			time_t now = time(NULL);

			strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
			if (isatty(STDOUT_FILENO))
				printf("\033[H\033[2J");
			else if (n)
				printf("\n");
			printf("every %gs, %s\n", opt.interval, when);
		}
		print_text(&s, shown);
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (errno != EPIPE)
			fprintf(stderr, "kallocstat: stdout: %s\n", strerror(errno));
		status = 1;
	}
	kp_free(&s);
	return status;
}

static void parse_args(int argc, char **argv)
{
	enum { OPT_PROC = 256 };
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "watch", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "sort", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "proc", required_argument, NULL, OPT_PROC },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	size_t i;
	int c;

	opt.path = kp_default_path();
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:w:n:s:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (opt.nr_pids == MAX_PIDS)
				die_usage("more than 64 -p options%s", "");
			errno = 0;
			opt.pids[opt.nr_pids] = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || opt.pids[opt.nr_pids] < 0)
				die_usage("-p '%s': not a process id", optarg);
			opt.nr_pids++;
			break;
		case 'w':
			errno = 0;
			opt.interval = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(opt.interval >= 0.1) ||
			    opt.interval > 86400)
				die_usage("-w '%s': seconds from 0.1 to 86400", optarg);
			break;
		case 'n':
			errno = 0;
			opt.count = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || opt.count < 1)
				die_usage("-n '%s': a count of at least 1", optarg);
			break;
		case 's':
			for (i = 0; i < NR_SORT_FIELDS; i++)
				if (!strcmp(optarg, sort_fields[i].name) ||
				    (sort_fields[i].alias && !strcmp(optarg, sort_fields[i].alias)))
					break;
			if (i == NR_SORT_FIELDS)
				die_usage("--sort '%s': not a field (resident size faults "
					  "mappings pid id comm backing order node)", optarg);
			opt.sort = sort_fields[i].key;
			opt.descending = sort_fields[i].descending;
			break;
		case 'j':
			opt.json = true;
			break;
		case OPT_PROC:
			opt.path = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			die_usage("%s needs an argument", argv[optind - 1]);
			break;
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (opt.count && !opt.interval)
		die_usage("-n needs -w%s", "");
}

int main(int argc, char **argv)
{
	struct timespec ts;
	int status;
	long n;

	parse_args(argc, argv);
	page_size = (unsigned long)sysconf(_SC_PAGESIZE);
	for (n = 0;; n++) {
		status = frame(n);
		if (!opt.interval || status == 1 || (opt.count && n + 1 >= opt.count))
			break;
		ts.tv_sec = (time_t)opt.interval;
		ts.tv_nsec = (long)((opt.interval - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	return status;
}
