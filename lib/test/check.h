/* SPDX-License-Identifier: MIT */
/* A minimal harness: a table of named cases; run.sh runs each by name. */
#ifndef KA_CHECK_H
#define KA_CHECK_H

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
