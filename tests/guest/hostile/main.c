// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmsg-hostile: command line and the list of scenarios, which the
 * scenario files fill in from their constructors (HOSTILE_SCENARIO), so
 * that adding a scenario touches no file but its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostile.h"

static struct hostile_scenario *scenarios;

void hostile_register(struct hostile_scenario *s)
{
	struct hostile_scenario **p = &scenarios;

	/* Sorted by name, so that --help reads the same on every build. */
	while (*p && strcmp((*p)->name, s->name) < 0)
		p = &(*p)->next;
	s->next = *p;
	*p = s;
}

static void print_help(FILE *f)
{
	const struct hostile_scenario *s;

	fprintf(f,
		"usage: vmsg-hostile [-v] SCENARIO [ARGS]\n"
		"Plays a hostile or buggy device side of the virtio-msg loopback bus\n"
		"(/dev/virtio-msg-lb must exist).  Prints key=value results on stdout;\n"
		"exit status 0 when the scenario ran as intended, 1 when it could not\n"
		"provoke what it is for, 2 on a setup error.\n"
		"  -v        log every message (twice: more)\n"
		"  --help    this text\n"
		"Scenarios:\n");
	for (s = scenarios; s; s = s->next)
		fprintf(f, "  %-22s %s\n", s->name, s->help);
}

int main(int argc, char **argv)
{
	static struct hostile h;
	struct hostile_scenario *s;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			print_help(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-v")) {
			vmsg_verbose++;
		} else {
			print_help(stderr);
			return 2;
		}
	}
	if (i == argc) {
		print_help(stderr);
		return 2;
	}
	for (s = scenarios; s; s = s->next)
		if (!strcmp(s->name, argv[i]))
			break;
	if (!s) {
		fprintf(stderr, "vmsg-hostile: no scenario %s (--help lists them)\n", argv[i]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return s->run(&h, argc - i, argv + i);
}
