/* test_collectives.c - the collective interface under mpirun (nccl-tests style: data
 * chosen so every expected result has a closed form), the rank layout of Galvatron's
 * groups, and the sharing of communicators between layers with the same layout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gvrt_comm.h"
#include "testutil.h"

static void check_collectives(struct gv_comm *g, const char *what)
{
  int r = gv_comm_rank(g), n = gv_comm_size(g);
  enum { N = 5 };
  float buf[N];
  for (int i = 0; i < N; i++)
    buf[i] = (float)((r + 1) * (i + 1));
  gv_comm_all_reduce(g, buf, N, GV_DTYPE_F32, GV_REDUCE_SUM);
  for (int i = 0; i < N; i++)
    CHECK_CLOSE(n * (n + 1) / 2.0 * (i + 1), buf[i], 0, 0);

  float *in = malloc(sizeof(float) * N * (size_t)n), *out = malloc(sizeof(float) * N * (size_t)n);
  for (int j = 0; j < n * N; j++)
    in[j] = (float)(r * 1000 + j);                  /* block b, element i: r*1000 + b*N + i */
  gv_comm_reduce_scatter(g, out, in, N, GV_DTYPE_F32);
  for (int i = 0; i < N; i++)                       /* sum over ranks q of q*1000 + r*N + i */
    CHECK_CLOSE(1000.0 * n * (n - 1) / 2 + (double)n * (r * N + i), out[i], 0, 0);

  float mine[N];
  for (int i = 0; i < N; i++)
    mine[i] = (float)(r * 10 + i);
  gv_comm_all_gather(g, out, mine, N, GV_DTYPE_F32);
  for (int q = 0; q < n; q++)
    for (int i = 0; i < N; i++)
      CHECK_CLOSE(q * 10 + i, out[q * N + i], 0, 0);

  for (int q = 0; q < n; q++)                       /* block q goes to rank q: value r*100 + q */
    for (int i = 0; i < N; i++)
      in[q * N + i] = (float)(r * 100 + q + i);
  gv_comm_all_to_all(g, out, in, N, GV_DTYPE_F32);
  for (int q = 0; q < n; q++)                       /* block q came from rank q */
    for (int i = 0; i < N; i++)
      CHECK_CLOSE(q * 100 + r + i, out[q * N + i], 0, 0);

  /* variable counts: rank r sends (r + q + 1) % 3 elements to rank q (none to some) */
  size_t sc[8], rc[8], at = 0;
  for (int q = 0; q < n && n <= 8; q++) {
    sc[q] = rc[q] = (size_t)((r + q + 1) % 3);
    for (size_t i = 0; i < sc[q]; i++)
      in[at++] = (float)(r * 100 + q * 10 + (int)i);
  }
  if (n <= 8) {
    gv_comm_all_to_all_v(g, out, rc, in, sc, GV_DTYPE_F32);
    at = 0;
    for (int q = 0; q < n; q++) /* from rank q: q*100 + r*10 + i */
      for (size_t i = 0; i < rc[q]; i++)
        CHECK_CLOSE(q * 100 + r * 10 + (int)i, out[at++], 0, 0);
  }

  int32_t v = r == 0 ? 4242 : -1;
  gv_comm_broadcast(g, &v, 1, GV_DTYPE_I32, 0);
  CHECK_EQ_INT(4242, v);

  if (n > 1) { /* ring: send to r+1, receive from r-1 (even ranks send first) */
    int32_t s = r * 7, got = -1;
    int next = (r + 1) % n, prev = (r + n - 1) % n;
    if (r % 2 == 0) {
      gv_comm_send(g, &s, 1, GV_DTYPE_I32, next, 3);
      gv_comm_recv(g, &got, 1, GV_DTYPE_I32, prev, 3);
    } else {
      gv_comm_recv(g, &got, 1, GV_DTYPE_I32, prev, 3);
      gv_comm_send(g, &s, 1, GV_DTYPE_I32, next, 3);
    }
    CHECK_EQ_INT(prev * 7, got);
  }

  uint16_t h[2] = {0x3f80, 0x4000};                 /* bf16 1.0 and 2.0 */
  gv_comm_all_reduce(g, h, 2, GV_DTYPE_BF16, GV_REDUCE_SUM);
  CHECK_CLOSE(n * 1.0, (double)(union { uint32_t u; float f; }){.u = (uint32_t)h[0] << 16}.f, 0, 0);
  CHECK_CLOSE(n * 2.0, (double)(union { uint32_t u; float f; }){.u = (uint32_t)h[1] << 16}.f, 0, 0);
  free(in);
  free(out);
  if (tu_failures)
    fprintf(stderr, "  (in group %s)\n", what);
}

/* Members of this rank's group must be exactly the ranks the layout puts with it. */
/* The host-scalar forms (identical to the plain calls on host backends), the node-local
 * rank (one node under mpirun: the world rank), and groups of one copying through a kernel
 * backend set with gv_comm_set_backend. */
