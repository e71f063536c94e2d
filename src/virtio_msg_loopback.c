// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg loopback bus.
 *
 * The devices of this bus are implemented by a process of the same
 * machine: it creates them with ioctls on /dev/virtio-msg-lb, maps the DMA
 * pool from that node, and answers the transport messages it reads from
 * the bus's /dev/virtio-msg-N (see uapi/linux/virtio_msg_loopback.h).
 *
 * The pool is the reserved-memory region with compatible
 * "virtio-msg,loopback" (or, for device trees made for the RFC series, the
 * node named "vmsglb"); without one, pool_size bytes are allocated when
 * the module loads, which also serves ACPI machines.  All virtqueue memory
 * is confined to it: the backend never sees other kernel memory.
 */
#define pr_fmt(fmt) "virtio-msg-loopback: " fmt

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/sizes.h>
#include <linux/uaccess.h>
#include <linux/virtio_msg_bus.h>

#include <uapi/linux/virtio_msg_loopback.h>

static char *wire_format = "spec";
module_param(wire_format, charp, 0444);
MODULE_PARM_DESC(wire_format,
		 "Message format: \"spec\" (8-byte header with token, default) or \"rfc1\" (6-byte header of the RFC v1 series)");

static unsigned int max_msg_size;
module_param(max_msg_size, uint, 0444);
MODULE_PARM_DESC(max_msg_size,
		 "Largest message on the bus (default 264, or 44 with wire_format=rfc1)");

static unsigned long pool_size = SZ_16M;
module_param(pool_size, ulong, 0444);
MODULE_PARM_DESC(pool_size,
		 "Bytes of DMA pool to allocate when the device tree has none (default 16 MiB)");

static unsigned int max_devices = 64;
module_param(max_devices, uint, 0444);
MODULE_PARM_DESC(max_devices, "Most devices on the bus (default 64)");

#define VMSG_LB_DEFAULT_MSG_SIZE	264
#define VMSG_LB_RFC1_MSG_SIZE		44
#define VMSG_LB_MIN_POOL_SIZE		SZ_256K

struct vmsg_lb {
	struct platform_device *pdev;
	struct virtio_msg_pool *pool;
	struct virtio_msg_bus bus;
	struct miscdevice misc;
	/* Serialises ADD so that max_devices holds. */
	struct mutex add_lock;
};

static struct vmsg_lb *vmsg_lb;

static const struct virtio_msg_bus_ops vmsg_lb_bus_ops = {
	.send	= virtio_msg_user_send,
	.cancel	= virtio_msg_user_cancel,
};

static int vmsg_lb_add(struct vmsg_lb *lb, u32 dev_num)
{
	guard(mutex)(&lb->add_lock);
	if (virtio_msg_bus_num_devices(&lb->bus) >= max_devices)
		return -ENOSPC;
	return virtio_msg_bus_add_device(&lb->bus, dev_num);
}

static int vmsg_lb_info(struct vmsg_lb *lb, void __user *argp)
{
	struct virtio_msg_lb_info info = {
		.pool_size = virtio_msg_pool_size(lb->pool),
		.bus_addr_base = virtio_msg_pool_bus_base(lb->pool),
		.wire_format = lb->bus.format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ?
			       VIRTIO_MSG_WIRE_RFC1 : VIRTIO_MSG_WIRE_SPEC,
		.max_msg_size = lb->bus.max_msg_size,
		.num_devices = virtio_msg_bus_num_devices(&lb->bus),
		.max_devices = max_devices,
		.pool_in_use = virtio_msg_pool_in_use(lb->pool),
		.features = VIRTIO_MSG_LB_F_VRING_FDS,
	};

	strscpy(info.msg_dev_name, virtio_msg_user_name(&lb->bus),
		sizeof(info.msg_dev_name));
	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static long vmsg_lb_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct vmsg_lb *lb = vmsg_lb;
	void __user *argp = (void __user *)arg;
	struct virtio_msg_lb_vring_fd vfd;
	struct virtio_msg_lb_dev dev;
	u32 rfc1_dev_id;
	bool add;

	switch (cmd) {
	case VIRTIO_MSG_LB_IOC_INFO:
		return vmsg_lb_info(lb, argp);
	case VIRTIO_MSG_LB_IOC_SET_VRING_KICK:
	case VIRTIO_MSG_LB_IOC_SET_VRING_CALL:
		if (copy_from_user(&vfd, argp, sizeof(vfd)))
			return -EFAULT;
		if (vfd.flags || vfd.dev_num > U16_MAX)
			return -EINVAL;
		return virtio_msg_bus_set_vring_fd(&lb->bus, vfd.dev_num,
						   vfd.index,
						   cmd == VIRTIO_MSG_LB_IOC_SET_VRING_CALL,
						   vfd.fd);
	case VIRTIO_MSG_LB_IOC_ADD:
	case VIRTIO_MSG_LB_IOC_REMOVE:
		if (copy_from_user(&dev, argp, sizeof(dev)))
			return -EFAULT;
		if (dev.flags || dev.reserved[0] || dev.reserved[1])
			return -EINVAL;
		add = cmd == VIRTIO_MSG_LB_IOC_ADD;
		break;
	case VIRTIO_MSG_LB_IOC_ADD_RFC1:
	case VIRTIO_MSG_LB_IOC_REMOVE_RFC1:
		/* struct vmsg_lb_dev_info { unsigned int dev_id; } */
		if (copy_from_user(&rfc1_dev_id, argp, sizeof(rfc1_dev_id)))
			return -EFAULT;
		dev.dev_num = rfc1_dev_id;
		add = cmd == VIRTIO_MSG_LB_IOC_ADD_RFC1;
		break;
	default:
		return -ENOTTY;
	}

	if (dev.dev_num > U16_MAX)
		return -EINVAL;
	if (add)
		return vmsg_lb_add(lb, dev.dev_num);
	return virtio_msg_bus_remove_device(&lb->bus, dev.dev_num);
}

