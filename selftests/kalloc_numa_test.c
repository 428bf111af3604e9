// SPDX-License-Identifier: GPL-2.0
/*
 * NUMA placement: a region's pages are on the node it asked for, or, for
 * node -1, on the node of the CPU that faults (PAGES) or creates (VMALLOC)
 * them.  Checked three ways: KALLOC_IOC_INFO's resident_node, the kernel's
 * own answer for each page (move_pages() with no target nodes reports where
 * pages are), and /proc/kalloc's per-node totals.
 *
 * Needs a guest with two nodes (tools/kalloc-vm --numa 2); skipped on one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

#define NODE1_DIR	"/sys/devices/system/node/node1"
#define PAGES		256UL

FIXTURE(numa) {
	int fd;
	long node_resident[2];	/* /proc/kalloc's node totals at setup */
};

FIXTURE_VARIANT(numa) {
	unsigned int backing;
	unsigned int order;
	int node;
};

FIXTURE_VARIANT_ADD(numa, pages_node0) {
	.backing = KALLOC_BACKING_PAGES, .order = 0, .node = 0,
};

FIXTURE_VARIANT_ADD(numa, pages_node1) {
	.backing = KALLOC_BACKING_PAGES, .order = 0, .node = 1,
};

FIXTURE_VARIANT_ADD(numa, pages4_node1) {
	.backing = KALLOC_BACKING_PAGES, .order = 4, .node = 1,
};

FIXTURE_VARIANT_ADD(numa, vmalloc_node0) {
	.backing = KALLOC_BACKING_VMALLOC, .order = 0, .node = 0,
};

FIXTURE_VARIANT_ADD(numa, vmalloc_node1) {
	.backing = KALLOC_BACKING_VMALLOC, .order = 0, .node = 1,
};

static long node_total(int node)
{
	char key[32];

	snprintf(key, sizeof(key), "node%d_resident", node);
	return kt_proc_total(key);
}

FIXTURE_SETUP(numa)
{
	if (access(NODE1_DIR, F_OK))
		SKIP(return, "one NUMA node: run in a guest with --numa 2");
	self->fd = kt_open();
	ASSERT_LE(0, self->fd);
	self->node_resident[0] = node_total(0);
	self->node_resident[1] = node_total(1);
	ASSERT_LE(0, self->node_resident[0]) TH_LOG("/proc/kalloc has no node0_resident");
	ASSERT_LE(0, self->node_resident[1]) TH_LOG("/proc/kalloc has no node1_resident");
}

FIXTURE_TEARDOWN(numa)
{
	if (self->fd > 0)
		close(self->fd);
}

/*
 * How many of the @n pages at @p are on @node, by the kernel's own
 * account; the first one found elsewhere is reported in *@other (its node
 * or a negative errno).  -1 if move_pages() fails.
 */
static long pages_on_node(unsigned char *p, unsigned long n, int node,
			  unsigned long *where, int *other)
{
	void **pages = calloc(n, sizeof(*pages));
	int *status = calloc(n, sizeof(*status));
	long on = 0;

	*other = node;
	*where = 0;
	if (!pages || !status)
		return -1;
	for (unsigned long i = 0; i < n; i++) {
		pages[i] = p + i * KT_PAGE;
		status[i] = -1000;
	}
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0)) {
		on = -1;
		goto out;
	}
	for (unsigned long i = 0; i < n; i++) {
		if (status[i] == node) {
			on++;
		} else if (*other == node) {
			*other = status[i];
			*where = i;
		}
	}
out:
	free(pages);
	free(status);
	return on;
}

/* The first CPU of @node, or -1. */
static int first_cpu_of(int node)
{
	char path[96];
	int cpu = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &cpu) != 1)
		cpu = -1;
	fclose(f);
	return cpu;
}

/* Every page of a region of @node resident, on @node, in every count. */
static void expect_placed(struct __test_metadata *_metadata,
			  FIXTURE_DATA(numa) *self, const struct kalloc_create *c,
			  unsigned char *p, int node)
{
	struct kalloc_info info;
	unsigned long where;
	int other;
	long on;

	ASSERT_EQ(0, kt_info(self->fd, c->id, &info));
	EXPECT_EQ(PAGES, info.resident);
	EXPECT_EQ(info.resident, info.resident_node[node])
		TH_LOG("INFO: %llu of %llu resident pages on node %d (node %d has %llu)",
		       (unsigned long long)info.resident_node[node],
		       (unsigned long long)info.resident, node, !node,
		       (unsigned long long)info.resident_node[!node]);
	EXPECT_EQ(0, info.resident_node[!node]);

	on = pages_on_node(p, PAGES, node, &where, &other);
	ASSERT_LE(0, on) TH_LOG("move_pages: %s", strerror(errno));
	EXPECT_EQ((long)PAGES, on)
		TH_LOG("only %ld of %lu pages on node %d: page %lu is on %d",
		       on, PAGES, node, where, other);

	EXPECT_EQ(self->node_resident[node] + (long)PAGES, node_total(node))
		TH_LOG("/proc/kalloc node%d_resident is off", node);
	EXPECT_EQ(self->node_resident[!node], node_total(!node));
}