static void check_host_paths(struct gv_comm *w)
{
  int r = gv_comm_rank(w), n = gv_comm_size(w);
  float f = (float)(r + 1);
  double d = 0.5 * (r + 1);
  int32_t tok = r == n - 1 ? 42 : -1;
  gv_comm_all_reduce_host(w, &f, 1, GV_DTYPE_F32, GV_REDUCE_SUM);
  gv_comm_all_reduce_host(w, &d, 1, GV_DTYPE_F64, GV_REDUCE_SUM);
  gv_comm_broadcast_host(w, &tok, 1, GV_DTYPE_I32, n - 1);
  CHECK_CLOSE(n * (n + 1) / 2.0, f, 0, 0);
  CHECK_CLOSE(n * (n + 1) / 4.0, d, 0, 0);
  CHECK_EQ_INT(42, tok);
  CHECK_EQ_INT(0, gv_comm_device_buffers(w));
  CHECK_EQ_INT(r, gv_comm_local_rank(w));

  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  gv_comm_set_backend(w, &be);
  int colors[64];
  for (int i = 0; i < n && i < 64; i++)
    colors[i] = i;                          /* singletons */
  struct gv_comm *one = gv_comm_partition(w, colors);
  float in[3] = {1, 2, 3}, out[3] = {0, 0, 0};
  gv_comm_all_gather(one, out, in, 3, GV_DTYPE_F32);
  CHECK(out[0] == 1 && out[1] == 2 && out[2] == 3);
  gv_comm_reduce_scatter(one, out, in + 1, 2, GV_DTYPE_F32);
  CHECK(out[0] == 2 && out[1] == 3 && out[2] == 3);
  gv_comm_set_backend(w, NULL);
  gv_backend_free(&be);
}

static void check_membership(struct gv_comm *w, const struct gv_layout *l, enum gv_group_kind k)
{
  struct gv_comm *g = gv_comm_layout_group(w, l, k);
  int me = gv_comm_rank(w), s0, t0, d0;
  gv_layout_coords(l, me, &s0, &t0, &d0);
  int count = 0;
  for (int r = 0; r < l->world; r++) {
    int s, t, d;
    gv_layout_coords(l, r, &s, &t, &d);
    int same = k == GV_GROUP_TP ? (s == s0 && d == d0) : k == GV_GROUP_DP ? (s == s0 && t == t0)
             : k == GV_GROUP_STAGE ? s == s0 : k == GV_GROUP_PP ? (r % (l->world / l->pp) == me % (l->world / l->pp)) : 1;
    if (same) {
      CHECK_EQ_INT(r, gv_comm_world_rank_of(g, count));
      count++;
    }
  }
  CHECK_EQ_INT(count, gv_comm_size(g));
  check_collectives(g, "layout");
}

int main(int argc, char **argv)
{
  struct gv_comm *w = gv_comm_init_world(&argc, &argv, NULL);
  int n = gv_comm_size(w);
  check_collectives(w, "world");
  int not_a_stream = 0;   /* host backends ignore the compute stream: still synchronous */
  gv_comm_set_stream(w, &not_a_stream);
  check_collectives(w, "world, after gv_comm_set_stream");
  gv_comm_set_stream(w, NULL);
  check_host_paths(w);

  int pps[] = {1, 2}, tps[] = {1, 2, 4};
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 3; b++)
      for (int c = 0; c <= 1; c++) {
        struct gv_layout l = {n, pps[a], tps[b], c};
        if (n % l.pp || (n / l.pp) % l.tp)
          continue;
        for (int k = GV_GROUP_TP; k <= GV_GROUP_WORLD; k++)
          check_membership(w, &l, (enum gv_group_kind)k);
      }

  /* Galvatron 2.x layout for 8 ranks, pp 2, tp 2: consecutive tp {0,1}; strided tp {0,2}. */
  if (n == 8) {
    int colors[8];
    char why[128];
    struct gv_layout cons = {8, 2, 2, 1}, strided = {8, 2, 2, 0};
    gv_layout_colors(&cons, GV_GROUP_TP, colors, why, sizeof why);
    CHECK(colors[0] == colors[1] && colors[0] != colors[2] && colors[4] == colors[5] && colors[3] != colors[4]);
    gv_layout_colors(&strided, GV_GROUP_TP, colors, why, sizeof why);
    CHECK(colors[0] == colors[2] && colors[1] == colors[3] && colors[0] != colors[1] && colors[4] == colors[6]);
    struct gv_layout bad = {8, 3, 1, 1};
    CHECK(gv_layout_colors(&bad, GV_GROUP_TP, colors, why, sizeof why) == -1);
    CHECK(strstr(why, "not divisible by pp=3") != NULL);
  }

  /* Groups are shared by partition: asking again, or via another kind that happens to give
   * the same partition (tp=1 TP groups == singletons == dp=1 DP groups), creates nothing. */
  int before = gv_comm_groups_created(w);
  struct gv_layout l1 = {n, 1, 1, 1};
  gv_comm_layout_group(w, &l1, GV_GROUP_TP);
  struct gv_layout lstage = {n, 1, n, 1};
  gv_comm_layout_group(w, &lstage, GV_GROUP_DP);       /* dp = 1: singletons again */
  CHECK_EQ_INT(before, gv_comm_groups_created(w));

  int rank = gv_comm_rank(w);
  gv_comm_free_world(&w);
  if (rank == 0)
    return tu_report("comm_collectives");
  return tu_failures ? 1 : 0;
}
