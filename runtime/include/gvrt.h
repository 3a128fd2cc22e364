/* gvrt.h - the public API of libgvrt: everything generated training programs may call,
 * and nothing else. Internal modules use the headers under runtime/<folder>/. */
#ifndef GVRT_H
#define GVRT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define GV_API __attribute__((visibility("default")))
#else
#define GV_API
#endif

GV_API const char *gv_version(void);

enum gv_dtype { GV_DTYPE_F32, GV_DTYPE_BF16, GV_DTYPE_I32 };
GV_API size_t gv_dtype_size(enum gv_dtype t);

#endif
