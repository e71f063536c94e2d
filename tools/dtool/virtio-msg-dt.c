// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg-dt: device-tree helper for the virtio-msg buses.
 *
 * Reserved memory is set up from the flattened device tree at early boot,
 * so the buses' shared-memory pool must be in the DTB the boot loader
 * hands to the kernel.  This tool
 *   merge     applies an overlay (.dtbo) to a DTB, for boot loaders that
 *             cannot apply overlays themselves;
 *   add-pool  creates a /reserved-memory pool node of a given size at an
 *             address inside /memory and clear of every reservation;
 *   inspect   reports whether a DTB (or the running system's
 *             /sys/firmware/fdt) has a usable pool and which driver uses it.
 *
 * Output files are written to a temporary file in the same directory and
 * renamed into place, so a failure never leaves a half-written DTB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VMSG_VERSION
#define VMSG_VERSION "unknown"
#endif

#define MAX_DTB_SIZE	(64u << 20)
#define MAX_RANGES	512
#define SLACK		4096
#define DEFAULT_ALIGN	(2ull << 20)

static const char *prog = "virtio-msg-dt";

/* Command lines, for --help and the commands' usage errors. */
#define MERGE_USAGE \
	"merge BASE.dtb OVERLAY.dtbo -o OUT.dtb"
#define ADD_POOL_USAGE \
	"add-pool BASE.dtb -o OUT.dtb --size SIZE [--kind loopback|ffa] [--align A]"

struct range {
	uint64_t start;
	uint64_t size;		/* end = start + size (exclusive) */
	char what[96];
};

struct ranges {
	struct range r[MAX_RANGES];
	int n;
};

struct bus_kind {
	const char *kind;	/* --kind value */
	const char *compatible;	/* the binding's compatible */
	const char *node;	/* node name used by RFC-era device trees */
	const char *driver;	/* module that uses the pool */
};

static const struct bus_kind kinds[] = {
	{ "loopback", "virtio-msg,loopback", "vmsglb", "virtio_msg_loopback" },
	{ "ffa", "virtio-msg,ffa", "vmsgffa", "virtio_msg_ffa" },
};

static void __attribute__((format(printf, 1, 2))) err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2))) warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: warning: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Reads and validates a DTB.  Returns a malloc()ed buffer of at least
 * fdt_totalsize() + extra bytes holding the tree, opened for read-write
 * (fdt_open_into), or NULL after printing why.
 */
static void *load_dtb(const char *path, size_t extra)
{
	FILE *f;
	struct stat st;
	unsigned char *raw;
	void *buf;
	size_t len, n;
	int ret, total;

	f = fopen(path, "rb");
	if (!f) {
		err("%s: %s", path, strerror(errno));
		return NULL;
	}
	/* /sys/firmware/fdt reports its size; regular files too. */
	if (fstat(fileno(f), &st) < 0 || st.st_size < 0) {
		err("%s: %s", path, strerror(errno));
		fclose(f);
		return NULL;
	}
	if ((uint64_t)st.st_size > MAX_DTB_SIZE) {
		err("%s: too large for a device tree (%lld bytes)", path, (long long)st.st_size);
		fclose(f);
		return NULL;
	}
	raw = malloc(MAX_DTB_SIZE);
	if (!raw) {
		err("out of memory");
		fclose(f);
		return NULL;
	}
	len = 0;
	while ((n = fread(raw + len, 1, MAX_DTB_SIZE - len, f)) > 0)
		len += n;
	if (ferror(f)) {
		err("%s: read error: %s", path, strerror(errno));
		fclose(f);
		free(raw);
		return NULL;
	}
	fclose(f);

	if (len < sizeof(struct fdt_header)) {
		err("%s: not a device tree blob: file is %zu bytes, shorter than the header",
		    path, len);
		goto bad;
	}
	ret = fdt_check_header(raw);
	if (ret) {
		err("%s: not a valid device tree blob: %s", path, fdt_strerror(ret));
		goto bad;
	}
	if (fdt_totalsize(raw) > len) {
		err("%s: truncated device tree blob: header says %u bytes, file has %zu",
		    path, fdt_totalsize(raw), len);
		goto bad;
	}
	ret = fdt_check_full(raw, len);
	if (ret) {
		err("%s: corrupt device tree blob: %s", path, fdt_strerror(ret));
		goto bad;
	}
	total = fdt_totalsize(raw) + extra + SLACK;
	buf = malloc(total);
	if (!buf) {
		err("out of memory");
		goto bad;
	}
	ret = fdt_open_into(raw, buf, total);
	free(raw);
	if (ret) {
		err("%s: cannot open device tree: %s", path, fdt_strerror(ret));
		free(buf);
		return NULL;
	}
	return buf;
bad:
	free(raw);
	return NULL;
}

