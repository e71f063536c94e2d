// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg bus over Arm FF-A.
 *
 * Binds to FF-A partitions that implement virtio-msg devices (Arm DEN0153,
 * partition UUID c66028b5-2498-4aa1-9de7-77da6122abf0).  This is the
 * module's skeleton: it claims the partitions so that udev loads it, and
 * tells the administrator that the FF-A transfer paths are not in this
 * release yet.
 */
#define pr_fmt(fmt) "virtio-msg-ffa: " fmt

#include <linux/arm_ffa.h>
#include <linux/module.h>

#define VMSG_FFA_UUID \
	UUID_INIT(0xc66028b5, 0x2498, 0x4aa1, \
		  0x9d, 0xe7, 0x77, 0xda, 0x61, 0x22, 0xab, 0xf0)

static int vmsg_ffa_probe(struct ffa_device *ffa_dev)
{
	dev_info(&ffa_dev->dev,
		 "virtio-msg partition %#x found; the FF-A bus is not supported by this release\n",
		 ffa_dev->vm_id);
	return -EOPNOTSUPP;
}

static void vmsg_ffa_remove(struct ffa_device *ffa_dev)
{
}

static const struct ffa_device_id vmsg_ffa_ids[] = {
	{ .uuid = VMSG_FFA_UUID },
	{}
};

static struct ffa_driver vmsg_ffa_driver = {
	.name		= "virtio-msg-ffa",
	.probe		= vmsg_ffa_probe,
	.remove		= vmsg_ffa_remove,
	.id_table	= vmsg_ffa_ids,
};
module_ffa_driver(vmsg_ffa_driver);

/* modpost has no FF-A device-table handler: spell the alias out. */
MODULE_ALIAS("arm_ffa:*:c66028b5-2498-4aa1-9de7-77da6122abf0");
MODULE_DESCRIPTION("virtio-msg bus over Arm FF-A");
MODULE_LICENSE("GPL");
MODULE_VERSION(VIRTIO_MSG_DKMS_VERSION);
