/* cli_opts.h - one table-driven parser for the commands that take Galvatron's option
 * names (`gvc search`, `gvc cost`, `gvc profile hardware`): --x V or --x=V, 0/1 switches
 * also bare (--sequence_parallel), -o OUT, and at most one positional FILE. */
#ifndef GV_CLI_OPTS_H
#define GV_CLI_OPTS_H

enum { CLI_INT, CLI_DBL, CLI_STR, CLI_SW };

typedef struct CliOpt { const char *name; int type; void *p; const char *help; } CliOpt;

/* Parses argv[1..argc) into the table (NULL-name terminated). `out` receives -o's value
 * and `file` the positional argument (NULL: none is allowed). Returns 0, 1 on a usage
 * error (printed as `gvc: error: ...`), 2 when --help or -h was given. */
int cli_opts_parse(const CliOpt *opts, int argc, char **argv, const char **out, const char **file);
/* The option lines of a --help text (and --help's). */
void cli_opts_help(const CliOpt *opts);

#endif