TEST_F(numa, explicit_node_is_where_the_pages_are)
{
	struct kalloc_create c;
	struct kalloc_info info;
	unsigned char *p;

	ASSERT_EQ(0, kt_create(self->fd, PAGES * KT_PAGE, variant->backing,
			       variant->order, variant->node, &c));
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(variant->node, info.node);
	p = kt_map(self->fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x11, PAGES * KT_PAGE);
	expect_placed(_metadata, self, &c, p, variant->node);

	/* released and touched again: still on the node */
	ASSERT_EQ(0, kt_release(self->fd, c.id, 0, PAGES / 2 * KT_PAGE));
	memset(p, 0x22, PAGES / 2 * KT_PAGE);
	expect_placed(_metadata, self, &c, p, variant->node);
	munmap(p, PAGES * KT_PAGE);
	close(self->fd);
	self->fd = kt_open();
	EXPECT_EQ(self->node_resident[0], node_total(0));
	EXPECT_EQ(self->node_resident[1], node_total(1));
}

struct pinned {
	int fd, cpu;
	unsigned int backing, order;
	struct kalloc_create c;
	unsigned char *p;
	int err;		/* 0, or what went wrong, negative */
	int ran_on;
};

/* Pinned to one CPU: create (a VMALLOC region is filled here), map, touch. */
static void *pinned_thread(void *arg)
{
	struct pinned *t = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		t->err = -errno;
		return NULL;
	}
	t->ran_on = sched_getcpu();
	t->err = kt_create(t->fd, PAGES * KT_PAGE, t->backing, t->order,
			   KALLOC_NODE_LOCAL, &t->c);
	if (t->err)
		return NULL;
	t->p = kt_map(t->fd, &t->c, 0);
	if (t->p == MAP_FAILED) {
		t->err = -errno;
		return NULL;
	}
	memset(t->p, 0x33, PAGES * KT_PAGE);
	if (sched_getcpu() != t->cpu)
		t->ran_on = sched_getcpu();
	return NULL;
}

TEST_F(numa, local_node_is_the_node_of_the_cpu)
{
	struct pinned t = {
		.fd = self->fd, .backing = variant->backing, .order = variant->order,
	};
	pthread_t thread;

	t.cpu = first_cpu_of(variant->node);
	if (t.cpu < 0)
		SKIP(return, "node %d has no CPU", variant->node);
	ASSERT_EQ(0, pthread_create(&thread, NULL, pinned_thread, &t));
	ASSERT_EQ(0, pthread_join(thread, NULL));
	ASSERT_EQ(0, t.err) TH_LOG("on CPU %d: %s", t.cpu, strerror(-t.err));
	ASSERT_EQ(t.cpu, t.ran_on) TH_LOG("the thread left its CPU");
	TH_LOG("node -1 from CPU %d, which is on node %d", t.cpu, variant->node);
	expect_placed(_metadata, self, &t.c, t.p, variant->node);
	munmap(t.p, PAGES * KT_PAGE);
}

TEST_F(numa, proc_node_totals_add_up_over_regions)
{
	struct kalloc_create a, b;
	unsigned char *pa, *pb;
	long sum;

	ASSERT_EQ(0, kt_create(self->fd, PAGES * KT_PAGE, variant->backing,
			       variant->order, 0, &a));
	ASSERT_EQ(0, kt_create(self->fd, 2 * PAGES * KT_PAGE, variant->backing,
			       variant->order, 1, &b));
	pa = kt_map(self->fd, &a, 0);
	pb = kt_map(self->fd, &b, 0);
	ASSERT_NE(MAP_FAILED, pa);
	ASSERT_NE(MAP_FAILED, pb);
	memset(pa, 1, PAGES * KT_PAGE);
	memset(pb, 1, 2 * PAGES * KT_PAGE);
	EXPECT_EQ(self->node_resident[0] + (long)PAGES, node_total(0));
	EXPECT_EQ(self->node_resident[1] + 2 * (long)PAGES, node_total(1));
	sum = node_total(0) + node_total(1);
	EXPECT_EQ(kt_proc_total("resident_pages") + kt_proc_total("resident_vmalloc"), sum)
		TH_LOG("node totals do not add up to the resident totals");
	munmap(pa, PAGES * KT_PAGE);
	munmap(pb, 2 * PAGES * KT_PAGE);
}

TEST_HARNESS_MAIN
