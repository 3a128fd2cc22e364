/* hf_check.c - the checks of tests/e2e/hf/run.sh against the committed Hugging Face
 * fixtures (tests/reference/gen_hf_fixtures.py):
 *   hf_check logits DUMP REF       the step-0 logits of a training binary's --dump within
 *                                  1e-5 of the reference's largest |logit| (a reference
 *                                  [B, T, V] of an encoder-decoder: the first T positions of
 *                                  each of the dump's B rows)
 *   hf_check greedy REF ID...      the greedy continuation equals the reference's
 *   hf_check same A.st B.st...     A holds exactly the tensors of the B files, same shapes,
 *                                  the same values bit for bit (B widened to f32 when
 *                                  stored in BF16 or F16)
 *   hf_check rename IN OUT FROM TO   IN's tensors with the name prefix FROM replaced by TO
 *                                  ("-" for none; "DROP": left out), all F32: the layouts
 *                                  of other HF classes
 *   hf_check tensor A NAME B NAME2   A's NAME equals B's NAME2 bit for bit
 *   hf_check grads DUMP REF        every "grad/NAME" of the reference (Mixtral: the gradients
 *                                  of its loss) within 1e-4 of that tensor's largest |value|
 *                                  in the dump's step-0 gradients
 *   hf_check loss VALUE REF        a printed step-0 loss within 1e-5 relative of the
 *                                  reference's "loss" (Mixtral: with the load-balancing term) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt_safetensors.h"
#include "program/tensorfile.h"

static int logits(const char *dump, const char *ref)
{
  struct gv_tf a, b;
  char err[512];
  if (gv_tf_read(&a, dump, err, sizeof err) || gv_tf_read(&b, ref, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  const struct gv_tf_record *x = gv_tf_find(&a, "logits"), *y = gv_tf_find(&b, "logits");
  /* an encoder-decoder's reference [B, T, V] against a program of a longer sequence (the
   * target padded to the source's length): the first T positions of each row */
  int64_t rows = y ? y->dims[0] : 0, per = y && y->ndim == 3 ? (int64_t)y->numel / rows : 0;
  int64_t xper = x && rows && x->numel % (size_t)rows == 0 ? (int64_t)x->numel / rows : -1;
  if (!x || !y || !(x->numel == y->numel || (per && xper > per))) {
    fprintf(stderr, "logits missing or of different sizes (%s, %s)\n", dump, ref);
    return 1;
  }
  if (x->numel == y->numel)
    per = xper = (int64_t)y->numel, rows = 1;
  double worst = 0, scale = 0;
  for (size_t k = 0; k < y->numel; k++) {
    size_t i = (size_t)((int64_t)k / per * xper + (int64_t)k % per);
    double d = ((const float *)x->data)[i] - ((const float *)y->data)[k], r = ((const float *)y->data)[k];
    worst = d < 0 ? (-d > worst ? -d : worst) : (d > worst ? d : worst);
    scale = r < 0 ? (-r > scale ? -r : scale) : (r > scale ? r : scale);
  }
  printf("logits: %zu values, max error %.3g, %.3g of the max |logit| %.4g (bound 1e-5)\n", y->numel, worst,
         worst / scale, scale);
  gv_tf_free(&a);
  gv_tf_free(&b);
  return !(worst <= 1e-5 * scale);
}

