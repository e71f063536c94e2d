// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg user-space message interface: /dev/virtio-msg-N.
 *
 * A bus driver whose devices live in user space (the loopback bus) attaches
 * one node per bus.  Messages the core sends on that bus queue up and are
 * read() one at a time; whatever user space write()s goes back to the core
 * as a response or device event.
 *
 * The node is an attack surface: every read copies at most one queued
 * message, every write is bounded by the bus's message size and validated
 * by the core, and a backend that closes the node fails the requests it
 * left unanswered instead of letting them run into the timeout.
 */
#define pr_fmt(fmt) "virtio-msg: " fmt

#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/idr.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/kref.h>
#include <linux/poll.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/wait.h>

#include "virtio_msg_internal.h"

/*
 * Kicks are coalesced when identical; this bounds what a backend that
 * stops reading can make the kernel hold.
 */
#define VMSG_USER_MAX_QUEUED	4096
/* Queues with an unread kick, hashed: see vmsg_user_kick_pending(). */
#define VMSG_USER_KICK_BITS	6

struct virtio_msg_user {
	/* NULL once detached; open files may outlive the bus */
	struct virtio_msg_bus *bus;
	struct rw_semaphore bus_sem;
	struct kref ref;
	struct miscdevice misc;
	char name[32];
	int id;

	spinlock_t lock;		/* protects everything below */
	struct list_head queue;		/* messages not read yet */
	unsigned int queued;
	unsigned int openers;
	unsigned int readers;		/* openers that have read a message */
	bool detached;
	wait_queue_head_t wait;
	/* The newest unread event of each queue, by vmsg_user_kick_key() */
	DECLARE_HASHTABLE(kicks, VMSG_USER_KICK_BITS);
};

struct virtio_msg_user_msg {
	struct list_head node;
	struct hlist_node kick;		/* in kicks: the newest of its queue */
	u64 key;			/* events: vmsg_user_kick_key() */
	u16 dev_num;
	u16 token;
	bool event;
	size_t len;
	u8 data[];
};

static DEFINE_IDA(virtio_msg_user_ida);

/*
 * Per open file.  A backend may split the work: one opener reads requests
 * and answers them, another only writes device events.  Only the first
 * kind can answer, so when the last of those closes, nobody will.
 */
struct virtio_msg_user_file {
	struct virtio_msg_user *user;
	bool reader;
};

static struct virtio_msg_user *file_to_user(struct file *file)
{
	struct virtio_msg_user_file *uf = file->private_data;

	return uf->user;
}

/*
 * Events are kicks (EVENT_AVAIL), whose payload starts with the queue
 * index: the key names the queue.  A kick is coalesced with the newest
 * unread kick of its queue only, found in the hash at a cost independent
 * of the queue's length (a walk of the queue cost up to
 * VMSG_USER_MAX_QUEUED comparisons per kick under the lock).  Without
 * notification data a queue's kicks are all identical, so nothing
 * changes; with it, an older identical one (a packed ring's position
 * coming round again) must not swallow a kick that tells the device where
 * the driver is now.
 */
static u64 vmsg_user_kick_key(struct virtio_msg_bus *bus,
			      const struct virtio_msg_wire_hdr *hdr,
			      const u8 *msg)
{
	size_t off = virtio_msg_wire_hdr_size(bus->format);
	u32 vq = 0;

	if (hdr->msg_size >= off + sizeof(__le32))
		vq = get_unaligned_le32(msg + off);
	return (u64)hdr->dev_num << 40 | (u64)hdr->msg_id << 32 | vq;
}

/* Under user->lock. */
static struct virtio_msg_user_msg *
vmsg_user_kick_pending(struct virtio_msg_user *user, u64 key)
{
	struct virtio_msg_user_msg *m;

	hash_for_each_possible(user->kicks, m, kick, key)
		if (m->key == key)
			return m;
	return NULL;
}

/* Under user->lock: @m leaves the queue. */
static void vmsg_user_unqueue(struct virtio_msg_user *user,
			      struct virtio_msg_user_msg *m)
{
	list_del(&m->node);
	user->queued--;
	if (!hlist_unhashed(&m->kick))
		hash_del(&m->kick);
}

static void vmsg_user_free(struct kref *ref)
{
	struct virtio_msg_user *user = container_of(ref, struct virtio_msg_user, ref);
	struct virtio_msg_user_msg *m, *tmp;

	list_for_each_entry_safe(m, tmp, &user->queue, node)
		kfree(m);
	ida_free(&virtio_msg_user_ida, user->id);
	kfree(user);
}

/**
 * virtio_msg_user_send - queue a message for the user-space backend
 * @bus: a bus with an attached user interface
 * @msg: encoded message
 * @len: its length
 * @atomic: the caller may not sleep
 *
 * Suitable as a bus's send operation.
 *
 * Return: 0; -ENOTCONN when no backend has the node open; -ENOBUFS when
 * the backend does not keep up; -ENOMEM.
 */
