/* test_vit_ops.c - ViT's primitives on the CPU backend against PyTorch's (the fixture of
 * tests/reference/gen_vit_ops.py), through the entry points a generated program calls:
 * patch_embedding (Conv2d of stride p, Hugging Face's ViTPatchEmbeddings) forward and its
 * weight and bias gradients, accumulated when asked; the class token in front of the patch
 * rows, forward and the gradients of both; the first-token pooling and its gradient; and the
 * patch cut undone by its inverse.
 * Usage: test_vit_ops FIXTURE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/opcheck.h"
#include "program/run.h"
#include "program/tensorfile.h"

static struct gv_tf fx;

static float *rec(const char *name, size_t n)
{
  const struct gv_tf_record *r = gv_tf_find(&fx, name);
  if (!r || r->numel != n) {
    fprintf(stderr, "fixture: record '%s' missing or not of %zu elements\n", name, n);
    exit(1);
  }
  return r->data;
}

static void check(const char *what, const float *got, const char *want_name, int64_t n, double scale)
{
  const float *want = rec(want_name, (size_t)n);
  double *w = malloc((size_t)n * sizeof *w);
  for (int64_t i = 0; i < n; i++) w[i] = scale * want[i];
  oc_check(what, got, w, n, 1e-5, 1e-5);
  free(w);
}

static float *zeros(int64_t n) { return calloc((size_t)n, sizeof(float)); }

static void patch_embedding(struct gv_run *r, int64_t B, int64_t C, int64_t S, int64_t p, int64_t hid)
{
  int64_t N = (S / p) * (S / p), K = C * p * p;
  float *px = rec("pixels", (size_t)(B * C * S * S)), *w = rec("w", (size_t)(hid * K)), *b = rec("b", (size_t)hid);
  float *y = zeros(B * N * hid), *rows = zeros(B * N * K), *dw = zeros(hid * K), *db = zeros(hid), *back = zeros(B * C * S * S);
  gv_gen_patch_embed_fwd(r, y, rows, px, w, b, B, C, S, p, hid);
  check("patch_embedding y", y, "pe_y", B * N * hid, 1.0);
  float *dy = rec("pe_dy", (size_t)(B * N * hid));
  gv_gen_patch_embed_bwd(r, dw, db, dy, rows, px, w, B, C, S, p, hid, 0);
  check("patch_embedding dw", dw, "pe_dw", hid * K, 1.0);
  check("patch_embedding db", db, "pe_db", hid, 1.0);
  gv_gen_patch_embed_bwd(r, dw, db, dy, rows, px, w, B, C, S, p, hid, GV_ACC_DW);
  check("patch_embedding dw, accumulated", dw, "pe_dw", hid * K, 2.0);
  check("patch_embedding db, accumulated", db, "pe_db", hid, 2.0);
  struct gv_tensor R = gv_tensor_4d(rows, GV_DTYPE_F32, B, N, K, 0), I = gv_tensor_4d(back, GV_DTYPE_F32, B, C, S, S);
  gv_patchify(&r->be, &R, &I, p, 1);
  tu_checks++;
  if (memcmp(back, px, sizeof(float) * (size_t)(B * C * S * S))) {
    tu_failures++;
    fprintf(stderr, "patchify: the inverse does not give the images back\n");
  }
  free(y), free(rows), free(dw), free(db), free(back);
}

static void class_token(struct gv_run *r, int64_t B, int64_t N, int64_t hid)
{
  int64_t T = N + 1;
  float *x = rec("ct_x", (size_t)(B * N * hid)), *cls = rec("cls", (size_t)hid), *dy = rec("ct_dy", (size_t)(B * T * hid));
  float *y = zeros(B * T * hid), *dx = zeros(B * N * hid), *dcls = zeros(hid), *scratch = zeros(B * hid);
  gv_gen_class_token_fwd(r, y, x, cls, B, N, hid);
  check("class_token y", y, "ct_y", B * T * hid, 1.0);
  gv_gen_class_token_bwd(r, dx, dcls, dy, scratch, B, N, hid, 0);
  check("class_token dx", dx, "ct_dx", B * N * hid, 1.0);
  check("class_token dcls", dcls, "ct_dcls", hid, 1.0);
  gv_gen_class_token_bwd(r, dx, dcls, dy, scratch, B, N, hid, GV_ACC_DX | GV_ACC_DW);
  check("class_token dx, accumulated", dx, "ct_dx", B * N * hid, 2.0);
  check("class_token dcls, accumulated", dcls, "ct_dcls", hid, 2.0);
  float *f = zeros(B * hid), *fdx = malloc(sizeof(float) * (size_t)(B * T * hid));
  for (int64_t i = 0; i < B * T * hid; i++) fdx[i] = 7.0f; /* overwritten, not added to */
  gv_gen_first_token_fwd(r, f, y, B, T, hid);
  check("first_token y", f, "ft_y", B * hid, 1.0);
  gv_gen_first_token_bwd(r, fdx, rec("ft_dy", (size_t)(B * hid)), B, T, hid, 0);
  check("first_token dx", fdx, "ft_dx", B * T * hid, 1.0);
  free(y), free(dx), free(dcls), free(scratch), free(f), free(fdx);
}

int main(int argc, char **argv)
{
  char err[512];
  if (argc < 2 || gv_tf_read(&fx, argv[1], err, sizeof err)) {
    fprintf(stderr, "%s\n", argc < 2 ? "usage: test_vit_ops FIXTURE" : err);
    return 2;
  }
  const int32_t *h = fx.header;
  int64_t B = h[3], C = h[4], S = h[5], p = h[6], hid = h[7];
  struct gv_run *r = calloc(1, sizeof *r);
  oc_backend(&r->be, 64);
  r->fdt = GV_DTYPE_F32;
  patch_embedding(r, B, C, S, p, hid);
  class_token(r, B, (S / p) * (S / p), hid);
  oc_backend_free(&r->be);
  free(r);
  gv_tf_free(&fx);
  return tu_report("test_vit_ops");
}
