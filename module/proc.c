// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/kalloc: totals, then one row per region.  The format is an ABI,
 * documented in Documentation/ABI/testing/procfs-kalloc and parsed by
 * tools/kallocstat: "key value" lines, a blank line, a header line, rows.
 * Root sees every row; others see the rows of their own uid.  No kernel
 * pointers are shown.
 */
#include <linux/cred.h>
#include <linux/nodemask.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include "kalloc.h"

static const char *const kalloc_backing_names[] = {
	[KALLOC_BACKING_VMALLOC] = "vmalloc",
	[KALLOC_BACKING_PAGES] = "pages",
};

static void kalloc_proc_row(struct kalloc_region *region, void *arg)
{
	struct seq_file *m = arg;
	const struct cred *cred = m->file->f_cred;
	char comm[TASK_COMM_LEN];
	int i;

	if (!uid_eq(cred->euid, GLOBAL_ROOT_UID) &&
	    !uid_eq(cred->euid, region->uid))
		return;
	/* one word per field: whitespace and odd bytes in comm become '_' */
	for (i = 0; i < TASK_COMM_LEN - 1 && region->comm[i]; i++)
		comm[i] = isgraph(region->comm[i]) ? region->comm[i] : '_';
	comm[i] = '\0';
	seq_printf(m, "%u %d %s %s %u %d %lu %lu %ld %d\n",
		   region->id, region->tgid, i ? comm : "_",
		   kalloc_backing_names[region->backing], region->order,
		   region->node, region->nr_pages, READ_ONCE(region->resident),
		   atomic_long_read(&region->faults),
		   atomic_read(&region->mappings));
}

static int kalloc_proc_show(struct seq_file *m, void *v)
{
	int nid;

	seq_printf(m, "version %s\n", KALLOC_VERSION_STRING);
	seq_printf(m, "abi %d\n", KALLOC_ABI_VERSION);
	seq_printf(m, "regions %ld\n", atomic_long_read(&kalloc_totals.regions));
	seq_printf(m, "resident_vmalloc %ld\n",
		   atomic_long_read(&kalloc_totals.resident[KALLOC_BACKING_VMALLOC]));
	seq_printf(m, "resident_pages %ld\n",
		   atomic_long_read(&kalloc_totals.resident[KALLOC_BACKING_PAGES]));
	seq_printf(m, "faults %ld\n", atomic_long_read(&kalloc_totals.faults));
	seq_printf(m, "releases %ld\n", atomic_long_read(&kalloc_totals.releases));
	seq_printf(m, "high_water %ld\n",
		   atomic_long_read(&kalloc_totals.high_water));
	seq_printf(m, "max_pages %lu\n", READ_ONCE(kalloc_max_pages));
	seq_printf(m, "max_region_pages %lu\n", READ_ONCE(kalloc_max_region_pages));
	seq_printf(m, "fault_around %u\n", READ_ONCE(kalloc_fault_around));
	for_each_online_node(nid)
		seq_printf(m, "node%d_resident %ld\n", nid,
			   atomic_long_read(&kalloc_totals.node_resident[nid]));
	seq_printf(m, "max_user_pages %lu\n", READ_ONCE(kalloc_max_user_pages));
	kalloc_users_show(m);
	seq_puts(m, "\nid pid comm backing order node size_pages resident_pages faults mappings\n");
	kalloc_regions_for_each(kalloc_proc_row, m);
	return 0;
}

int kalloc_proc_init(void)
{
	return proc_create_single("kalloc", 0444, NULL, kalloc_proc_show) ?
	       0 : -ENOMEM;
}

void kalloc_proc_exit(void)
{
	remove_proc_entry("kalloc", NULL);
}
