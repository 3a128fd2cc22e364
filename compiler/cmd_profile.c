/* cmd_profile.c - `gvc profile <what>`: the profilers that write Galvatron's profile
 * files. Each is its own module; one not linked into this build is a weak NULL. */
#include "cmd.h"
#include "diag.h"

#include <stdio.h>
#include <string.h>

#pragma weak cmd_profile_hardware

static void usage(FILE *f)
{
  fprintf(f, "usage: gvc profile <what> [options]\n\n"
             "  hardware   all-reduce, all-gather, reduce-scatter and point-to-point bandwidths, the\n"
             "             compute/communication overlap coefficient and the sp_time tables, measured on\n"
             "             the ranks of an mpirun (Galvatron's hardware files)\n\n"
             "Run 'gvc profile <what> --help' for its options.\n");
}

int cmd_profile(int argc, char **argv)
{
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2;
  }
  CmdFn fn = !strcmp(argv[1], "hardware") ? cmd_profile_hardware : NULL;
  if (!strcmp(argv[1], "hardware") && !fn) { diag_plain(NULL, "'profile hardware' is not part of this build"); return 1; }
  if (!fn) { diag_plain(NULL, "unknown profile '%s' (see 'gvc profile --help')", argv[1]); return 1; }
  return fn(argc - 1, argv + 1);
}
