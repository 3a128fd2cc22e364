/* version.c - the runtime's version string, checked by generated programs at start-up. */
#include "gvrt.h"

const char *gv_version(void) { return "gvrt 0.1.0"; }

size_t gv_dtype_size(enum gv_dtype t) { return t == GV_DTYPE_BF16 ? 2 : 4; } /* until core/tensor.c lands */
