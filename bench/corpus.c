/* SPDX-License-Identifier: MIT */
/*
 * corpus: deterministic text for the real-program benchmarks (bench/run's
 * programs part), the same bytes for the same arguments on every machine.
 *
 *   corpus [-m bytes] [-r seed] > FILE
 *
 * Compressors and git must do real work on it: text of words drawn from a
 * seeded vocabulary of 8192 with a skewed (Zipf-like) frequency, so that
 * the match finders find many matches at every distance, with numbers and
 * identifiers (random digits and letters, which do not repeat) mixed in,
 * so that it is not trivially compressible (xz -6 gets it to about a third).
 * Lines are 2-16 words long, some indented, some blank; -m takes k/M/G.
 */
#include <inttypes.h>

#include "common.h"

#define VOCABULARY	8192
#define MAX_WORD	14

static uint64_t state;

/* splitmix64: seeded, portable, the same sequence everywhere. */
static uint64_t next(void)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned below(unsigned n)
{
	return (unsigned)((next() >> 32) * n >> 32);
}

static char words[VOCABULARY][MAX_WORD + 1];

static void make_vocabulary(void)
{
	static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";

	for (unsigned i = 0; i < VOCABULARY; i++) {
		unsigned len = 2 + below(5) + below(6);	/* 2-12, most 5-8 */

		for (unsigned j = 0; j < len; j++) {
			/* squared: frequent letters more frequent, as in text */
			unsigned r = below(26);

			words[i][j] = letters[r * r / 26];
		}
		words[i][len] = 0;
	}
}

/* A word index, small ones far more often: u^3 over the vocabulary. */
static unsigned pick(void)
{
	double u = (double)(next() >> 11) / (double)(1ULL << 53);

	return (unsigned)(u * u * u * VOCABULARY);
}

int main(int argc, char **argv)
{
	static char line[4096];
	long size = 24L << 20;
	unsigned long seed = 1;
	int c;

	while ((c = getopt(argc, argv, "m:r:h")) != -1) {
		switch (c) {
		case 'm': size = bench_num(argv[0], "", optarg); break;
		case 'r': seed = (unsigned long)bench_num(argv[0], "", optarg); break;
		default:
			fprintf(stderr, "usage: corpus [-m bytes] [-r seed] > FILE\n");
			return 2;
		}
	}
	state = seed;
	make_vocabulary();
	for (long done = 0; done < size;) {
		int n = 0;
		unsigned nwords = 2 + below(15);

		if (below(8) == 0)
			n += snprintf(line + n, sizeof line - n, "%*s", (int)(4 * (1 + below(3))), "");
		for (unsigned w = 0; w < nwords; w++) {
			unsigned kind = below(32);

			if (w)
				line[n++] = below(10) == 0 ? ',' : ' ';
			if (kind == 0)
				n += snprintf(line + n, sizeof line - n, "%" PRIu64, next() % 1000000);
			else if (kind == 1)
				n += snprintf(line + n, sizeof line - n, "%s_%04" PRIx64,
					      words[pick()], next() & 0xffff);
			else
				n += snprintf(line + n, sizeof line - n, "%s", words[pick()]);
		}
		line[n++] = below(4) == 0 ? '.' : ';';
		line[n++] = '\n';
		if (below(16) == 0)
			line[n++] = '\n';
		if (n > size - done)
			n = (int)(size - done);
		if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n) {
			perror("corpus: write");
			return 1;
		}
		done += n;
	}
	if (fflush(stdout)) {
		perror("corpus: write");
		return 1;
	}
	return 0;
}
