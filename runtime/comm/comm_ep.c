/* comm_ep.c - expert parallelism's grouped linear over an ep group (gvrt_comm.h): each rank
 * of the group holds E / P of a mixture-of-experts layer's E experts (rank j: experts
 * [j E/P, (j+1) E/P)). A call sends this rank's routed rows (expert-sorted, so each rank's
 * rows are contiguous) to the ranks holding their experts with an all-to-all of variable
 * counts (the counts of every rank per expert are exchanged first, on the host), sorts the
 * received rows by local expert (the routing contract's permute with one choice per row),
 * runs the local grouped linear, and sends the outputs back the same way. The backward
 * dispatches x and dy alike, runs the local grouped backward (the weight gradient stays
 * here) and returns dx. Every kernel is a backend op, so cpu (mpi) and cuda (nccl) share it. */
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"

/* One call's routing: every rank's routed rows per expert, the rows exchanged with each
 * rank, the received rows' local experts and the scratch regions. */
struct ep_call {
  struct gv_comm *c;
  struct gv_backend *be;
  int P, r;
  int64_t E, El, rows, R; /* experts, local experts, routed rows here, rows received */
  enum gv_dtype t;
  int32_t *cnt;           /* [P][E] */
  size_t *send, *recv;    /* rows to and from each rank */
  void *lidx;             /* i32 [R] (scratch): each received row's local expert */
  char *reg[GV_EP_MLP_REGIONS]; /* scratch regions of rows x P x max(K, N) elements (3 for a grouped linear) */
};

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }

static struct gv_tensor mat(void *p, enum gv_dtype t, int64_t rows, int64_t cols)
{
  return gv_tensor_4d(p, t, rows, cols, 0, 0);
}

static struct ep_call ep_make(struct gv_comm *c, struct gv_backend *be, const struct gv_tensor *x,
                              const struct gv_tensor *idx, int64_t E, int64_t K, int64_t N, int nreg, void *scratch)
{
  struct ep_call g = {c, be, gv_comm_size(c), gv_comm_rank(c), E, 0, gv_tensor_numel(idx), 0, x->dtype, NULL, NULL,
                      NULL, NULL, {NULL}};
  GV_CHECK(E % g.P == 0 && scratch != NULL, "expert parallelism: %lld experts over %d ranks (need a multiple), scratch %p",
           (long long)E, g.P, scratch);
  g.El = E / g.P;
  g.cnt = calloc((size_t)(g.P * E), sizeof *g.cnt);
  g.send = calloc((size_t)g.P, sizeof *g.send);
  g.recv = calloc((size_t)g.P, sizeof *g.recv);
  int32_t *ids = malloc(sizeof *ids * (size_t)(g.rows > 0 ? g.rows : 1)),
          *li = malloc(sizeof *li * (size_t)(g.rows * g.P > 0 ? g.rows * g.P : 1));
  GV_CHECK(g.cnt && g.send && g.recv && ids && li, "expert parallelism: out of host memory");
  gv_dev_memcpy(be, ids, idx->data, sizeof *ids * (size_t)g.rows, GV_COPY_D2H);
  int32_t *mine = g.cnt + (size_t)g.r * (size_t)E;
  for (int64_t a = 0; a < g.rows; a++) {
    GV_CHECK(ids[a] >= 0 && ids[a] < E, "expert parallelism: expert id %d out of [0, %lld)", ids[a], (long long)E);
    mine[ids[a]]++;
  }
  gv_comm_all_reduce_host(c, g.cnt, (size_t)(g.P * E), GV_DTYPE_I32, GV_REDUCE_SUM);
  for (int j = 0; j < g.P; j++)
    for (int64_t e = 0; e < g.El; e++) {
      g.send[j] += (size_t)mine[j * g.El + e];
      g.recv[j] += (size_t)g.cnt[(size_t)j * (size_t)E + (size_t)(g.r * g.El + e)];
    }
  for (int j = 0; j < g.P; j++) /* received from rank j: its rows of my experts, in expert order */
    for (int64_t e = 0; e < g.El; e++)
      for (int32_t q = 0; q < g.cnt[(size_t)j * (size_t)E + (size_t)(g.r * g.El + e)]; q++)
        li[g.R++] = (int32_t)e;
  size_t region = round64((size_t)(g.rows * g.P) * (size_t)(K > N ? K : N) * gv_dtype_size(x->dtype));
  char *s = scratch;
  for (int k = 0; k < nreg; k++)
    g.reg[k] = s + (size_t)k * region;
  g.lidx = s + (size_t)nreg * region;
  if (g.R)
    gv_dev_memcpy(be, g.lidx, li, sizeof *li * (size_t)g.R, GV_COPY_H2D);
  free(ids);
  free(li);
  return g;
}

