/* hf_check.c - the checks of tests/e2e/hf/run.sh against the committed Hugging Face
 * fixtures (tests/reference/gen_hf_fixtures.py):
 *   hf_check logits DUMP REF       the step-0 logits of a training binary's --dump within
 *                                  1e-5 of the reference's largest |logit|
 *   hf_check greedy REF ID...      the greedy continuation equals the reference's
 *   hf_check same A.st B.st...     A holds exactly the tensors of the B files, same shapes,
 *                                  the same values bit for bit (B widened to f32 when
 *                                  stored in BF16 or F16)
 *   hf_check rename IN OUT FROM TO   IN's tensors with the name prefix FROM replaced by TO
 *                                  ("-" for none; "DROP": left out), all F32: the layouts
 *                                  of other HF classes
 *   hf_check tensor A NAME B NAME2   A's NAME equals B's NAME2 bit for bit */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/safetensors.h"
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
  if (!x || !y || x->numel != y->numel) {
    fprintf(stderr, "logits missing or of different sizes (%s, %s)\n", dump, ref);
    return 1;
  }
  double worst = 0, scale = 0;
  for (size_t i = 0; i < x->numel; i++) {
    double d = ((const float *)x->data)[i] - ((const float *)y->data)[i], r = ((const float *)y->data)[i];
    worst = d < 0 ? (-d > worst ? -d : worst) : (d > worst ? d : worst);
    scale = r < 0 ? (-r > scale ? -r : scale) : (r > scale ? r : scale);
  }
  printf("logits: %zu values, max error %.3g, %.3g of the max |logit| %.4g (bound 1e-5)\n", x->numel, worst,
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

static float *read_all(gv_st_file *f, const struct gv_st_tensor *t)
{
  size_t n = gv_st_numel(t);
  float *v = malloc(sizeof(float) * (n ? n : 1));
  struct gv_data_err e = {0};
  if (v && gv_st_read_f32(f, t, 0, n, v, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    free(v);
    v = NULL;
  }
  return v;
}

static int same(const char *a_path, int n, char **b_paths)
{
  gv_st_file *a, *b;
  struct gv_data_err e = {0};
  if (gv_st_open(a_path, &a, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  int bad = 0, seen = 0;
  for (int k = 0; k < n && !bad; k++) {
    if (gv_st_open(b_paths[k], &b, &e)) {
      fprintf(stderr, "%s\n", e.msg);
      bad = 1;
      break;
    }
    for (int i = 0; i < gv_st_count(b) && !bad; i++) {
      const struct gv_st_tensor *y = gv_st_at(b, i), *x = gv_st_find(a, y->name);
      float *u = x ? read_all(a, x) : NULL, *v = read_all(b, y);
      bad = !x || x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim) || !u || !v ||
            memcmp(u, v, sizeof(float) * gv_st_numel(y));
      if (bad)
        fprintf(stderr, "tensor '%s' of %s: %s in %s\n", y->name, b_paths[k], x ? "differs" : "missing", a_path);
      free(u);
      free(v);
      seen++;
    }
    gv_st_close(&b);
  }
  if (!bad && seen != gv_st_count(a)) {
    fprintf(stderr, "%s holds %d tensors, the reference %d\n", a_path, gv_st_count(a), seen);
    bad = 1;
  }
  printf("same: %d tensors %s\n", seen, bad ? "DIFFER" : "equal bit for bit");
  gv_st_close(&a);
  return bad;
}

static int rename_prefix(const char *in, const char *out, const char *from, const char *to)
{
  gv_st_file *a;
  gv_st_writer *w;
  struct gv_data_err e = {0};
  if (gv_st_open(in, &a, &e) || gv_st_writer_new(&w, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  from = strcmp(from, "-") ? from : "";
  to = strcmp(to, "-") ? to : "";
  int n = gv_st_count(a), bad = 0;
  float **data = calloc((size_t)n + 1, sizeof(float *));
  for (int i = 0; i < n && !bad; i++) {
    const struct gv_st_tensor *t = gv_st_at(a, i);
    char name[1024];
    size_t fl = strlen(from);
    int hit = !strncmp(t->name, from, fl);
    if (hit && !strcmp(to, "DROP"))
      continue;
    snprintf(name, sizeof name, "%s%s", hit ? to : "", t->name + (hit ? fl : 0));
    bad = !(data[i] = read_all(a, t)) || gv_st_writer_add(w, name, GV_ST_F32, t->ndim, t->shape, data[i], &e);
  }
  bad = bad || gv_st_writer_write(w, out, &e);
  if (bad)
    fprintf(stderr, "%s\n", e.msg);
  for (int i = 0; i < n; i++)
    free(data[i]);
  free(data);
  gv_st_writer_free(&w);
  gv_st_close(&a);
  return bad;
}

static int tensor_equal(const char *a_path, const char *a_name, const char *b_path, const char *b_name)
{
  gv_st_file *a = NULL, *b = NULL;
  struct gv_data_err e = {0};
  int bad = gv_st_open(a_path, &a, &e) || gv_st_open(b_path, &b, &e);
  const struct gv_st_tensor *x = bad ? NULL : gv_st_find(a, a_name), *y = bad ? NULL : gv_st_find(b, b_name);
  float *u = x ? read_all(a, x) : NULL, *v = y ? read_all(b, y) : NULL;
  bad = !u || !v || gv_st_numel(x) != gv_st_numel(y) || memcmp(u, v, sizeof(float) * gv_st_numel(x));
  printf("tensor: %s of %s %s %s of %s\n", a_name, a_path, bad ? "DIFFERS from" : "equals", b_name, b_path);
  free(u);
  free(v);
  gv_st_close(&a);
  gv_st_close(&b);
  return bad;
}

int main(int argc, char **argv)
{
  if (argc == 6 && !strcmp(argv[1], "tensor"))
    return tensor_equal(argv[2], argv[3], argv[4], argv[5]);
  if (argc == 6 && !strcmp(argv[1], "rename"))
    return rename_prefix(argv[2], argv[3], argv[4], argv[5]);
  if (argc == 4 && !strcmp(argv[1], "logits"))
    return logits(argv[2], argv[3]);
  if (argc >= 3 && !strcmp(argv[1], "greedy"))
    return greedy(argv[2], argc - 3, argv + 3);
  if (argc >= 4 && !strcmp(argv[1], "same"))
    return same(argv[2], argc - 3, argv + 3);
  fprintf(stderr, "usage: hf_check logits DUMP REF | greedy REF ID... | same A.safetensors B.safetensors... | "
                  "rename IN OUT FROM TO | tensor A NAME B NAME2\n");
  return 2;
}
