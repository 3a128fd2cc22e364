/* data_err.h - runtime/data's error path: one printf-style setter that fills a
 * caller's message buffer (when given) and returns the status, and the
 * GV_DATA_TRY goto macro (the runtime's GV_TRY under a local name until merge). */
#ifndef GV_DATA_ERR_H
#define GV_DATA_ERR_H

#include "gvrt_data.h"

#if defined(__GNUC__)
#define GV_DATA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GV_DATA_PRINTF(a, b)
#endif

/* Fills err (errn bytes; may be NULL) with "fmt..." and returns st. */
gv_data_status gv_data_fail(char *err, size_t errn, gv_data_status st, const char *fmt, ...)
    GV_DATA_PRINTF(4, 5);

/* malloc'd prefix + ext ("data/x" + ".idx"); NULL when out of memory. */
char *gv_data_path(const char *prefix, const char *ext);

/* Stores the status of expr in st and jumps to label when it is not GV_DATA_OK. */
#define GV_DATA_TRY(expr, st, label) do { if (((st) = (expr)) != GV_DATA_OK) goto label; } while (0)

#endif
