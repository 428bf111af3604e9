// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl ABI: each call's normal path, and every bad input refused
 * with the documented errno and nothing created or lost.
 */
#include "kalloc_test.h"
#include "kselftest_harness.h"

FIXTURE(dev) {
	int fd;
	long regions_before;
};

FIXTURE_VARIANT(dev) {
	unsigned int backing;
	unsigned int order;
};

FIXTURE_VARIANT_ADD(dev, vmalloc) {
	.backing = KALLOC_BACKING_VMALLOC,
	.order = 0,
};

FIXTURE_VARIANT_ADD(dev, pages0) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 0,
};

FIXTURE_VARIANT_ADD(dev, pages4) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 4,
};

FIXTURE_SETUP(dev)
{
	self->fd = kt_open();
	ASSERT_LE(0, self->fd) TH_LOG("open: %s", strerror(errno));
	self->regions_before = kt_proc_total("regions");
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

/* A region size that suits the variant: @blocks blocks of its order. */
static unsigned long long vsize(const FIXTURE_VARIANT(dev) *v, int blocks)
{
	return (unsigned long long)blocks * (KT_PAGE << v->order);
}

TEST_F(dev, create_info_destroy)
{
	struct kalloc_create c;
	struct kalloc_info info;
	int i;

	ASSERT_EQ(0, kt_create(self->fd, vsize(variant, 4), variant->backing,
			       variant->order, KALLOC_NODE_LOCAL, &c));
	EXPECT_NE(0, c.id);
	EXPECT_EQ((unsigned long long)c.id << KALLOC_REGION_WINDOW_SHIFT, c.offset);
	EXPECT_EQ(self->regions_before + 1, kt_proc_total("regions"));

	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(vsize(variant, 4), info.size);
	EXPECT_EQ(variant->backing, info.backing);
	EXPECT_EQ(variant->order, info.order);
	EXPECT_EQ(KALLOC_NODE_LOCAL, info.node);
	EXPECT_EQ(0, info.mappings);
	EXPECT_EQ(0, info.faults);
	if (variant->backing == KALLOC_BACKING_VMALLOC) {
		EXPECT_EQ(vsize(variant, 4) / KT_PAGE, info.resident);
	} else {
		EXPECT_EQ(0, info.resident);
	}
	unsigned long long by_node = 0;
	for (i = 0; i < KALLOC_MAX_NODES; i++)
		by_node += info.resident_node[i];
	EXPECT_EQ(info.resident, by_node);

	ASSERT_EQ(0, kt_destroy(self->fd, c.id));
	EXPECT_EQ(-ENOENT, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(-ENOENT, kt_destroy(self->fd, c.id));
	EXPECT_EQ(self->regions_before, kt_proc_total("regions"));
}

TEST_F(dev, ids_are_distinct)
{
	struct kalloc_create a, b;

	ASSERT_EQ(0, kt_create(self->fd, vsize(variant, 1), variant->backing,
			       variant->order, -1, &a));
	ASSERT_EQ(0, kt_create(self->fd, vsize(variant, 1), variant->backing,
			       variant->order, -1, &b));
	EXPECT_NE(a.id, b.id);
	EXPECT_NE(a.offset, b.offset);
}

TEST_F(dev, size_rounds_up_to_pages)
{
	struct kalloc_create c;
	struct kalloc_info info;

	if (variant->order)
		SKIP(return, "order-%u regions take whole blocks", variant->order);
	ASSERT_EQ(0, kt_create(self->fd, KT_PAGE + 1, variant->backing, 0, -1, &c));
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(2 * KT_PAGE, info.size);
}

TEST_F(dev, bad_create_is_refused)
{
	struct kalloc_version v = { .argsz = sizeof(v) };
	struct kalloc_create c;
	unsigned long long sz = vsize(variant, 1);
	unsigned int b = variant->backing, o = variant->order;

	ASSERT_EQ(0, kt_ioctl(self->fd, KALLOC_IOC_VERSION, &v));
	EXPECT_EQ(-EINVAL, kt_create(self->fd, 0, b, o, -1, &c)) TH_LOG("size 0");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, 1ULL << 63, b, o, -1, &c)) TH_LOG("size 2^63");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, ~0ULL, b, o, -1, &c)) TH_LOG("size ~0");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, (1ULL << KALLOC_REGION_WINDOW_SHIFT) + KT_PAGE,
				     b, o, -1, &c)) TH_LOG("size past the window");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, 0, o, -1, &c)) TH_LOG("backing 0");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, 3, o, -1, &c)) TH_LOG("backing 3");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, b, v.max_order + 1, -1, &c)) TH_LOG("order too big");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, b, 99, -1, &c)) TH_LOG("order 99");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, b, o, 1000, &c)) TH_LOG("node 1000");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, b, o, 63, &c)) TH_LOG("offline node 63");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, b, o, -2, &c)) TH_LOG("node -2");
	EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, b, o, (int)0x80000000, &c)) TH_LOG("node INT_MIN");
	if (b == KALLOC_BACKING_VMALLOC) {
		EXPECT_EQ(-EINVAL, kt_create(self->fd, sz, b, 1, -1, &c)) TH_LOG("vmalloc with an order");
		EXPECT_EQ(-ENOMEM, kt_create(self->fd, 1ULL << 39, b, 0, -1, &c))
			TH_LOG("vmalloc larger than RAM");
	}
	if (o) {
		EXPECT_EQ(-EINVAL, kt_create(self->fd, sz + KT_PAGE, b, o, -1, &c))
			TH_LOG("not a whole number of blocks");
	}

	memset(&c, 0, sizeof(c));
	c.argsz = sizeof(c);
	c.size = sz;
	c.backing = b;
	c.order = o;
	c.node = -1;
	c.flags = 1;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KALLOC_IOC_CREATE, &c)) TH_LOG("flags 1");
	c.flags = 0x80000000;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KALLOC_IOC_CREATE, &c)) TH_LOG("flags high bit");
	c.flags = 0;
	c.argsz = sizeof(c) - 8;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KALLOC_IOC_CREATE, &c)) TH_LOG("argsz too small");
	c.argsz = 0;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KALLOC_IOC_CREATE, &c)) TH_LOG("argsz 0");
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KALLOC_IOC_CREATE, (void *)8)) TH_LOG("bad pointer");

	EXPECT_EQ(self->regions_before, kt_proc_total("regions")) TH_LOG("a refused create left a region");
}

