/* SPDX-License-Identifier: MIT */
/* A minimal harness: a table of named cases; run.sh runs each by name. */
#ifndef KA_CHECK_H
#define KA_CHECK_H

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);					\
		fputc('\n', stderr);						\
		exit(1);							\
	}									\
} while (0)

/*
 * mallinfo() and mallinfo2() report liballoc's blocks: a 100000-byte block
 * shows in both (glibc's would read its own, empty, arena, or in a static
 * link pull in glibc's malloc.o and its second malloc).
 */
static inline void check_mallinfo_counts_a_block(void)
{
	static void *volatile kept;	/* a block the compiler may not elide */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo a = mallinfo();
	kept = malloc(100000);
	struct mallinfo b = mallinfo();
#pragma GCC diagnostic pop
	struct mallinfo2 c = mallinfo2();
	CHECK(b.uordblks >= a.uordblks + 100000, "mallinfo counts the block (%d -> %d)",
	      a.uordblks, b.uordblks);
	CHECK(b.arena >= b.uordblks && c.arena >= c.uordblks, "arena %d holds what is in use %d",
	      b.arena, b.uordblks);
	CHECK(c.uordblks >= (size_t)b.uordblks, "mallinfo2 agrees");
	free(kept);
}

struct check_case {
	const char *name;
	const char *what;	/* the behaviour the case proves; NULL: a helper
				   that another case runs in a child process */
	void (*fn)(void);
};

/* "list" prints name<TAB>what per case but helpers; a name runs that case. */
static inline int check_main(const struct check_case *cases, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "list") == 0) {
		for (const struct check_case *c = cases; c->name; c++)
			if (c->what)
				printf("%s\t%s\n", c->name, c->what);
		return 0;
	}
	for (const struct check_case *c = cases; c->name; c++) {
		if (strcmp(c->name, argv[1]) == 0) {
			c->fn();
			return 0;
		}
	}
	fprintf(stderr, "no case %s\n", argv[1]);
	return 2;
}

#endif
