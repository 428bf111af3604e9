// SPDX-License-Identifier: GPL-2.0
/*
 * A module that WARNs as it loads: tools/check boots it to prove that
 * kalloc-vm fails a run whose guest printed a warning, and says why.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init warn_on_load_init(void)
{
	WARN_ON(1);
	return 0;
}

static void __exit warn_on_load_exit(void)
{
}

module_init(warn_on_load_init);
module_exit(warn_on_load_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test fixture: WARN_ON(1) at load");