TEST_F(dev, larger_struct_must_be_zero_past_ours)
{
	struct {
		struct kalloc_create c;
		unsigned long long future;
	} big;

	memset(&big, 0, sizeof(big));
	big.c.argsz = sizeof(big);
	big.c.size = vsize(variant, 1);
	big.c.backing = variant->backing;
	big.c.order = variant->order;
	big.c.node = -1;
	EXPECT_EQ(0, kt_ioctl(self->fd, KALLOC_IOC_CREATE, &big));
	EXPECT_NE(0, big.c.id);
	big.c.id = 0;
	big.c.offset = 0;
	big.future = 1;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KALLOC_IOC_CREATE, &big));
}

/*
 * argsz past a page is E2BIG, whatever follows: the module does not scan
 * the caller's memory for zeroes up to argsz (up to 4 GiB).  Here the
 * struct is followed by zeroes up to argsz, which a scan would accept.
 */
TEST_F(dev, argsz_past_a_page_is_e2big)
{
	size_t len = 4 * KT_PAGE;
	struct kalloc_create *c;
	unsigned char *buf;

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	c = (struct kalloc_create *)buf;
	c->size = vsize(variant, 1);
	c->backing = variant->backing;
	c->order = variant->order;
	c->node = KALLOC_NODE_LOCAL;

	c->argsz = KT_PAGE;
	EXPECT_EQ(0, kt_ioctl(self->fd, KALLOC_IOC_CREATE, c)) TH_LOG("argsz of a page, zero tail");
	c->id = 0;
	c->offset = 0;
	c->argsz = KT_PAGE + 1;
	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KALLOC_IOC_CREATE, c)) TH_LOG("argsz a page + 1, zero tail");
	c->id = 0;
	c->offset = 0;
	c->argsz = len;
	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KALLOC_IOC_CREATE, c)) TH_LOG("argsz 4 pages, zero tail");
	c->id = 0;
	c->offset = 0;
	c->argsz = 0xffffffffu;
	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KALLOC_IOC_CREATE, c)) TH_LOG("argsz 4 GiB - 1");
	EXPECT_EQ(self->regions_before + 1, kt_proc_total("regions")) TH_LOG("a region was created past a page of argsz");
	munmap(buf, len);
}

