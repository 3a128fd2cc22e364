/* version.c - the runtime's version string, checked by generated programs at start-up. */
#include "gvrt.h"

const char *gv_version(void) { return "gvrt 0.1.0"; }
