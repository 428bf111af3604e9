/* SPDX-License-Identifier: MIT */
/*
 * Under an address-space limit (ulimit -v), as many huge blocks as glibc
 * serves: with 1 GiB of address space over what the process has mapped
 * at start, untouched 100 MiB blocks until malloc fails, then 1000-byte
 * ones.  Prints the counts; run.sh runs it with and without LD_PRELOAD and
 * compares.  huge.c's room to grow would otherwise spend 2.56 times each
 * block's size of the limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static unsigned long vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;

	if (!f || fscanf(f, "%lu", &pages) != 1)
		pages = 0;
	if (f)
		fclose(f);
	return pages * 4096;
}

int main(void)
{
	static void *big[64];
	struct rlimit as;
	int nbig = 0;

	free(malloc(1));	/* the allocator set up before the limit */
	as.rlim_cur = as.rlim_max = vm_size() + (1UL << 30);
	if (setrlimit(RLIMIT_AS, &as) != 0) {
		perror("setrlimit");
		return 1;
	}
	while (nbig < 64 && (big[nbig] = malloc(100 << 20)))
		nbig++;
	int nsmall = 0;
	while (nsmall < 10000 && malloc(1000))
		nsmall++;
	printf("100 MiB blocks: %d, then 1000-byte blocks: %s\n", nbig,
	       nsmall == 10000 ? "10000 or more" : "fewer than 10000");
	return 0;
}
