/* cmd_check.c - `gvc check FILE...`: parse and check every file (and its imports),
 * evaluating every size it defines; diagnostics on stderr, exit 1 if any file is bad. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "frontend.h"
#include "diag.h"

int cmd_check(int argc, char **argv)
{
  int nfiles = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: gvc check FILE...\n\n"
             "Parses and checks each .gvm file and everything it imports, and evaluates every\n"
             "size it defines (shapes, arguments, divisibility). Prints diagnostics as\n"
             "file:line:col: error: ... and exits 1 if any file has an error, 0 otherwise.\n");
      return 0;
    }
    if (argv[i][0] == '-') {
      diag_plain(NULL, "unknown option '%s' (see 'gvc check --help')", argv[i]);
      return 1;
    }
    Ctx *cx = ctx_new();
    bad += frontend_check_file(cx, argv[i]) > 0;
    ctx_free(&cx);
    nfiles++;
  }
  if (!nfiles) {
    diag_plain(NULL, "no input files (see 'gvc check --help')");
    return 1;
  }
  if (!bad)
    fprintf(stderr, "gvc: %d file%s checked, no errors\n", nfiles, nfiles == 1 ? "" : "s");
  return bad ? 1 : 0;
}