int virtio_msg_user_send(struct virtio_msg_bus *bus, const void *msg,
			 size_t len, bool atomic)
{
	struct virtio_msg_user *user = bus->user;
	struct virtio_msg_user_msg *m, *old = NULL;
	struct virtio_msg_wire_hdr hdr;
	unsigned long flags;
	int ret;

	ret = virtio_msg_wire_peek(bus->format, msg, len, &hdr);
	if (ret)
		return ret;

	m = kmalloc(struct_size(m, data, hdr.msg_size),
		    atomic ? GFP_ATOMIC : GFP_KERNEL);
	if (!m)
		return -ENOMEM;
	INIT_HLIST_NODE(&m->kick);
	m->dev_num = hdr.dev_num;
	m->token = hdr.token;
	m->event = virtio_msg_id_is_event(hdr.msg_id);
	m->len = hdr.msg_size;
	memcpy(m->data, msg, m->len);
	if (m->event)
		m->key = vmsg_user_kick_key(bus, &hdr, m->data);

	spin_lock_irqsave(&user->lock, flags);
	if (!user->openers) {
		ret = -ENOTCONN;
		goto out_free;
	}
	if (m->event) {
		old = vmsg_user_kick_pending(user, m->key);
		/* The same kick is already waiting to be read. */
		if (old && old->len == m->len &&
		    !memcmp(old->data, m->data, m->len))
			goto out_free;
	}
	if (user->queued >= VMSG_USER_MAX_QUEUED) {
		ret = -ENOBUFS;
		goto out_free;
	}
	list_add_tail(&m->node, &user->queue);
	user->queued++;
	if (m->event) {
		if (old)
			hash_del(&old->kick);
		hash_add(user->kicks, &m->kick, m->key);
	}
	spin_unlock_irqrestore(&user->lock, flags);
	wake_up_interruptible(&user->wait);
	return 0;

out_free:
	spin_unlock_irqrestore(&user->lock, flags);
	kfree(m);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_user_send, "VIRTIO_MSG");

/* Drops a request the core stopped waiting for, if still unread. */
void virtio_msg_user_cancel(struct virtio_msg_bus *bus, u16 dev_num, u16 token)
{
	struct virtio_msg_user *user = bus->user;
	struct virtio_msg_user_msg *m, *tmp;
	unsigned long flags;

	spin_lock_irqsave(&user->lock, flags);
	list_for_each_entry_safe(m, tmp, &user->queue, node) {
		if (!m->event && m->dev_num == dev_num && m->token == token) {
			vmsg_user_unqueue(user, m);
			kfree(m);
			break;
		}
	}
	spin_unlock_irqrestore(&user->lock, flags);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_user_cancel, "VIRTIO_MSG");

static int vmsg_user_open(struct inode *inode, struct file *file)
{
	struct miscdevice *misc = file->private_data;
	struct virtio_msg_user_file *uf;

	uf = kzalloc(sizeof(*uf), GFP_KERNEL);
	if (!uf)
		return -ENOMEM;
	uf->user = container_of(misc, struct virtio_msg_user, misc);

	/* misc_open() holds misc_mtx: detach cannot run concurrently. */
	kref_get(&uf->user->ref);
	spin_lock_irq(&uf->user->lock);
	uf->user->openers++;
	spin_unlock_irq(&uf->user->lock);
	file->private_data = uf;
	return nonseekable_open(inode, file);
}

static int vmsg_user_release(struct inode *inode, struct file *file)
{
	struct virtio_msg_user_file *uf = file->private_data;
	struct virtio_msg_user *user = uf->user;
	struct virtio_msg_user_msg *m, *tmp;
	LIST_HEAD(dropped);
	bool last, lost;

	spin_lock_irq(&user->lock);
	last = !--user->openers;
	if (uf->reader)
		user->readers--;
	lost = last || (uf->reader && !user->readers);
	if (last) {
		list_splice_init(&user->queue, &dropped);
		user->queued = 0;
		hash_init(user->kicks);
	}
	spin_unlock_irq(&user->lock);

	list_for_each_entry_safe(m, tmp, &dropped, node)
		kfree(m);
	if (lost) {
		/*
		 * Nobody is left to answer what was asked.  Whoever still maps
		 * the pool (a vhost-user backend the peer handed it to) would
		 * go on completing buffers behind the transport's back while
		 * it fails them: take the memory back first.
		 */
		down_read(&user->bus_sem);
		if (user->bus) {
			if (user->bus->pool)
				virtio_msg_pool_revoke(user->bus->pool);
			virtio_msg_bus_lost(user->bus);
		}
		up_read(&user->bus_sem);
	}
	kref_put(&user->ref, vmsg_user_free);
	kfree(uf);
	return 0;
}

