// SPDX-License-Identifier: MIT
/*
 * kalloc_demo: one program's memory, from malloc to buddy pages and back.
 *
 * An ordinary C program linked with liballoc (cc ... -lalloc): every malloc
 * below is served from /dev/kalloc regions.  It
 *
 *   1. builds a hash table of 750,000 entries (about 100 MB),
 *   2. deletes the newer half of them,
 *   3. calls malloc_trim(0),
 *
 * and after each step prints liballoc's own view (ka_stats) and runs
 * "kallocstat -p PID" to show the kernel's: regions, resident pages and
 * faults.  Step 1 shows pages faulted in on first touch; step 2 shows freed
 * memory still resident (liballoc keeps it for reuse until its purge delay
 * passes); step 3 shows it handed back to the kernel (KALLOC_IOC_RELEASE)
 * while the remaining half is untouched.  (liballoc counts the bytes of the
 * spans it releases; the kernel counts the pages that were resident in them.)
 *
 * Build in the tree: make tools (build/tools/kalloc_demo).  Installed:
 *   cc -O2 kalloc_demo.c $(pkg-config --cflags --libs --static liballoc)
 */
#include <inttypes.h>
#include <malloc.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <alloc.h>

#define ENTRIES		750000UL
#define BUCKETS		(1UL << 20)

struct entry {
	struct entry *next;
	uint64_t key;
	size_t len;
	char value[];
};

static struct entry **table;

static size_t value_len(uint64_t key)
{
	return 32 + key * 7919 % 161;	/* 32 to 192 bytes, mean 112 */
}

static void fill(char *value, size_t len, uint64_t key)
{
	for (size_t i = 0; i < len; i++)
		value[i] = (char)('a' + (key + i) % 26);
}

static void insert(uint64_t key)
{
	size_t len = value_len(key);
	struct entry *e = malloc(sizeof(*e) + len);

	if (!e) {
		perror("kalloc_demo: malloc");
		exit(1);
	}
	e->key = key;
	e->len = len;
	fill(e->value, len, key);
	e->next = table[key % BUCKETS];
	table[key % BUCKETS] = e;
}

static void delete_from(uint64_t first)
{
	for (size_t b = 0; b < BUCKETS; b++) {
		struct entry **link = &table[b], *e;

		while ((e = *link)) {
			if (e->key >= first) {
				*link = e->next;
				free(e);
			} else {
				link = &e->next;
			}
		}
	}
}

/* Every entry left is intact: the kernel handed back only freed memory. */
static size_t check(void)
{
	char expect[256];
	size_t n = 0;

	for (size_t b = 0; b < BUCKETS; b++) {
		for (struct entry *e = table[b]; e; e = e->next, n++) {
			fill(expect, e->len, e->key);
			if (e->len != value_len(e->key) || memcmp(e->value, expect, e->len)) {
				fprintf(stderr, "kalloc_demo: entry %" PRIu64 " corrupted\n", e->key);
				exit(1);
			}
		}
	}
	return n;
}

static double mib(size_t bytes)
{
	return (double)bytes / (1 << 20);
}

/*
 * Both views of this process's memory.  kallocstat runs with posix_spawn,
 * which does not copy this process: a fork() would copy every resident
 * kalloc page (Documentation/kalloc.rst, "Fork").
 */
static void show(const char *step)
{
	extern char **environ;
	const char *kallocstat = getenv("KALLOCSTAT");
	char pid[16];
	struct ka_stats st;
	pid_t child;
	int status;

	ka_stats(&st);
	printf("\n== %s\n", step);
	printf("liballoc (%s backend): %.1f MiB allocated, %.1f MiB resident, "
	       "%.1f MiB free but still resident, %.1f MiB of spans released in %" PRIu64
	       " calls, %zu regions\n",
	       st.backend, mib(st.allocated), mib(st.resident), mib(st.dirty),
	       mib(st.released_bytes), st.releases, st.regions);
	fflush(stdout);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (!kallocstat)
		kallocstat = "kallocstat";
	char *argv[] = { (char *)kallocstat, "-p", pid, NULL };
	if (posix_spawnp(&child, kallocstat, NULL, NULL, argv, environ)) {
		printf("(%s not found: set KALLOCSTAT or PATH to see the kernel's view)\n",
		       kallocstat);
		return;
	}
	waitpid(child, &status, 0);
}

int main(void)
{
	/* Hold freed memory until malloc_trim, so step 2 and 3 differ clearly. */
	mallopt(KA_M_DECAY_MS, 600000);
	table = calloc(BUCKETS, sizeof(*table));
	if (!table) {
		perror("kalloc_demo: calloc");
		return 1;
	}
	for (uint64_t key = 0; key < ENTRIES; key++)
		insert(key);
	show("1. built a hash table of 750000 entries: pages faulted in on first touch");

	delete_from(ENTRIES / 2);
	show("2. deleted the newer half: freed, but still resident until purged");

	malloc_trim(0);
	show("3. malloc_trim(0): the free spans handed back to the kernel");

	printf("\n%zu entries left, all intact\n", check());
	return 0;
}
