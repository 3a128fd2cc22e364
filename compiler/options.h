/* options.h - the strategy options of `gvc compile`, `run` and `plan`, stated once for
 * the doors that set them: the command line (--NAME), a .gvm file's `strategy` blocks
 * (NAME = value, checked by `gvc check` too) and, for the same quantities, the keys of a
 * Galvatron JSON config. Each option has its kind and accepted values here; numbers are
 * parsed strictly (runtime/include/gvrt_num.h). */
#ifndef GV_OPTIONS_H
#define GV_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "gvrt_num.h"

/* The largest world (ranks) a program is built for; degrees are at most this. */
#define OPTIONS_MAX_WORLD (1 << 20)

typedef enum OptionKind {
  OPTION_INT,   /* a number in range */
  OPTION_ENUM,  /* one of values ("a|b|c") */
  OPTION_LIST,  /* a comma list without empty entries (numbers in range when integer is set) */
  OPTION_TEXT,  /* any non-empty text (a path) */
} OptionKind;

typedef struct Option {
  const char *name;           /* without "--" */
  OptionKind kind;
  struct gv_num_range range;  /* OPTION_INT, and OPTION_LIST entries when range.integer */
  const char *values;         /* OPTION_ENUM: "a|b|c"; OPTION_LIST of names: also accepted whole ("none|all") */
  int strategy;               /* settable in a .gvm strategy block */
} Option;

/* The option NAME (without "--"), or NULL. */
const Option *options_find(const char *name);
/* NULL when text is an accepted value of o, else what is expected (in buf). */
const char *options_check(const Option *o, const char *text, char *buf, size_t n);
/* The number given to option NAME; prints "gvc: error: --NAME 'TEXT': expected ..." and
 * returns 1 when it is not an accepted value. */
int options_int(const char *name, const char *text, int64_t *out);
/* The same for a comma list of integers (each in the option's range): count in *n, at
 * most cap entries; prints why and returns 1 otherwise. */
int options_int_list(const char *name, const char *text, int *out, int cap, int *n);

#endif
