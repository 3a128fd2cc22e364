/* cmd_data.h - what the modules of `gvc data` share (cmd_data.c: token datasets,
 * cmd_data_images.c: image datasets). */
#ifndef GV_CMD_DATA_H
#define GV_CMD_DATA_H

/* Prints "gvc data: error: ..." to stderr; returns 1, the exit code of a user error. */
int cmd_data_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