/* Writes the tree to path via a temporary file + rename. */
static int save_dtb(const char *path, void *fdt)
{
	char *tmp;
	size_t size;
	int fd, ret;
	FILE *f;

	ret = fdt_pack(fdt);
	if (ret) {
		err("cannot pack the device tree: %s", fdt_strerror(ret));
		return -1;
	}
	size = fdt_totalsize(fdt);
	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		err("out of memory");
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		err("%s: cannot create a temporary file next to it: %s", path, strerror(errno));
		free(tmp);
		return -1;
	}
	f = fdopen(fd, "wb");
	if (!f || fwrite(fdt, 1, size, f) != size || fflush(f) || fsync(fd) ||
	    fchmod(fd, 0644)) {
		err("%s: write failed: %s", tmp, strerror(errno));
		if (f)
			fclose(f);
		else
			close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	if (fclose(f)) {
		err("%s: write failed: %s", tmp, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	if (rename(tmp, path)) {
		err("%s: rename failed: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static uint64_t read_cells(const fdt32_t *p, int cells)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < cells; i++)
		v = (v << 32) | fdt32_to_cpu(p[i]);
	return v;
}

static int cells_of(const void *fdt, int node, const char *name, int dflt)
{
	const fdt32_t *p;
	int len;

	p = fdt_getprop(fdt, node, name, &len);
	if (!p || len != 4)
		return dflt;
	return fdt32_to_cpu(*p);
}

static int add_range(struct ranges *rs, uint64_t start, uint64_t size, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int add_range(struct ranges *rs, uint64_t start, uint64_t size, const char *fmt, ...)
{
	va_list ap;

	if (rs->n >= MAX_RANGES) {
		err("too many ranges (more than %d)", MAX_RANGES);
		return -1;
	}
	rs->r[rs->n].start = start;
	rs->r[rs->n].size = size;
	va_start(ap, fmt);
	vsnprintf(rs->r[rs->n].what, sizeof(rs->r[rs->n].what), fmt, ap);
	va_end(ap);
	rs->n++;
	return 0;
}

/*
 * Appends the (address, size) pairs of node's "reg" to rs.  Returns the
 * number added, 0 if there is no reg, -1 if it is malformed.
 */
static int reg_ranges(const void *fdt, int node, int ac, int sc, struct ranges *rs,
		      const char *what)
{
	const fdt32_t *p;
	int len, i, n, stride = ac + sc;

	p = fdt_getprop(fdt, node, "reg", &len);
	if (!p)
		return 0;
	if (ac < 1 || ac > 2 || sc < 0 || sc > 2 || len % (4 * stride)) {
		err("%s: malformed reg property (%d bytes, #address-cells=%d, #size-cells=%d)",
		    what, len, ac, sc);
		return -1;
	}
	n = len / (4 * stride);
	for (i = 0; i < n; i++) {
		uint64_t a = read_cells(p + i * stride, ac);
		uint64_t s = read_cells(p + i * stride + ac, sc);

		if (s && a + s - 1 < a) {
			err("%s: reg entry %d wraps around the address space", what, i);
			return -1;
		}
		if (add_range(rs, a, s, "%s", what))
			return -1;
	}
	return n;
}

/* RAM from every /memory node (device_type = "memory" or named memory@). */
static int memory_ranges(const void *fdt, struct ranges *mem)
{
	int ac = cells_of(fdt, 0, "#address-cells", 2);
	int sc = cells_of(fdt, 0, "#size-cells", 1);
	int node, found = 0;
	char path[256];

	fdt_for_each_subnode(node, fdt, 0) {
		const char *name = fdt_get_name(fdt, node, NULL);
		const char *dt = fdt_getprop(fdt, node, "device_type", NULL);
		const char *st = fdt_getprop(fdt, node, "status", NULL);

		if (!(dt && !strcmp(dt, "memory")) && strncmp(name, "memory", 6))
			continue;
		if (st && strcmp(st, "okay") && strcmp(st, "ok"))
			continue;
		snprintf(path, sizeof(path), "/%s", name);
		if (reg_ranges(fdt, node, ac, sc, mem, path) < 0)
			return -1;
		found = 1;
	}
	if (!found || !mem->n) {
		err("no /memory node with a reg property: cannot tell where RAM is");
		return -1;
	}
	return 0;
}

static bool overlaps(const struct range *a, const struct range *b)
{
	return a->size && b->size && a->start < b->start + b->size && b->start < a->start + a->size;
}

static bool inside_memory(const struct ranges *mem, uint64_t start, uint64_t size)
{
	int i;

	for (i = 0; i < mem->n; i++)
		if (start >= mem->r[i].start && start + size <= mem->r[i].start + mem->r[i].size)
			return true;
	return false;
}

static const struct bus_kind *pool_kind(const void *fdt, int node)
{
	const char *name = fdt_get_name(fdt, node, NULL);
	size_t i, nl = strcspn(name, "@");

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!fdt_node_check_compatible(fdt, node, kinds[i].compatible))
			return &kinds[i];
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].node) == nl && !strncmp(name, kinds[i].node, nl))
			return &kinds[i];
	return NULL;
}

/*
 * Reservations: the memreserve block and every /reserved-memory child with
 * a reg (except the node "skip", if >= 0).  Returns the /reserved-memory
 * offset (or -FDT_ERR_NOTFOUND) or a value < -1000 on error.
 */
#define RESV_ERROR (-10000)
static int reservations(const void *fdt, struct ranges *resv, int skip)
{
	int i, n, rm, child, ac, sc;
	uint64_t a, s;
	char what[128];

	n = fdt_num_mem_rsv(fdt);
	for (i = 0; i < n; i++) {
		if (fdt_get_mem_rsv(fdt, i, &a, &s))
			return RESV_ERROR;
		if (add_range(resv, a, s, "/memreserve/ entry %d", i))
			return RESV_ERROR;
	}
	rm = fdt_path_offset(fdt, "/reserved-memory");
	if (rm < 0)
		return -FDT_ERR_NOTFOUND;
	ac = cells_of(fdt, rm, "#address-cells", 2);
	sc = cells_of(fdt, rm, "#size-cells", 1);
	fdt_for_each_subnode(child, fdt, rm) {
		if (child == skip)
			continue;
		snprintf(what, sizeof(what), "/reserved-memory/%s", fdt_get_name(fdt, child, NULL));
		if (reg_ranges(fdt, child, ac, sc, resv, what) < 0)
			return RESV_ERROR;
	}
	return rm;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case '\0':
		break;
	default:
		return -1;
	}
	if ((*end == 'i' || *end == 'I') && shift && (end[1] == 'B' || end[1] == 'b'))
		end += 2;
	if (*end || !v || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* ------------------------------------------------------------------------- */

/*
 * Checks every pool node.  Prints a report (unless quiet) and returns the
 * number of usable pools, or -1 if a pool is present but unusable.
 */
static int check_pools(const void *fdt, bool quiet)
{
	struct ranges mem = { .n = 0 };
	int rm, child, usable = 0, bad = 0, have_mem;

	have_mem = memory_ranges(fdt, &mem) == 0;
	rm = fdt_path_offset(fdt, "/reserved-memory");
	if (rm < 0) {
		if (!quiet)
			printf("no /reserved-memory node: no pool\n");
		return 0;
	}
	fdt_for_each_subnode(child, fdt, rm) {
		const struct bus_kind *k = pool_kind(fdt, child);
		const char *name = fdt_get_name(fdt, child, NULL);
		const char *st = fdt_getprop(fdt, child, "status", NULL);
		struct ranges own = { .n = 0 }, resv = { .n = 0 };
		int ac = cells_of(fdt, rm, "#address-cells", 2);
		int sc = cells_of(fdt, rm, "#size-cells", 1);
		char what[128];
		const char *problem = NULL;
		static char pbuf[256];
		int i, j, nreg;

		if (!k)
			continue;
		snprintf(what, sizeof(what), "/reserved-memory/%s", name);
		if (!quiet)
			printf("pool %s: kind %s (%s), used by %s\n", what, k->kind,
			       !fdt_node_check_compatible(fdt, child, k->compatible) ?
			       "by compatible" : "by node name only", k->driver);
		nreg = reg_ranges(fdt, child, ac, sc, &own, what);
		if (nreg < 0) {
			problem = "malformed reg";
		} else if (nreg == 0) {
			const fdt32_t *sz;
			int len;

			sz = fdt_getprop(fdt, child, "size", &len);
			if (!sz || len != 4 * sc) {
				problem = "neither reg nor size";
			} else if (!quiet) {
				printf("  dynamic: %#" PRIx64 " bytes (%" PRIu64 " MiB),",
				       read_cells(sz, sc), read_cells(sz, sc) >> 20);
				printf(" placed by the kernel at boot\n");
			}
		} else {
			for (i = 0; !quiet && i < own.n; i++)
				printf("  range: %#" PRIx64 "-%#" PRIx64 " (%" PRIu64 " MiB)\n",
				       own.r[i].start, own.r[i].start + own.r[i].size - 1,
				       own.r[i].size >> 20);
			if (nreg != 1)
				problem = "more than one reg entry";
			else if (!own.r[0].size)
				problem = "size 0";
			else if (!have_mem)
				problem = "no /memory to check it against";
			else if (!inside_memory(&mem, own.r[0].start, own.r[0].size))
				problem = "not inside /memory";
		}
		if (!problem && st && strcmp(st, "okay") && strcmp(st, "ok"))
			problem = "status is not okay";
		if (!problem && fdt_getprop(fdt, child, "no-map", NULL))
			problem = "has no-map (a restricted-dma-pool must be mapped)";
		if (!problem && fdt_getprop(fdt, child, "reusable", NULL))
			problem = "is reusable (would be handed to CMA)";
		if (!problem && nreg == 1) {
			if (reservations(fdt, &resv, child) <= RESV_ERROR) {
				problem = "malformed reservations";
			} else {
				for (j = 0; j < resv.n; j++) {
					if (!overlaps(&own.r[0], &resv.r[j]))
						continue;
					snprintf(pbuf, sizeof(pbuf),
						 "overlaps %s (%#" PRIx64 "-%#" PRIx64 ")",
						 resv.r[j].what, resv.r[j].start,
						 resv.r[j].start + resv.r[j].size - 1);
					problem = pbuf;
					break;
				}
			}
		}
		if (problem) {
			if (!quiet)
				printf("  NOT usable: %s\n", problem);
			else
				err("pool %s: %s", what, problem);
			bad++;
		} else {
			if (!quiet)
				printf("  usable: %s will use it\n", k->driver);
			usable++;
		}
	}
	if (bad)
		return -1;
	if (!usable && !quiet)
		printf("no virtio-msg pool in /reserved-memory\n");
	return usable;
}

static int cmd_inspect(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/sys/firmware/fdt";
	void *fdt;
	int n;

	if (argc > 2) {
		err("inspect takes at most one DTB");
		return 2;
	}
	fdt = load_dtb(path, 0);
	if (!fdt)
		return 1;
	printf("%s:\n", path);
	n = check_pools(fdt, false);
	free(fdt);
	if (n < 0) {
		printf("result: a pool is present but NOT usable\n");
		return 1;
	}
	if (n == 0) {
		printf("result: no pool (the loopback bus allocates one at module load)\n");
		return 3;
	}
	printf("result: %d usable pool%s\n", n, n == 1 ? "" : "s");
	return 0;
}

static const char *get_out(int *argc, char ***argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(*argc, *argv, "o:", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else
			return NULL;
	}
	*argc -= optind;
	*argv += optind;
	return out;
}

static int cmd_merge(int argc, char **argv)
{
	const char *out;
	void *base, *ovl;
	int ret;

	out = get_out(&argc, &argv);
	if (!out || argc != 2) {
		err("usage: " MERGE_USAGE);
		return 2;
	}
	ovl = load_dtb(argv[1], 0);
	if (!ovl)
		return 1;
	if (fdt_path_offset(ovl, "/__fixups__") < 0 && fdt_path_offset(ovl, "/fragment@0") < 0 &&
	    fdt_subnode_offset(ovl, 0, "fragment@0") < 0) {
		int node, frag = 0;

		fdt_for_each_subnode(node, ovl, 0)
			if (fdt_subnode_offset(ovl, node, "__overlay__") >= 0)
				frag = 1;
		if (!frag) {
			err("%s: not an overlay (no fragment with __overlay__)", argv[1]);
			free(ovl);
			return 1;
		}
	}
	base = load_dtb(argv[0], fdt_totalsize(ovl));
	if (!base) {
		free(ovl);
		return 1;
	}
	ret = fdt_overlay_apply(base, ovl);
	free(ovl);
	if (ret) {
		err("cannot apply %s to %s: %s", argv[1], argv[0], fdt_strerror(ret));
		free(base);
		return 1;
	}
	if (check_pools(base, true) < 0) {
		err("the merged tree has an unusable pool; %s not written", out);
		free(base);
		return 1;
	}
	if (save_dtb(out, base)) {
		free(base);
		return 1;
	}
	free(base);
	printf("%s: %s + %s\n", out, argv[0], argv[1]);
	return 0;
}

static int cmd_add_pool(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 's' },
		{ "kind", required_argument, NULL, 'k' },
		{ "align", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const struct bus_kind *kind = &kinds[0];
	const char *out = NULL, *size_arg = NULL;
	uint64_t size = 0, align = DEFAULT_ALIGN, best = 0;
	struct ranges mem = { .n = 0 }, resv = { .n = 0 };
	bool found = false;
	void *fdt;
	int c, i, j, rm, ac, sc, node, ret, root_ac, root_sc;
	char name[64];

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:s:k:a:", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 's':
			size_arg = optarg;
			break;
		case 'a':
			if (parse_size(optarg, &align) || (align & (align - 1)) || align < 4096) {
				err("--align %s: need a power of two >= 4096", optarg);
				return 2;
			}
			break;
		case 'k':
			for (i = 0; i < (int)(sizeof(kinds) / sizeof(kinds[0])); i++)
				if (!strcmp(optarg, kinds[i].kind))
					kind = &kinds[i];
			if (strcmp(optarg, kind->kind)) {
				err("--kind %s: must be loopback or ffa", optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (!out || !size_arg || argc - optind != 1) {
		err("usage: " ADD_POOL_USAGE);
		return 2;
	}
	if (parse_size(size_arg, &size) || size % 4096) {
		err("--size %s: need a non-zero multiple of 4 KiB (suffixes K, M, G)", size_arg);
		return 2;
	}
	fdt = load_dtb(argv[optind], 1024);
	if (!fdt)
		return 1;
	if (memory_ranges(fdt, &mem))
		goto fail;
	rm = reservations(fdt, &resv, -1);
	if (rm <= RESV_ERROR)
		goto fail;
	if (rm >= 0) {
		fdt_for_each_subnode(node, fdt, rm) {
			const struct bus_kind *k = pool_kind(fdt, node);

			if (k == kind) {
				err("%s already has a %s pool (/reserved-memory/%s)", argv[optind],
				    kind->kind, fdt_get_name(fdt, node, NULL));
				goto fail;
			}
		}
	}
	/* Sanity of the input: reservations that overlap each other. */
	for (i = 0; i < resv.n; i++)
		for (j = i + 1; j < resv.n; j++)
			if (overlaps(&resv.r[i], &resv.r[j]) &&
			    (resv.r[i].start != resv.r[j].start ||
			     resv.r[i].size != resv.r[j].size))
				warn("input reservations overlap: %s and %s",
				     resv.r[i].what, resv.r[j].what);

	/*
	 * Highest aligned address inside a /memory range that overlaps no
	 * reservation: the start of RAM is where boot loaders put the kernel,
	 * the DTB and the initrd.  Candidate tops: each memory range end and
	 * each reservation start.
	 */
	for (i = 0; i < mem.n; i++) {
		uint64_t lo = mem.r[i].start, hi = mem.r[i].start + mem.r[i].size;
		int t;

		for (t = -1; t < resv.n; t++) {
			uint64_t top = t < 0 ? hi : resv.r[t].start, cand;
			struct range r;
			bool clash = false;

			if (top > hi || top < lo + size)
				continue;
			cand = (top - size) & ~(align - 1);
			if (cand < lo)
				continue;
			r.start = cand;
			r.size = size;
			for (j = 0; j < resv.n; j++)
				if (overlaps(&r, &resv.r[j]))
					clash = true;
			if (!clash && (!found || cand > best)) {
				best = cand;
				found = true;
			}
		}
	}
	if (!found) {
		err("no room for a %#" PRIx64 "-byte pool (aligned to %#" PRIx64
		    ") inside /memory clear of all reservations", size, align);
		goto fail;
	}

	root_ac = cells_of(fdt, 0, "#address-cells", 2);
	root_sc = cells_of(fdt, 0, "#size-cells", 1);
	if (rm < 0) {
		rm = fdt_add_subnode(fdt, 0, "reserved-memory");
		if (rm < 0)
			goto lib_fail;
		ret = fdt_setprop_u32(fdt, rm, "#address-cells", root_ac);
		if (!ret)
			ret = fdt_setprop_u32(fdt, rm, "#size-cells", root_sc);
		if (!ret)
			ret = fdt_setprop(fdt, rm, "ranges", NULL, 0);
		if (ret) {
			rm = ret;
			goto lib_fail;
		}
	}
	ac = cells_of(fdt, rm, "#address-cells", 2);
	sc = cells_of(fdt, rm, "#size-cells", 1);
	if ((ac < 2 && best >> 32) || (sc < 2 && size >> 32) ||
	    ac > 2 || sc > 2 || ac < 1 || sc < 1)
		goto cells_fail;
	snprintf(name, sizeof(name), "%s@%" PRIx64, kind->node, best);
	node = fdt_add_subnode(fdt, rm, name);
	if (node < 0) {
		rm = node;
		goto lib_fail;
	}
	{
		char compat[64];
		int clen = snprintf(compat, sizeof(compat), "%s", kind->compatible) + 1;

		clen += snprintf(compat + clen, sizeof(compat) - clen, "restricted-dma-pool") + 1;
		ret = fdt_setprop(fdt, node, "compatible", compat, clen);
	}
	if (!ret) {
		uint64_t v[1] = { best };
		fdt32_t reg[4];
		int k = 0;

		for (j = ac - 1; j >= 0; j--)
			reg[k++] = cpu_to_fdt32((uint32_t)(v[0] >> (32 * j)));
		for (j = sc - 1; j >= 0; j--)
			reg[k++] = cpu_to_fdt32((uint32_t)(size >> (32 * j)));
		ret = fdt_setprop(fdt, node, "reg", reg, k * 4);
	}
	if (ret) {
		rm = ret;
		goto lib_fail;
	}
	if (check_pools(fdt, true) < 0) {
		err("internal error: the new pool does not check out; %s not written", out);
		goto fail;
	}
	if (save_dtb(out, fdt))
		goto fail;
	printf("%s: /reserved-memory/%s, %#" PRIx64 "-%#" PRIx64 " (%" PRIu64 " MiB) for %s\n",
	       out, name, best, best + size - 1, size >> 20, kind->driver);
	free(fdt);
	return 0;
cells_fail:
	err("/reserved-memory cell sizes (#address-cells=%d, #size-cells=%d) cannot express %#"
	    PRIx64 "+%#" PRIx64, ac, sc, best, size);
	goto fail;
lib_fail:
	err("cannot edit the device tree: %s", fdt_strerror(rm));
fail:
	free(fdt);
	return 1;
}

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: %s " MERGE_USAGE "\n"
		"       %s " ADD_POOL_USAGE "\n"
		"       %s inspect [DTB]      (default: /sys/firmware/fdt)\n"
		"       %s --version | --help\n",
		prog, prog, prog, prog);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("%s %s\n", prog, VMSG_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "merge"))
		return cmd_merge(argc - 1, argv + 1);
	if (!strcmp(argv[1], "add-pool"))
		return cmd_add_pool(argc - 1, argv + 1);
	if (!strcmp(argv[1], "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	err("unknown command '%s'", argv[1]);
	print_usage(stderr);
	return 2;
}
