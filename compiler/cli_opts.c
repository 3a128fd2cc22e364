/* cli_opts.c - the table-driven option parser shared by the commands that speak
 * Galvatron's option names (see cli_opts.h). */
#include "cli_opts.h"

#include "gvrt_num.h"
#include "diag.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Numbers strictly (gvrt_num.h): any int, 0|1 for switches, any finite number for doubles. */
static int set_opt(const CliOpt *o, const char *v)
{
  static const struct gv_num_range any_int = GV_NUM_INT(INT_MIN, INT_MAX), bit = GV_NUM_INT(0, 1),
                                   real = {-INFINITY, INFINITY, 0, 0, 0};
  if (o->type != CLI_INT && o->type != CLI_SW && o->type != CLI_DBL) {
    *(const char **)o->p = v;
    return 0;
  }
  const struct gv_num_range *r = o->type == CLI_INT ? &any_int : o->type == CLI_SW ? &bit : &real;
  double x;
  char want[64];
  if (gv_num_parse(v, r, &x)) {
    diag_plain(NULL, "option --%s '%s': expected %s", o->name, v, gv_num_expected(r, want, sizeof want));
    return 1;
  }
  if (o->type == CLI_DBL) *(double *)o->p = x;
  else *(int *)o->p = (int)x;
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
      if (i + 1 >= argc) { diag_plain(NULL, "-o needs a file name"); return 1; }
      *out = argv[++i];
      continue;
    }
    if (strncmp(a, "--", 2)) {
      if (!file) { diag_plain(NULL, "unexpected argument '%s' (see --help)", a); return 1; }
      if (*file) { diag_plain(NULL, "more than one input file ('%s', '%s')", *file, a); return 1; }
      *file = a;
      continue;
    }
    char *eq = strchr(a, '=');
    const CliOpt *o = find(opts, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
    if (!o) { diag_plain(NULL, "unknown option '%s' (see --help)", a); return 1; }
    const char *v = eq ? eq + 1 : NULL;
    if (!v && o->type == CLI_SW) v = (i + 1 < argc && (!strcmp(argv[i + 1], "0") || !strcmp(argv[i + 1], "1"))) ? argv[++i] : "1";
    if (!v && i + 1 >= argc) { diag_plain(NULL, "option --%s needs a value", o->name); return 1; }
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
