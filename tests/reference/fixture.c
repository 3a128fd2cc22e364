/* fixture.c - loads a gen_fixtures.py file into memory and looks records up by name.
 * Everything is little endian on disk; this reader assumes a little-endian host (x86,
 * aarch64) and rejects a wrong magic, which is what a big-endian host would see. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_MAGIC 0x46525647
#define REF_VERSION 1

static int read_ints(FILE *f, int32_t *dst, size_t n)
{
  return fread(dst, sizeof *dst, n, f) == n ? 0 : -1;
}

static int read_record(FILE *f, struct ref_record *r)
{
  static const size_t esize[3] = {4, 8, 4};
  int32_t len, hd[2];
  if (read_ints(f, &len, 1) || len <= 0 || len > 4096)
    return -1;
  r->name = calloc((size_t)len + 1, 1);
  if (!r->name || fread(r->name, 1, (size_t)len, f) != (size_t)len || read_ints(f, hd, 2))
    return -1;
  r->dtype = hd[0], r->ndim = hd[1];
  if (r->dtype < 0 || r->dtype > 2 || r->ndim < 0 || r->ndim > 8 || read_ints(f, r->dims, (size_t)r->ndim))
    return -1;
  r->numel = 1;
  for (int i = 0; i < r->ndim; i++) {
    if (r->dims[i] < 0 || r->dims[i] > (1 << 28))
      return -1;
    r->numel *= (size_t)r->dims[i];
    if (r->numel > ((size_t)1 << 28))                  /* fixtures are small: refuse nonsense sizes */
      return -1;
  }
  r->data = malloc(r->numel * esize[r->dtype] + 1);
  return r->data && fread(r->data, esize[r->dtype], r->numel, f) == r->numel ? 0 : -1;
}

int ref_fixture_load(struct ref_fixture *fx, const char *path)
{
  int32_t h[64];
  memset(fx, 0, sizeof *fx);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", path);
    return -1;
  }
  memset(h, 0, sizeof h);
  if (read_ints(f, h, 64) || h[0] != REF_MAGIC || h[1] != REF_VERSION || h[13] <= 0) {
    fprintf(stderr, "%s: truncated header or not a gen_fixtures.py file (magic %#x, version %d)\n", path,
            (unsigned)h[0], h[1]);
    goto fail;
  }
  fx->model = h[2], fx->V = h[3], fx->C = h[4], fx->L = h[5], fx->H = h[6], fx->KV = h[7];
  fx->F = h[8], fx->S = h[9], fx->B = h[10], fx->T = h[11], fx->steps = h[12];
  fx->rec = calloc((size_t)h[13], sizeof *fx->rec);
  if (!fx->rec)
    goto fail;
  for (fx->count = 0; fx->count < h[13]; fx->count++) {
    if (read_record(f, &fx->rec[fx->count])) {
      fprintf(stderr, "%s: truncated or corrupt record %d\n", path, fx->count);
      fx->count++;
      goto fail;
    }
  }
  fclose(f);
  return 0;
fail:
  fclose(f);
  ref_fixture_free(fx);
  return -1;
}

void ref_fixture_free(struct ref_fixture *fx)
{
  for (int i = 0; i < fx->count; i++) {
    free(fx->rec[i].name);
    free(fx->rec[i].data);
  }
  free(fx->rec);
  fx->rec = NULL;
  fx->count = 0;
}

const struct ref_record *ref_fixture_get(const struct ref_fixture *fx, const char *name, int dtype)
{
  for (int i = 0; i < fx->count; i++) {
    if (strcmp(fx->rec[i].name, name))
      continue;
    if (fx->rec[i].dtype == dtype)
      return &fx->rec[i];
    fprintf(stderr, "fixture record %s: dtype %d, expected %d\n", name, fx->rec[i].dtype, dtype);
    return NULL;
  }
  fprintf(stderr, "fixture record %s: missing\n", name);
  return NULL;
}

static const void *get_sized(const struct ref_fixture *fx, const char *name, int dtype, size_t numel)
{
  const struct ref_record *r = ref_fixture_get(fx, name, dtype);
  if (r && r->numel != numel) {
    fprintf(stderr, "fixture record %s: %zu elements, expected %zu\n", name, r->numel, numel);
    return NULL;
  }
  return r ? r->data : NULL;
}

const float *ref_fixture_f32(const struct ref_fixture *fx, const char *name, size_t numel)
{
  return get_sized(fx, name, REF_F32, numel);
}

const double *ref_fixture_f64(const struct ref_fixture *fx, const char *name, size_t numel)
{
  return get_sized(fx, name, REF_F64, numel);
}

const int32_t *ref_fixture_i32(const struct ref_fixture *fx, const char *name, size_t numel)
{
  return get_sized(fx, name, REF_I32, numel);
}
