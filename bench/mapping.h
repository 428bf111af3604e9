/* SPDX-License-Identifier: MIT */
/*
 * What the fault-path programs (fault, fault-parallel, mapped-memory)
 * share: failing with a message, the process's minor faults, a one-line
 * sysfs read, and anonymous memory placed for huge pages.  The including
 * program defines BENCH_PROG, its name for messages, first.
 */
#ifndef BENCH_MAPPING_H
#define BENCH_MAPPING_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define HUGE_ALIGN	((size_t)2 << 20)

static inline void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, BENCH_PROG ": %s: %s\n", what, strerror(errno));
	exit(1);
}

static inline long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* The first line of @path, without its newline, quotes or backslashes (for JSON). */
static inline void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n\"\\")] = 0;
}

/*
 * Anonymous memory at a 2 MiB boundary, so that THP can back all of it
 * (kernels before 6.7 do not align large anonymous mappings themselves).
 */
static inline char *map_anon_aligned(size_t size)
{
	char *raw = mmap(NULL, size + HUGE_ALIGN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start;
	size_t head;

	if (raw == MAP_FAILED)
		die("mmap");
	start = ((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1);
	head = start - (uintptr_t)raw;
	if (head && munmap(raw, head))
		die("munmap");
	if (HUGE_ALIGN - head && munmap((char *)start + size, HUGE_ALIGN - head))
		die("munmap");
	return (char *)start;
}

#endif /* BENCH_MAPPING_H */
