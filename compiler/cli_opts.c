/* cli_opts.c - the table-driven option parser shared by the commands that speak
 * Galvatron's option names (see cli_opts.h). */
#include "cli_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_opt(const CliOpt *o, const char *v)
{
  char *end = NULL;
  switch (o->type) {
  case CLI_INT: case CLI_SW: *(int *)o->p = (int)strtol(v, &end, 10); break;
  case CLI_DBL: *(double *)o->p = strtod(v, &end); break;
  default: *(const char **)o->p = v; return 0;
  }
  if (!*v || *end) { fprintf(stderr, "gvc: error: option --%s: '%s' is not a number\n", o->name, v); return 1; }
  return 0;
}

static const CliOpt *find(const CliOpt *opts, const char *name, size_t len)
{
  for (int k = 0; opts[k].name; k++)
    if (strlen(opts[k].name) == len && !strncmp(opts[k].name, name, len)) return &opts[k];
  return NULL;
}

int cli_opts_parse(const CliOpt *opts, int argc, char **argv, const char **out, const char **file)
{
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 2;
    if (!strcmp(a, "-o")) {
      if (i + 1 >= argc) { fprintf(stderr, "gvc: error: -o needs a file name\n"); return 1; }
      *out = argv[++i];
      continue;
    }
    if (strncmp(a, "--", 2)) {
      if (!file) { fprintf(stderr, "gvc: error: unexpected argument '%s' (see --help)\n", a); return 1; }
      if (*file) { fprintf(stderr, "gvc: error: more than one input file ('%s', '%s')\n", *file, a); return 1; }
      *file = a;
      continue;
    }
    char *eq = strchr(a, '=');
    const CliOpt *o = find(opts, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
    if (!o) { fprintf(stderr, "gvc: error: unknown option '%s' (see --help)\n", a); return 1; }
    const char *v = eq ? eq + 1 : NULL;
    if (!v && o->type == CLI_SW) v = (i + 1 < argc && (!strcmp(argv[i + 1], "0") || !strcmp(argv[i + 1], "1"))) ? argv[++i] : "1";
    if (!v && i + 1 >= argc) { fprintf(stderr, "gvc: error: option --%s needs a value\n", o->name); return 1; }
    if (!v) v = argv[++i];
    if (set_opt(o, v)) return 1;
  }
  return 0;
}

void cli_opts_help(const CliOpt *opts)
{
  for (int i = 0; opts[i].name; i++) printf("  --%-34s %s\n", opts[i].name, opts[i].help);
  printf("  --%-34s %s\n", "help", "this text");
}
