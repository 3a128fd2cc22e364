/* cmd_data.h - what the modules of `gvc data` share (cmd_data.c: token datasets,
 * cmd_data_images.c: image datasets), inline so that neither object depends on the other
 * for it (cmd_data.c already calls into cmd_data_images.c). */
#ifndef GV_CMD_DATA_H
#define GV_CMD_DATA_H

#include <stdarg.h>
#include <stdio.h>

/* Prints "gvc data: error: ..." to stderr; returns 1, the exit code of a user error. */
static inline int cmd_data_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int cmd_data_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "gvc data: error: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

#endif
