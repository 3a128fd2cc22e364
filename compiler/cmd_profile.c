/* cmd_profile.c - `gvc profile <what>`: the profilers that write Galvatron's profile
 * files. Each is its own module; one not linked into this build is a weak NULL. */
#include "cmd.h"
#include "diag.h"
#include "profile_model.h"

#include <stdio.h>
#include <string.h>

#pragma weak cmd_profile_hardware

static void usage(FILE *f)
{
  fprintf(f, "usage: gvc profile <what> [options]\n\n"
             "  hardware     all-reduce, all-gather, reduce-scatter and point-to-point bandwidths, the\n"
             "               compute/communication overlap coefficient and the sp_time tables, measured on\n"
             "               the ranks of an mpirun (Galvatron's hardware files)\n"
             "  computation  forward and backward time per layer and of the rest (embedding, head, loss),\n"
             "               per batch size or sequence length, measured by compiling and running the model\n"
             "  memory       memory per layer per tp degree (with and without checkpointing and sequence\n"
             "               parallelism) and of the rest per pipeline position, from the memory plan, plus\n"
             "               what a run uses outside the plan\n\n"
             "Run 'gvc profile <what> --help' for its options.\n");
}

int cmd_profile(int argc, char **argv)
{
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2;
  }
  CmdFn fn = !strcmp(argv[1], "hardware") ? cmd_profile_hardware
             : !strcmp(argv[1], "computation") ? cmd_profile_computation
             : !strcmp(argv[1], "memory") ? cmd_profile_memory : NULL;
  if (!strcmp(argv[1], "hardware") && !fn) { diag_plain(NULL, "'profile hardware' is not part of this build"); return 1; }
  if (!fn) { diag_plain(NULL, "unknown profile '%s' (see 'gvc profile --help')", argv[1]); return 1; }
  return fn(argc - 1, argv + 1);
}
