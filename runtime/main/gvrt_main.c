/* gvrt_main.c - main() of a compiled training binary: the generated object defines
 * gvp_describe(), the runtime does the rest (gv_main). Kept out of libgvrt so that
 * programs run by the JIT inside gvc use gvc's own main. */
#include "gvrt_program.h"

void gvp_describe(void *ctx, char *const *bases, int64_t slot);

int main(int argc, char **argv)
{
  return gv_main(argc, argv, gvp_describe);
}
