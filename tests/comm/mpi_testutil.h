/* mpi_testutil.h - what the tests and benchmarks under mpirun share: the world and a cpu
 * backend at the start, the tally at the end (rank 0 prints the name, the other ranks
 * "name (rank)"), deterministic pseudo-random data, and an elementwise comparison that
 * names the rank and the first three mismatches. */
#ifndef GV_MPI_TESTUTIL_H
#define GV_MPI_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gvrt_comm.h"
#include "testutil.h"

/* n floats in [-1, 1) from a linear congruential generator seeded with seed. */
static inline float *mt_fill_rand(int64_t n, uint32_t seed)
{
  float *p = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return p;
}

/* got[i] against want[i] + add, |got - e| <= atol + rtol * |e|; one CHECK for the whole array. */
static inline void mt_check_close(const char *what, int rank, const float *got, const float *want, int64_t n,
                                  float add, double atol, double rtol)
{
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 3; i++) {
    double e = want[i] + add;
    if (!(fabs(got[i] - e) <= atol + rtol * fabs(e))) {
      bad++;
      fprintf(stderr, "rank %d: %s[%lld]: expected %.9g, got %.9g\n", rank, what, (long long)i, e, got[i]);
    }
  }
  CHECK(bad == 0);
}

/* The world (the default collective backend) and a cpu backend. */
struct mt_world {
  struct gv_comm *comm;
  struct gv_backend be;
};

static inline void mt_start(struct mt_world *m, int *argc, char ***argv)
{
  m->comm = gv_comm_init_world(argc, argv, NULL);
  gv_backend_init(&m->be, "cpu", 0);
}

/* Prints the tally, frees the backend and the world; returns the exit code. */
static inline int mt_finish(struct mt_world *m, const char *name)
{
  char label[128];
  snprintf(label, sizeof label, gv_comm_rank(m->comm) == 0 ? "%s" : "%s (rank)", name);
  int rc = tu_report(label);
  gv_backend_free(&m->be);
  gv_comm_free_world(&m->comm);
  return rc;
}

#endif