static int vmsg_lb_open(struct inode *inode, struct file *file)
{
	virtio_msg_pool_open(vmsg_lb->pool, file);
	return 0;
}

static int vmsg_lb_mmap(struct file *file, struct vm_area_struct *vma)
{
	return virtio_msg_pool_mmap(vmsg_lb->pool, vma);
}

/*
 * The node reads as a file of the pool's size: rust-vmm's vm-memory
 * (Linaro's frontend, every vhost-user backend handed the pool) checks a
 * mapping against lseek(fd, 0, SEEK_END) before it maps.
 */
static loff_t vmsg_lb_llseek(struct file *file, loff_t offset, int whence)
{
	return fixed_size_llseek(file, offset, whence,
				 virtio_msg_pool_size(vmsg_lb->pool));
}

static const struct file_operations vmsg_lb_fops = {
	.owner		= THIS_MODULE,
	.open		= vmsg_lb_open,
	.llseek		= vmsg_lb_llseek,
	.unlocked_ioctl	= vmsg_lb_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= vmsg_lb_mmap,
};

static int vmsg_lb_parse_params(struct vmsg_lb *lb)
{
	if (virtio_msg_wire_format_parse(wire_format, &lb->bus.format)) {
		pr_err("unknown wire_format \"%s\" (spec or rfc1)\n", wire_format);
		return -EINVAL;
	}
	lb->bus.max_msg_size = lb->bus.format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ?
			       VMSG_LB_RFC1_MSG_SIZE : VMSG_LB_DEFAULT_MSG_SIZE;
	if (max_msg_size) {
		if (max_msg_size > VIRTIO_MSG_MAX_SIZE) {
			pr_err("max_msg_size %u is above %u\n", max_msg_size,
			       VIRTIO_MSG_MAX_SIZE);
			return -EINVAL;
		}
		lb->bus.max_msg_size = max_msg_size;
	}
	if (pool_size < VMSG_LB_MIN_POOL_SIZE) {
		pr_err("pool_size %lu is below %u\n", pool_size,
		       VMSG_LB_MIN_POOL_SIZE);
		return -EINVAL;
	}
	if (max_devices > U16_MAX + 1)
		max_devices = U16_MAX + 1;
	return 0;
}

static int __init vmsg_lb_init(void)
{
	struct vmsg_lb *lb;
	int ret;

	lb = kzalloc(sizeof(*lb), GFP_KERNEL);
	if (!lb)
		return -ENOMEM;
	mutex_init(&lb->add_lock);
	ret = vmsg_lb_parse_params(lb);
	if (ret)
		goto err_free;

	lb->pdev = platform_device_register_simple("virtio-msg-loopback",
						   PLATFORM_DEVID_NONE, NULL, 0);
	if (IS_ERR(lb->pdev)) {
		ret = PTR_ERR(lb->pdev);
		goto err_free;
	}

	lb->pool = virtio_msg_pool_create(&lb->pdev->dev, "virtio-msg,loopback",
					  "vmsglb", pool_size);
	if (IS_ERR(lb->pool)) {
		ret = PTR_ERR(lb->pool);
		dev_err(&lb->pdev->dev, "no DMA pool: %d\n", ret);
		goto err_pdev;
	}

	lb->bus.parent = &lb->pdev->dev;
	lb->bus.ops = &vmsg_lb_bus_ops;
	lb->bus.name = "virtio-msg-loopback";
	lb->bus.pool = lb->pool;
	ret = virtio_msg_bus_register(&lb->bus);
	if (ret)
		goto err_pool;
	ret = virtio_msg_user_attach(&lb->bus);
	if (ret)
		goto err_bus;

	vmsg_lb = lb;
	lb->misc.minor = MISC_DYNAMIC_MINOR;
	lb->misc.name = "virtio-msg-lb";
	lb->misc.fops = &vmsg_lb_fops;
	lb->misc.parent = &lb->pdev->dev;
	lb->misc.mode = 0600;
	ret = misc_register(&lb->misc);
	if (ret)
		goto err_bus;

	dev_info(&lb->pdev->dev, "ready: %s messages of up to %u bytes on /dev/%s\n",
		 virtio_msg_wire_format_name(lb->bus.format),
		 lb->bus.max_msg_size, virtio_msg_user_name(&lb->bus));
	return 0;

err_bus:
	vmsg_lb = NULL;
	virtio_msg_bus_unregister(&lb->bus);
	virtio_msg_user_detach(&lb->bus);
err_pool:
	virtio_msg_pool_destroy(lb->pool);
err_pdev:
	platform_device_unregister(lb->pdev);
err_free:
	kfree(lb);
	return ret;
}
module_init(vmsg_lb_init);

static void __exit vmsg_lb_exit(void)
{
	struct vmsg_lb *lb = vmsg_lb;

	/* No new devices; then remove them while the backend can still answer. */
	misc_deregister(&lb->misc);
	virtio_msg_bus_unregister(&lb->bus);
	virtio_msg_user_detach(&lb->bus);
	virtio_msg_pool_destroy(lb->pool);
	platform_device_unregister(lb->pdev);
	kfree(lb);
}
module_exit(vmsg_lb_exit);

MODULE_IMPORT_NS("VIRTIO_MSG");
MODULE_DESCRIPTION("virtio-msg loopback bus: virtio devices served by a user-space backend");
MODULE_LICENSE("GPL");
MODULE_VERSION(VIRTIO_MSG_DKMS_VERSION);