TEST_F(dev, bad_release_is_refused)
{
	struct kalloc_create c;
	unsigned long long sz = vsize(variant, 2);

	ASSERT_EQ(0, kt_create(self->fd, sz, variant->backing, variant->order, -1, &c));
	EXPECT_EQ(-ENOENT, kt_release(self->fd, c.id + 1000, 0, KT_PAGE)) TH_LOG("unknown id");
	EXPECT_EQ(-ENOENT, kt_release(self->fd, 0, 0, KT_PAGE)) TH_LOG("id 0");
	EXPECT_EQ(-EINVAL, kt_release(self->fd, c.id, 1, KT_PAGE)) TH_LOG("unaligned offset");
	EXPECT_EQ(-EINVAL, kt_release(self->fd, c.id, 0, KT_PAGE - 1)) TH_LOG("unaligned length");
	EXPECT_EQ(-EINVAL, kt_release(self->fd, c.id, 0, 0)) TH_LOG("length 0");
	EXPECT_EQ(-EINVAL, kt_release(self->fd, c.id, sz, KT_PAGE)) TH_LOG("offset at the end");
	EXPECT_EQ(-EINVAL, kt_release(self->fd, c.id, 0, sz + KT_PAGE)) TH_LOG("past the end");
	EXPECT_EQ(-EINVAL, kt_release(self->fd, c.id, KT_PAGE, ~0ULL & ~(KT_PAGE - 1)))
		TH_LOG("offset + length overflows");
	EXPECT_EQ(-EINVAL, kt_release(self->fd, c.id, ~0ULL & ~(KT_PAGE - 1), KT_PAGE))
		TH_LOG("huge offset");
	EXPECT_EQ(0, kt_release(self->fd, c.id, 0, sz)) TH_LOG("the whole region");
}

TEST_F(dev, unknown_ioctls_are_enotty)
{
	char buf[64] = { 0 };

	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOWR('K', 99, struct kalloc_info), buf));
	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOWR('Q', 1, struct kalloc_create), buf));
	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IO('K', 1), buf));
	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, 0, buf));
}

TEST_F(dev, info_and_destroy_of_unknown_ids)
{
	struct kalloc_info info;

	EXPECT_EQ(-ENOENT, kt_info(self->fd, 0, &info));
	EXPECT_EQ(-ENOENT, kt_info(self->fd, 123456, &info));
	EXPECT_EQ(-ENOENT, kt_destroy(self->fd, 0));
	EXPECT_EQ(-ENOENT, kt_destroy(self->fd, ~0U));
}

TEST_F(dev, ids_belong_to_their_file)
{
	struct kalloc_create c;
	struct kalloc_info info;
	int other = kt_open();

	ASSERT_LE(0, other);
	ASSERT_EQ(0, kt_create(self->fd, vsize(variant, 1), variant->backing,
			       variant->order, -1, &c));
	EXPECT_EQ(-ENOENT, kt_info(other, c.id, &info));
	EXPECT_EQ(-ENOENT, kt_release(other, c.id, 0, KT_PAGE));
	EXPECT_EQ(-ENOENT, kt_destroy(other, c.id));
	EXPECT_EQ(0, kt_info(self->fd, c.id, &info));
	close(other);
}

TEST_F(dev, close_frees_unmapped_regions)
{
	struct kalloc_create c;
	int fd = kt_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, vsize(variant, 2), variant->backing,
			       variant->order, -1, &c));
	EXPECT_EQ(self->regions_before + 1, kt_proc_total("regions"));
	close(fd);
	EXPECT_EQ(self->regions_before, kt_proc_total("regions"));
}

TEST_HARNESS_MAIN
