/* test_fatal_mpi.c - gv_fatal ends the whole MPI job: rank 1 fails a GV_CHECK while rank 0
 * waits in a barrier that can only end by the job being aborted. Run by check_fatal_mpi.sh,
 * which expects a non-zero exit and rank 1's message; a hang is a failure (ctest timeout). */
#include <mpi.h>

#include "gvrt.h"

int main(int argc, char **argv)
{
  int rank = 0, world = 1;
  GV_MPI_CHECK(MPI_Init(&argc, &argv));
  GV_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  GV_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world));
  gv_log_set_rank(rank, world);
  GV_CHECK(rank != 1, "deliberate failure on rank %d of %d", rank, world);
  GV_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  MPI_Finalize();
  return 0;
}
