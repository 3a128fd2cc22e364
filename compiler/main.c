/* main.c - the gvc driver: dispatches to a subcommand. Each subcommand's module owns
 * its argument parsing and its pass list; this file only routes and prints help. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "diag.h"

/* Weak so that the driver links before every module exists; a missing one is NULL. */
#pragma weak cmd_check
#pragma weak cmd_info
#pragma weak cmd_search
#pragma weak cmd_cost
#pragma weak cmd_data
#pragma weak cmd_compile
#pragma weak cmd_run
#pragma weak cmd_plan
#pragma weak cmd_profile
#pragma weak cmd_convert

typedef struct Cmd { const char *name; CmdFn fn; const char *summary; } Cmd;

static const Cmd *commands(int *n)
{
  static Cmd table[10];
  const Cmd init[] = {
    {"check",   cmd_check,   "parse and check .gvm files; diagnostics, exit 1 on error"},
    {"info",    cmd_info,    "per-layer table of params, forward FLOPs and activation bytes"},
    {"search",  cmd_search,  "search the fastest hybrid-parallel strategy within a memory budget"},
    {"cost",    cmd_cost,    "evaluate a strategy (e.g. a galvatron_config_*.json) under the cost model"},
    {"plan",    cmd_plan,    "resolve and print the per-layer strategy a program would run"},
    {"compile", cmd_compile, "lower a model to a per-rank training program"},
    {"run",     cmd_run,     "compile with the LLVM JIT and train at once"},
    {"profile", cmd_profile, "measure the hardware (Galvatron's bandwidth, overlap and sp_time files)"},
    {"data",    cmd_data,    "build a Megatron indexed dataset (.bin/.idx) from text or JSONL"},
    {"convert", cmd_convert, "import or export Hugging Face model folders (config.json + safetensors)"},
  };
  memcpy(table, init, sizeof init);
  *n = (int)(sizeof init / sizeof init[0]);
  return table;
}

static void usage(FILE *f)
{
  int n;
  const Cmd *c = commands(&n);
  fprintf(f, "usage: gvc <command> [options]\n\n"
             "gvc compiles Transformer models written in .gvm into hybrid-parallel training\n"
             "programs, searching the per-layer strategy that trains fastest in a memory budget.\n\n"
             "commands:\n");
  for (int i = 0; i < n; i++)
    fprintf(f, "  %-8s %s%s\n", c[i].name, c[i].summary, c[i].fn ? "" : " (not in this build)");
  fprintf(f, "\nRun 'gvc <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("gvc 0.1.0\n");
    return 0;
  }
  int n;
  const Cmd *c = commands(&n);
  for (int i = 0; i < n; i++) {
    if (strcmp(argv[1], c[i].name))
      continue;
    if (!c[i].fn) {
      diag_plain(NULL, "'%s' is not part of this build yet", c[i].name);
      return 1;
    }
    return c[i].fn(argc - 1, argv + 1);
  }
  diag_plain(NULL, "unknown command '%s' (see 'gvc --help')", argv[1]);
  return 1;
}