static int greedy(const char *ref, int n, char **ids)
{
  struct gv_tf b;
  char err[512];
  if (gv_tf_read(&b, ref, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  const struct gv_tf_record *g = gv_tf_find(&b, "greedy");
  int bad = !g || (int)g->numel != n;
  for (int i = 0; !bad && i < n; i++)
    bad = atoi(ids[i]) != ((const int32_t *)g->data)[i];
  printf("greedy: %d ids %s transformers'\n", n, bad ? "DIFFER from" : "equal");
  gv_tf_free(&b);
  return bad;
}

static float *read_all(gv_st *f, const struct gv_st_tensor *t)
{
  int64_t n = gv_st_numel(t), cols = gv_st_cols(t);
  float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
  char e[1024];
  if (v && gv_st_read_block(f, t, 0, cols ? n / cols : 0, 0, cols, GV_ST_F32, v, e, sizeof e)) {
    fprintf(stderr, "%s\n", e);
    free(v);
    v = NULL;
  }
  return v;
}

static gv_st *open_st(const char *path)
{
  gv_st *f = NULL;
  char e[1024];
  if (gv_st_open(&f, path, e, sizeof e))
    fprintf(stderr, "%s\n", e);
  return f;
}

static int same(const char *a_path, int n, char **b_paths)
{
  gv_st *a = open_st(a_path), *b;
  if (!a)
    return 1;
  int bad = 0, seen = 0;
  for (int k = 0; k < n && !bad; k++) {
    if (!(b = open_st(b_paths[k]))) {
      bad = 1;
      break;
    }
    for (int i = 0; i < gv_st_count(b) && !bad; i++) {
      const struct gv_st_tensor *y = gv_st_at(b, i), *x = gv_st_find(a, y->name);
      float *u = x ? read_all(a, x) : NULL, *v = read_all(b, y);
      bad = !x || x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim) || !u || !v ||
            memcmp(u, v, sizeof(float) * (size_t)gv_st_numel(y));
      if (bad)
        fprintf(stderr, "tensor '%s' of %s: %s in %s\n", y->name, b_paths[k], x ? "differs" : "missing", a_path);
      free(u);
      free(v);
      seen++;
    }
    gv_st_close(b);
  }
  if (!bad && seen != gv_st_count(a)) {
    fprintf(stderr, "%s holds %d tensors, the reference %d\n", a_path, gv_st_count(a), seen);
    bad = 1;
  }
  printf("same: %d tensors %s\n", seen, bad ? "DIFFER" : "equal bit for bit");
  gv_st_close(a);
  return bad;
}

/* Writes OUT directly (a test's scratch file): the renamed tensors as F32. */
static int rename_prefix(const char *in, const char *out, const char *from, const char *to)
{
  gv_st *a = open_st(in);
  if (!a)
    return 1;
  from = strcmp(from, "-") ? from : "";
  to = strcmp(to, "-") ? to : "";
  int n = gv_st_count(a), m = 0, bad = 0;
  float **data = calloc((size_t)n + 1, sizeof(float *));
  struct gv_st_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
  char (*names)[1024] = calloc((size_t)n + 1, sizeof *names);
  char e[1024];
  if ((bad = !data || !ts || !names))
    fprintf(stderr, "out of memory\n");
  for (int i = 0; i < n && !bad; i++) { /* read_all says why it fails */
    const struct gv_st_tensor *t = gv_st_at(a, i);
    size_t fl = strlen(from);
    int hit = !strncmp(t->name, from, fl);
    if (hit && !strcmp(to, "DROP"))
      continue;
    snprintf(names[m], sizeof names[m], "%s%s", hit ? to : "", t->name + (hit ? fl : 0));
    ts[m] = *t;
    ts[m].name = names[m];
    ts[m].dtype = GV_ST_F32;
    bad = !(data[m++] = read_all(a, t));
  }
  gv_st_writer *w = bad ? NULL : gv_st_create(out, ts, m, NULL, 0, 1, e, sizeof e);
  if (!bad && !w) {
    fprintf(stderr, "%s\n", e);
    bad = 1;
  }
  for (int i = 0; i < m && !bad; i++) {
    int64_t cols = gv_st_cols(&ts[i]), rows = cols ? gv_st_numel(&ts[i]) / cols : 0;
    if ((bad = gv_st_write_part(w, i, 0, rows, 0, cols, 0, rows * cols, GV_ST_F32, data[i], e, sizeof e) != 0))
      fprintf(stderr, "%s\n", e);
  }
  if (w && bad)
    gv_st_abort(w);
  else if (w && gv_st_finish(w, e, sizeof e)) {
    fprintf(stderr, "%s\n", e);
    bad = 1;
  }
  for (int i = 0; i < m; i++)
    free(data[i]);
  free(data);
  free(ts);
  free(names);
  gv_st_close(a);
  return bad;
}

static int loss(const char *value, const char *ref)
{
  struct gv_tf b;
  char err[512];
  if (gv_tf_read(&b, ref, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  const struct gv_tf_record *y = gv_tf_find(&b, "loss");
  char *end;
  double got = strtod(value, &end), want = y && y->dtype == 1 && y->numel == 1 ? ((const double *)y->data)[0] : 0.0;
  int bad = !y || y->dtype != 1 || y->numel != 1 || *end || !(fabs(got - want) <= 1e-5 * fabs(want));
  printf("loss: %s, the reference's %.9g (bound 1e-5 relative)%s\n", value, want, bad ? ": DIFFERS" : "");
  gv_tf_free(&b);
  return bad;
}

static int grads(const char *dump, const char *ref)
{
  struct gv_tf a, b;
  char err[512];
  if (gv_tf_read(&a, dump, err, sizeof err) || gv_tf_read(&b, ref, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int bad = 0, n = 0;
  double worst = 0.0;
  for (int i = 0; i < b.count; i++) {
    const struct gv_tf_record *y = &b.rec[i], *x = strncmp(y->name, "grad/", 5) ? NULL : gv_tf_find(&a, y->name);
    if (strncmp(y->name, "grad/", 5))
      continue;
    if (!x || x->numel != y->numel || x->dtype != 0 || y->dtype != 0) {
      fprintf(stderr, "grads: %s missing from %s or of another size\n", y->name, dump);
      bad = 1;
      continue;
    }
    const float *g = x->data, *w = y->data;
    double mx = 0.0, e = 0.0;
    for (size_t j = 0; j < y->numel; j++) {
      mx = fabs(w[j]) > mx ? fabs(w[j]) : mx;
      e = fabs(g[j] - w[j]) > e ? fabs(g[j] - w[j]) : e;
    }
    double rel = mx > 0 ? e / mx : e;
    worst = rel > worst ? rel : worst;
    if (rel > 1e-4) {
      fprintf(stderr, "grads: %s differs by %.3g of its max |value| %.3g\n", y->name, rel, mx);
      bad = 1;
    }
    n++;
  }
  printf("grads: %d tensors, worst error %.3g of the tensor's max (bound 1e-4)\n", n, worst);
  gv_tf_free(&a);
  gv_tf_free(&b);
  return bad || n == 0;
}

static int tensor_equal(const char *a_path, const char *a_name, const char *b_path, const char *b_name)
{
  gv_st *a = open_st(a_path), *b = a ? open_st(b_path) : NULL;
  int bad = !a || !b;
  const struct gv_st_tensor *x = bad ? NULL : gv_st_find(a, a_name), *y = bad ? NULL : gv_st_find(b, b_name);
  float *u = x ? read_all(a, x) : NULL, *v = y ? read_all(b, y) : NULL;
  bad = !u || !v || gv_st_numel(x) != gv_st_numel(y) || memcmp(u, v, sizeof(float) * (size_t)gv_st_numel(x));
  printf("tensor: %s of %s %s %s of %s\n", a_name, a_path, bad ? "DIFFERS from" : "equals", b_name, b_path);
  free(u);
  free(v);
  gv_st_close(a);
  gv_st_close(b);
  return bad;
}

int main(int argc, char **argv)
{
  if (argc == 6 && !strcmp(argv[1], "tensor"))
    return tensor_equal(argv[2], argv[3], argv[4], argv[5]);
  if (argc == 6 && !strcmp(argv[1], "rename"))
    return rename_prefix(argv[2], argv[3], argv[4], argv[5]);
  if (argc == 4 && !strcmp(argv[1], "grads"))
    return grads(argv[2], argv[3]);
  if (argc == 4 && !strcmp(argv[1], "loss"))
    return loss(argv[2], argv[3]);
  if (argc == 4 && !strcmp(argv[1], "logits"))
    return logits(argv[2], argv[3]);
  if (argc >= 3 && !strcmp(argv[1], "greedy"))
    return greedy(argv[2], argc - 3, argv + 3);
  if (argc >= 4 && !strcmp(argv[1], "same"))
    return same(argv[2], argc - 3, argv + 3);
  fprintf(stderr, "usage: hf_check logits DUMP REF | greedy REF ID... | same A.safetensors B.safetensors... | "
                  "rename IN OUT FROM TO | tensor A NAME B NAME2 | loss VALUE REF | grads DUMP REF\n");
  return 2;
}