static void ep_free(struct ep_call *g)
{
  free(g->cnt);
  free(g->send);
  free(g->recv);
}

/* Routed rows of `cols` elements: out-going (src: this rank's routed layout, to dst: the
 * received rows) or back (the received layout to the routed one). */
static void ep_exchange(struct ep_call *g, void *dst, const void *src, int64_t cols, int back)
{
  size_t *s = malloc(sizeof *s * (size_t)g->P), *r = malloc(sizeof *r * (size_t)g->P);
  GV_CHECK(s && r, "expert parallelism: out of host memory");
  for (int j = 0; j < g->P; j++) {
    s[j] = (back ? g->recv[j] : g->send[j]) * (size_t)cols;
    r[j] = (back ? g->send[j] : g->recv[j]) * (size_t)cols;
  }
  gv_comm_all_to_all_v(g->c, dst, r, src, s, g->t);
  free(s);
  free(r);
}

/* The received rows (dst, src: [R, cols]) sorted by local expert (to_sorted), or back. */
static void ep_sort(struct ep_call *g, void *dst, void *src, int64_t cols, int to_sorted)
{
  struct gv_tensor D = mat(dst, g->t, g->R, cols), S = mat(src, g->t, g->R, cols), I = mat(g->lidx, GV_DTYPE_I32, g->R, 1);
  if (to_sorted)
    gv_moe_permute_fwd(g->be, &D, &S, &I, g->El);
  else
    gv_moe_permute_bwd(g->be, &D, &S, &I, g->El, 0);
}

/* The received rows' dx (src, received order) back to the routed layout: into dx, or
 * (acc) through region tmp and added. */
static void ep_combine(struct ep_call *g, struct gv_tensor *dx, void *src, void *tmp, int acc)
{
  int64_t K = dx->shape[1];
  if (!acc) {
    ep_exchange(g, dx->data, src, K, 1);
    return;
  }
  struct gv_tensor T = mat(tmp, g->t, g->rows, K);
  ep_exchange(g, tmp, src, K, 1);
  gv_axpy(g->be, dx, 1.0f, &T);
}

/* The routed rows of src [rows, cols] on the ranks holding their experts, sorted by local
 * expert into dst, through region tmp. */
static void ep_dispatch(struct ep_call *g, void *dst, const void *src, int64_t cols, void *tmp)
{
  ep_exchange(g, tmp, src, cols, 0);
  if (g->R)
    ep_sort(g, dst, tmp, cols, 1);
}

