// SPDX-License-Identifier: GPL-2.0
/*
 * The device and /proc/kalloc exist, answer, and start from zero.
 */
#include "kalloc_test.h"
#include "kselftest_harness.h"

TEST(device_opens)
{
	int fd = kt_open();

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", KALLOC_DEVICE, strerror(errno));
	close(fd);
}

TEST(version_reports_abi_and_limits)
{
	struct kalloc_version v = { .argsz = sizeof(v) };
	int fd = kt_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_ioctl(fd, KALLOC_IOC_VERSION, &v));
	EXPECT_EQ(KALLOC_ABI_VERSION, v.abi);
	EXPECT_EQ(0, v.major);
	EXPECT_LE(9, v.max_order) TH_LOG("max_order %u", v.max_order);
	EXPECT_EQ(kt_param("fault_around"), v.fault_around);
	close(fd);
}

TEST(proc_kalloc_shows_version_and_header)
{
	char line[256];
	int saw_version = 0, saw_header = 0;
	FILE *f = fopen(KALLOC_PROC, "r");

	ASSERT_NE(NULL, f) TH_LOG("open %s: %s", KALLOC_PROC, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "version ", 8))
			saw_version = 1;
		if (!strcmp(line, "id pid comm backing order node size_pages resident_pages faults mappings pmd_pages\n"))
			saw_header = 1;
	}
	fclose(f);
	EXPECT_TRUE(saw_version);
	EXPECT_TRUE(saw_header);
	EXPECT_EQ(KALLOC_ABI_VERSION, kt_proc_total("abi"));
}

TEST(proc_kalloc_totals_start_at_zero)
{
	/* Each VM run loads a fresh module; no test before this one maps memory. */
	EXPECT_EQ(0, kt_proc_total("regions"));
	EXPECT_EQ(0, kt_proc_total("resident_pages"));
	EXPECT_EQ(0, kt_proc_total("resident_vmalloc"));
}

TEST_HARNESS_MAIN
