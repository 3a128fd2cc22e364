/* rank_dies.c - one rank is killed (SIGKILL) while its peers block in a collective; the
 * job must end by itself within seconds rather than hang (run by rank_dies.sh). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "gvrt_comm.h"

int main(int argc, char **argv)
{
  struct gv_comm *w = gv_comm_init_world(&argc, &argv, NULL);
  gv_comm_barrier(w);
  if (gv_comm_rank(w) == 1) {
    fprintf(stderr, "rank 1: killing myself\n");
    raise(SIGKILL);
  }
  float x = 1.0f;
  for (;;)  /* peers wait in a collective the dead rank never joins */
    gv_comm_all_reduce(w, &x, 1, GV_DTYPE_F32, GV_REDUCE_SUM);
}