void gv_ep_grouped_fwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                       const struct gv_tensor *w, const struct gv_tensor *idx, int64_t experts, void *scratch)
{
  int64_t K = x->shape[1], N = y->shape[1];
  struct ep_call g = ep_make(c, be, x, idx, experts, K, N, 3, scratch);
  GV_CHECK(w->shape[0] == g.El && w->shape[1] == N && w->shape[2] == K,
           "expert parallelism: local experts' weight [%lld, %lld, %lld], expected [%lld, %lld, %lld]",
           (long long)w->shape[0], (long long)w->shape[1], (long long)w->shape[2], (long long)g.El, (long long)N,
           (long long)K);
  ep_exchange(&g, g.reg[0], x->data, K, 0);
  if (g.R) {
    struct gv_tensor XL = mat(g.reg[1], g.t, g.R, K), YL = mat(g.reg[0], g.t, g.R, N),
                     I = mat(g.lidx, GV_DTYPE_I32, g.R, 1);
    ep_sort(&g, g.reg[1], g.reg[0], K, 1);
    gv_moe_grouped_fwd(be, &YL, &XL, w, &I);
    ep_sort(&g, g.reg[2], g.reg[0], N, 0);
  }
  ep_exchange(&g, y->data, g.reg[2], N, 1);
  ep_free(&g);
}

void gv_ep_grouped_bwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                       const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                       const struct gv_tensor *idx, int64_t experts, void *scratch, int flags)
{
  int64_t K = x->shape[1], N = dy->shape[1];
  struct ep_call g = ep_make(c, be, x, idx, experts, K, N, 3, scratch);
  /* x's rows sorted in region 1, dy's in region 2 */
  ep_exchange(&g, g.reg[0], x->data, K, 0);
  if (g.R)
    ep_sort(&g, g.reg[1], g.reg[0], K, 1);
  ep_exchange(&g, g.reg[0], dy->data, N, 0);
  if (g.R) {
    ep_sort(&g, g.reg[2], g.reg[0], N, 1);
    struct gv_tensor XL = mat(g.reg[1], g.t, g.R, K), DYL = mat(g.reg[2], g.t, g.R, N), DXL = mat(g.reg[0], g.t, g.R, K),
                     I = mat(g.lidx, GV_DTYPE_I32, g.R, 1);
    gv_moe_grouped_bwd(be, dx ? &DXL : NULL, dw, &DYL, &XL, w, &I, flags & GV_ACC_DW);
    if (dx)
      ep_sort(&g, g.reg[1], g.reg[0], K, 0); /* dx's received rows back in their order */
  } else if (dw && !(flags & GV_ACC_DW)) {
    gv_fill(be, dw, 0.0f);
  }
  if (dx)
    ep_combine(&g, dx, g.reg[1], g.reg[2], flags & GV_ACC_DX);
  ep_free(&g);
}

/* ---- a SwiGLU expert MLP, one dispatch and one combine ---- */

/* The local experts' gate, up and SwiGLU on the sorted received rows X [R, D]: G, U, S =
 * silu(G) and H = S * U [R, F]. */
static void mlp_hidden(struct ep_call *g, const struct gv_tensor *X, const struct gv_tensor *I,
                       const struct gv_tensor *wg, const struct gv_tensor *wu, struct gv_tensor *G, struct gv_tensor *U,
                       struct gv_tensor *S, struct gv_tensor *H)
{
  gv_moe_grouped_fwd(g->be, G, X, wg, I);
  gv_moe_grouped_fwd(g->be, U, X, wu, I);
  gv_silu_fwd(g->be, S, G);
  gv_mul_fwd(g->be, H, S, U);
}

