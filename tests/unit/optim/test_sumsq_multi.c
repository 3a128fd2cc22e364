/* test_sumsq_multi.c - the gradient norm's sum of squares over many shards in one parallel
 * region equals the per-shard sums added in order, bit for bit, on one and two threads:
 * gv_optim_sq_sum_multi against gv_optim_sq_sum, and gv_sumsq_multi through the cpu backend
 * against gv_sumsq (f32 shards, and a list with a bf16 one). Shard sizes straddle the
 * parallel threshold (65536) and leave uneven thread splits. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"
#include "gvrt_train.h"
#include "testutil.h"

enum { NS = 7 };
static const size_t sizes[NS] = {70001, 5, 65536, 65537, 200003, 1, 384};

static float *shard(size_t n, uint64_t *state)
{
  float *g = malloc(n * sizeof *g);
  for (size_t i = 0; i < n; i++) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    g[i] = (float)((double)(*state >> 40) / (double)(1 << 24) - 0.5) * 1e-2f;
  }
  return g;
}

static int same(double a, double b) { return !memcmp(&a, &b, sizeof a); }

int main(void)
{
  uint64_t state = 42;
  float *g[NS];
  uint16_t *h = malloc(sizes[0] * sizeof *h);
  struct gv_tensor ts[NS];
  for (int i = 0; i < NS; i++) {
    g[i] = shard(sizes[i], &state);
    ts[i] = gv_tensor_4d(g[i], GV_DTYPE_F32, (int64_t)sizes[i], 0, 0, 0);
  }
  gv_optim_to_bf16(h, g[0], sizes[0]);
  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  for (int threads = 1; threads <= 2; threads++) {
    omp_set_num_threads(threads);
    double want = 0.0, want_be = 0.0;
    for (int i = 0; i < NS; i++) {
      want += gv_optim_sq_sum(g[i], sizes[i]);
      want_be += gv_sumsq(&be, &ts[i]);
    }
    CHECK(same(want, want_be));
    CHECK(same(want, gv_optim_sq_sum_multi((const float *const *)g, sizes, NS)));
    CHECK(same(want, gv_sumsq_multi(&be, ts, NS)));
    CHECK(same(gv_optim_sq_sum(g[1], sizes[1]) + gv_optim_sq_sum(g[5], sizes[5]),
               gv_optim_sq_sum_multi((const float *const[]){g[1], g[5]}, (const size_t[]){sizes[1], sizes[5]}, 2)));
    CHECK(same(0.0, gv_sumsq_multi(&be, ts, 0)));
    struct gv_tensor mixed[NS];                              /* a bf16 shard among them */
    memcpy(mixed, ts, sizeof mixed);
    mixed[0] = gv_tensor_4d(h, GV_DTYPE_BF16, (int64_t)sizes[0], 0, 0, 0);
    double want_mixed = 0.0;
    for (int i = 0; i < NS; i++)
      want_mixed += gv_sumsq(&be, &mixed[i]);
    CHECK(same(want_mixed, gv_sumsq_multi(&be, mixed, NS)));
    CHECK(!same(want, want_mixed));
  }
  gv_backend_free(&be);
  for (int i = 0; i < NS; i++)
    free(g[i]);
  free(h);
  return tu_report("test_sumsq_multi");
}
