// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/kalloc: totals, then one row per region.  The format is an ABI,
 * documented in Documentation/ABI/testing/procfs-kalloc and parsed by
 * tools/kallocstat: "key value" lines, a blank line, a header line, rows.
 * Root sees every row; others see the rows of their own uid.  No kernel
 * pointers are shown.
 *
 * A seq_file iterator: the totals are the first record, then one record
 * per region.  The position is a cursor into the regions' xarray (the
 * region's list index + 1), so a read resumes where it stopped, the walk
 * is never restarted from the top when the buffer grows, and no lock is
 * held across it: each step finds the next region under RCU and pins it
 * (kalloc_region_next_listed()) until the next step or ->stop.  CREATE and
 * the last put of a region never wait for a reader.  A read is not a
 * snapshot: regions created or freed meanwhile may or may not show.
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

/* One region's row; SEQ_SKIP for a region the reader may not see. */
static int kalloc_proc_row(struct seq_file *m, struct kalloc_region *region)
{
	const struct cred *cred = m->file->f_cred;
	char comm[TASK_COMM_LEN];
	int i;

	if (!uid_eq(cred->euid, GLOBAL_ROOT_UID) &&
	    !uid_eq(cred->euid, region->uid))
		return SEQ_SKIP;
	/* one word per field: whitespace and odd bytes in comm become '_' */
	for (i = 0; i < TASK_COMM_LEN - 1 && region->comm[i]; i++)
		comm[i] = isgraph(region->comm[i]) ? region->comm[i] : '_';
	comm[i] = '\0';
	/* the owner's pid as the reader's /proc counts them: 0 if not there */
	seq_printf(m, "%u %d %s %s %u %d %lu %lu %ld %d %lu\n",
		   region->id,
		   pid_nr_ns(READ_ONCE(region->owner_pid),
			     proc_pid_ns(file_inode(m->file)->i_sb)),
		   i ? comm : "_",
		   kalloc_backing_names[region->backing], region->order,
		   region->node, region->nr_pages,
		   atomic_long_read(&region->resident),
		   atomic_long_read(&region->faults),
		   atomic_read(&region->mappings),
		   kalloc_region_pmd_pages(region));
	return 0;
}

/* The totals, and the header of the rows. */
static void kalloc_proc_totals(struct seq_file *m)
{
	struct kalloc_fault_stats faults;
	int nid;

	kalloc_fault_stats_sum(&faults);
	seq_printf(m, "version %s\n", KALLOC_VERSION_STRING);
	seq_printf(m, "abi %d\n", KALLOC_ABI_VERSION);
	seq_printf(m, "regions %ld\n", atomic_long_read(&kalloc_totals.regions));
	seq_printf(m, "resident_vmalloc %ld\n",
		   atomic_long_read(&kalloc_totals.resident[KALLOC_BACKING_VMALLOC]));
	seq_printf(m, "resident_pages %ld\n",
		   atomic_long_read(&kalloc_totals.resident[KALLOC_BACKING_PAGES]));
	seq_printf(m, "faults %lu\n", faults.faults);
	seq_printf(m, "releases %ld\n", atomic_long_read(&kalloc_totals.releases));
	seq_printf(m, "high_water %ld\n",
		   atomic_long_read(&kalloc_totals.high_water));
	seq_printf(m, "max_pages %lu\n", READ_ONCE(kalloc_max_pages));
	seq_printf(m, "max_region_pages %lu\n", READ_ONCE(kalloc_max_region_pages));
	seq_printf(m, "fault_around %u\n", READ_ONCE(kalloc_fault_around));
	for_each_online_node(nid)
		seq_printf(m, "node%d_resident %ld\n", nid,
			   kalloc_node_resident(nid));
	seq_printf(m, "max_user_pages %lu\n", READ_ONCE(kalloc_max_user_pages));
	kalloc_users_show(m);
	seq_printf(m, "fault_lock_waits %lu\n", faults.lock_waits);
	seq_printf(m, "fault_lock_wait_ns %llu\n", faults.lock_wait_ns);
	seq_printf(m, "fault_lock_holds %lu\n", faults.lock_holds);
	seq_printf(m, "fault_lock_hold_ns %llu\n", faults.lock_hold_ns);
	seq_printf(m, "faults_vma_locked %lu\n", faults.vma_locked);
	seq_printf(m, "pinned_pages %lu\n", kalloc_pinned_pages());
	seq_puts(m, "\nid pid comm backing order node size_pages resident_pages faults mappings pmd_pages\n");
}

/* The region at or after position *@pos, pinned, with *@pos moved to it. */
static void *kalloc_proc_start(struct seq_file *m, loff_t *pos)
{
	struct kalloc_region *region;
	unsigned long index;

	if (!*pos)
		return SEQ_START_TOKEN;
	index = *pos - 1;
	region = kalloc_region_next_listed(&index);
	if (region)
		*pos = index + 1;
	return region;
}

static void *kalloc_proc_next(struct seq_file *m, void *v, loff_t *pos)
{
	struct kalloc_region *region = v;
	unsigned long index = 0;

	if (v != SEQ_START_TOKEN) {
		index = region->list_index + 1;
		kalloc_region_put(region);
	}
	region = kalloc_region_next_listed(&index);
	if (region)
		*pos = index + 1;
	else
		++*pos;
	return region;
}

static void kalloc_proc_stop(struct seq_file *m, void *v)
{
	if (v && v != SEQ_START_TOKEN)
		kalloc_region_put(v);
}

static int kalloc_proc_show(struct seq_file *m, void *v)
{
	if (v == SEQ_START_TOKEN) {
		kalloc_proc_totals(m);
		return 0;
	}
	return kalloc_proc_row(m, v);
}

static const struct seq_operations kalloc_proc_ops = {
	.start = kalloc_proc_start,
	.next = kalloc_proc_next,
	.stop = kalloc_proc_stop,
	.show = kalloc_proc_show,
};

int kalloc_proc_init(void)
{
	return proc_create_seq("kalloc", 0444, NULL, &kalloc_proc_ops) ?
	       0 : -ENOMEM;
}

void kalloc_proc_exit(void)
{
	remove_proc_entry("kalloc", NULL);
}