void gv_ep_mlp_fwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                   const struct gv_tensor *wg, const struct gv_tensor *wu, const struct gv_tensor *wd,
                   const struct gv_tensor *idx, int64_t experts, void *scratch)
{
  int64_t D = x->shape[1], F = wg->shape[1];
  struct ep_call g = ep_make(c, be, x, idx, experts, D, F, GV_EP_MLP_REGIONS, scratch);
  GV_CHECK(wg->shape[0] == g.El && wu->shape[1] == F && wd->shape[1] == y->shape[1] && wd->shape[2] == F,
           "expert parallelism: an expert MLP's weights [%lld, %lld, %lld], [%lld, %lld, %lld] for %lld local experts",
           (long long)wg->shape[0], (long long)wg->shape[1], (long long)wg->shape[2], (long long)wd->shape[0],
           (long long)wd->shape[1], (long long)wd->shape[2], (long long)g.El);
  ep_dispatch(&g, g.reg[1], x->data, D, g.reg[0]);
  if (g.R) {
    struct gv_tensor X = mat(g.reg[1], g.t, g.R, D), I = mat(g.lidx, GV_DTYPE_I32, g.R, 1),
                     G = mat(g.reg[2], g.t, g.R, F), U = mat(g.reg[3], g.t, g.R, F), S = mat(g.reg[4], g.t, g.R, F),
                     H = mat(g.reg[2], g.t, g.R, F), Y = mat(g.reg[0], g.t, g.R, y->shape[1]);
    mlp_hidden(&g, &X, &I, wg, wu, &G, &U, &S, &H); /* H over G: the forward keeps nothing */
    gv_moe_grouped_fwd(be, &Y, &H, wd, &I);
    ep_sort(&g, g.reg[4], g.reg[0], y->shape[1], 0);
  }
  ep_exchange(&g, y->data, g.reg[4], y->shape[1], 1);
  ep_free(&g);
}

void gv_ep_mlp_bwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dwg,
                   struct gv_tensor *dwu, struct gv_tensor *dwd, const struct gv_tensor *dy, const struct gv_tensor *x,
                   const struct gv_tensor *wg, const struct gv_tensor *wu, const struct gv_tensor *wd,
                   const struct gv_tensor *idx, int64_t experts, void *scratch, int flags)
{
  int64_t D = x->shape[1], F = wg->shape[1], N = dy->shape[1];
  struct ep_call g = ep_make(c, be, x, idx, experts, D, F > N ? F : N, GV_EP_MLP_REGIONS, scratch);
  char **r = g.reg; /* 1: X, 2: DY, 3: G, 4: U, 5: S, 6: H */
  ep_dispatch(&g, r[1], x->data, D, r[0]);
  ep_dispatch(&g, r[2], dy->data, N, r[0]);
  if (g.R) {
    struct gv_tensor X = mat(r[1], g.t, g.R, D), DY = mat(r[2], g.t, g.R, N), I = mat(g.lidx, GV_DTYPE_I32, g.R, 1),
                     G = mat(r[3], g.t, g.R, F), U = mat(r[4], g.t, g.R, F), S = mat(r[5], g.t, g.R, F),
                     H = mat(r[6], g.t, g.R, F), DH = mat(r[0], g.t, g.R, F), DS = mat(r[2], g.t, g.R, F),
                     DU = mat(r[6], g.t, g.R, F), DG = mat(r[0], g.t, g.R, F), DXU = mat(r[2], g.t, g.R, D),
                     DXG = mat(r[3], g.t, g.R, D);
    mlp_hidden(&g, &X, &I, wg, wu, &G, &U, &S, &H); /* recomputed: the forward kept nothing */
    gv_moe_grouped_bwd(be, &DH, dwd, &DY, &H, wd, &I, flags & GV_ACC_DW);
    gv_mul_bwd(be, &DS, &DU, &DH, &S, &U, 0);
    gv_silu_bwd(be, &DG, &DS, &G, 0);
    gv_moe_grouped_bwd(be, dx ? &DXU : NULL, dwu, &DU, &X, wu, &I, flags & GV_ACC_DW);
    gv_moe_grouped_bwd(be, dx ? &DXG : NULL, dwg, &DG, &X, wg, &I, flags & GV_ACC_DW);
    if (dx) {
      gv_axpy(be, &DXU, 1.0f, &DXG); /* the up part plus the gate part, as the input's gradient sums them */
      ep_sort(&g, r[1], r[2], D, 0);
    }
  } else if (!(flags & GV_ACC_DW)) {
    gv_fill(be, dwg, 0.0f);
    gv_fill(be, dwu, 0.0f);
    gv_fill(be, dwd, 0.0f);
  }
  if (dx)
    ep_combine(&g, dx, r[1], r[2], flags & GV_ACC_DX);
  ep_free(&g);
}