static ssize_t vmsg_user_read(struct file *file, char __user *buf,
			      size_t count, loff_t *ppos)
{
	struct virtio_msg_user_file *uf = file->private_data;
	struct virtio_msg_user *user = uf->user;
	struct virtio_msg_user_msg *m;
	int ret;

	for (;;) {
		spin_lock_irq(&user->lock);
		m = list_first_entry_or_null(&user->queue,
					     struct virtio_msg_user_msg, node);
		if (!m && user->detached) {
			spin_unlock_irq(&user->lock);
			return -ENODEV;
		}
		if (m) {
			if (count < m->len) {
				spin_unlock_irq(&user->lock);
				return -EINVAL;
			}
			vmsg_user_unqueue(user, m);
			if (!uf->reader) {
				uf->reader = true;
				user->readers++;
			}
		}
		spin_unlock_irq(&user->lock);
		if (m)
			break;

		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(user->wait,
					       !list_empty(&user->queue) ||
					       READ_ONCE(user->detached));
		if (ret)
			return ret;
	}

	if (copy_to_user(buf, m->data, m->len)) {
		/*
		 * Keep the message for a retry with a valid buffer; a kick
		 * coalesces with it again unless its queue has a newer one.
		 */
		spin_lock_irq(&user->lock);
		list_add(&m->node, &user->queue);
		user->queued++;
		if (m->event && !vmsg_user_kick_pending(user, m->key))
			hash_add(user->kicks, &m->kick, m->key);
		spin_unlock_irq(&user->lock);
		return -EFAULT;
	}
	ret = m->len;
	kfree(m);
	return ret;
}

static ssize_t vmsg_user_write(struct file *file, const char __user *buf,
			       size_t count, loff_t *ppos)
{
	struct virtio_msg_user *user = file_to_user(file);
	struct virtio_msg_bus *bus;
	void *msg;
	int ret;

	guard(rwsem_read)(&user->bus_sem);
	bus = user->bus;
	if (!bus)
		return -ENODEV;
	if (count < virtio_msg_wire_hdr_size(bus->format) ||
	    count > bus->max_msg_size)
		return -EINVAL;

	msg = memdup_user(buf, count);
	if (IS_ERR(msg))
		return PTR_ERR(msg);
	ret = virtio_msg_bus_receive(bus, msg, count);
	kfree(msg);
	return ret ? ret : count;
}

static __poll_t vmsg_user_poll(struct file *file, poll_table *wait)
{
	struct virtio_msg_user *user = file_to_user(file);
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;

	poll_wait(file, &user->wait, wait);
	spin_lock_irq(&user->lock);
	if (!list_empty(&user->queue))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (user->detached)
		mask |= EPOLLHUP;
	spin_unlock_irq(&user->lock);
	return mask;
}

static const struct file_operations vmsg_user_fops = {
	.owner		= THIS_MODULE,
	.open		= vmsg_user_open,
	.release	= vmsg_user_release,
	.read		= vmsg_user_read,
	.write		= vmsg_user_write,
	.poll		= vmsg_user_poll,
};

/**
 * virtio_msg_user_attach - create /dev/virtio-msg-N for a registered bus
 * @bus: the bus; its send op should be virtio_msg_user_send()
 *
 * Return: 0 or a negative errno.
 */
int virtio_msg_user_attach(struct virtio_msg_bus *bus)
{
	struct virtio_msg_user *user;
	int ret;

	user = kzalloc(sizeof(*user), GFP_KERNEL);
	if (!user)
		return -ENOMEM;

	user->bus = bus;
	init_rwsem(&user->bus_sem);
	kref_init(&user->ref);
	spin_lock_init(&user->lock);
	INIT_LIST_HEAD(&user->queue);
	init_waitqueue_head(&user->wait);
	hash_init(user->kicks);

	ret = ida_alloc(&virtio_msg_user_ida, GFP_KERNEL);
	if (ret < 0)
		goto err_free;
	user->id = ret;
	snprintf(user->name, sizeof(user->name), "virtio-msg-%d", user->id);

	user->misc.minor = MISC_DYNAMIC_MINOR;
	user->misc.name = user->name;
	user->misc.fops = &vmsg_user_fops;
	/* Not the bus device: the node outlives it, see _detach(). */
	user->misc.parent = bus->parent;
	/* The backend sees every DMA buffer of its devices: root only. */
	user->misc.mode = 0600;
	bus->user = user;
	ret = misc_register(&user->misc);
	if (ret)
		goto err_ida;
	return 0;

err_ida:
	bus->user = NULL;
	ida_free(&virtio_msg_user_ida, user->id);
err_free:
	kfree(user);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_user_attach, "VIRTIO_MSG");

/**
 * virtio_msg_user_detach - remove the bus's /dev/virtio-msg-N
 * @bus: the bus
 *
 * For the bus driver, after virtio_msg_bus_unregister(): the devices are
 * shut down while the backend can still answer.  Files still open keep the
 * node's state alive but see no bus any more.
 */
void virtio_msg_user_detach(struct virtio_msg_bus *bus)
{
	struct virtio_msg_user *user = bus->user;

	if (!user)
		return;
	misc_deregister(&user->misc);
	down_write(&user->bus_sem);
	user->bus = NULL;
	up_write(&user->bus_sem);
	spin_lock_irq(&user->lock);
	user->detached = true;
	spin_unlock_irq(&user->lock);
	wake_up_interruptible(&user->wait);
	bus->user = NULL;
	kref_put(&user->ref, vmsg_user_free);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_user_detach, "VIRTIO_MSG");

const char *virtio_msg_user_name(struct virtio_msg_bus *bus)
{
	return bus->user ? bus->user->name : NULL;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_user_name, "VIRTIO_MSG");
