/* cmd.h - the gvc subcommands. Each is implemented in its own module (cmd_<name>.c or
 * the module it drives) and takes argv after the command word. Returns the exit code:
 * 0 success, 1 user error. A command whose module is not linked into this build is a
 * weak NULL and the driver says so. */
#ifndef GV_CMD_H
#define GV_CMD_H

typedef int (*CmdFn)(int argc, char **argv);

int cmd_check(int argc, char **argv);   /* parse and check .gvm files */
int cmd_info(int argc, char **argv);    /* per-layer params, FLOPs, activation bytes */
int cmd_search(int argc, char **argv);  /* hybrid-parallel strategy search */
int cmd_cost(int argc, char **argv);    /* evaluate a given strategy under the cost model */
int cmd_data(int argc, char **argv);    /* text/JSONL -> Megatron .bin/.idx */
int cmd_data_images(int argc, char **argv); /* gvc data --images: CSV or PGM/PPM folder -> .gvimg */
int cmd_compile(int argc, char **argv); /* lower and emit a training program */
int cmd_run(int argc, char **argv);     /* compile with the JIT and train at once */
int cmd_plan(int argc, char **argv);    /* resolve and print the per-layer strategy */
int cmd_profile(int argc, char **argv); /* gvc profile <what>: write Galvatron's profile files */
int cmd_profile_hardware(int argc, char **argv); /* gvc profile hardware (profile_hw.c) */
int cmd_convert(int argc, char **argv); /* Hugging Face model folders in and out */
int cmd_profile_computation(int argc, char **argv); /* gvc profile computation (profile_compute.c) */
int cmd_profile_memory(int argc, char **argv);      /* gvc profile memory (profile_memory.c) */

#endif
