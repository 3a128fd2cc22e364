/* tensor.c - dtypes and dense row-major tensor descriptors. A tensor never owns memory:
 * its data points into an arena, and views/reshapes only change the descriptor. */
#include <stdio.h>

#include "gvrt.h"

size_t gv_dtype_size(enum gv_dtype t)
{
  switch (t) {
  case GV_DTYPE_F32: return 4;
  case GV_DTYPE_BF16: return 2;
  case GV_DTYPE_I32: return 4;
  case GV_DTYPE_F64: return 8;
  }
  gv_fatalf(__FILE__, __LINE__, "gv_dtype_size", "gvrt", "unknown dtype %d", (int)t);
}

const char *gv_dtype_name(enum gv_dtype t)
{
  switch (t) {
  case GV_DTYPE_F32: return "f32";
  case GV_DTYPE_BF16: return "bf16";
  case GV_DTYPE_I32: return "i32";
  case GV_DTYPE_F64: return "f64";
  }
  return "?";
}

struct gv_tensor gv_tensor_make(void *data, enum gv_dtype dtype, int ndim, const int64_t *shape)
{
  struct gv_tensor t = {data, dtype, ndim, {0}};
  GV_CHECK(ndim >= 1 && ndim <= GV_MAX_DIMS, "tensor rank %d not in 1..%d", ndim, GV_MAX_DIMS);
  for (int i = 0; i < ndim; i++) {
    GV_CHECK(shape[i] >= 0, "negative dimension %lld", (long long)shape[i]);
    t.shape[i] = shape[i];
  }
  return t;
}

struct gv_tensor gv_tensor_4d(void *data, enum gv_dtype dtype, int64_t d0, int64_t d1, int64_t d2,
                              int64_t d3)
{
  int64_t s[4] = {d0, d1, d2, d3};
  int n = d3 ? 4 : d2 ? 3 : d1 ? 2 : 1;
  return gv_tensor_make(data, dtype, n, s);
}

int64_t gv_tensor_numel(const struct gv_tensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

size_t gv_tensor_bytes(const struct gv_tensor *t)
{
  return (size_t)gv_tensor_numel(t) * gv_dtype_size(t->dtype);
}

struct gv_tensor gv_tensor_reshape(const struct gv_tensor *t, int ndim, const int64_t *shape)
{
  struct gv_tensor r = gv_tensor_make(t->data, t->dtype, ndim, shape);
  char a[96], b[96];
  GV_CHECK(gv_tensor_numel(&r) == gv_tensor_numel(t), "reshape %s to %s changes the size",
           gv_tensor_str(t, a, sizeof a), gv_tensor_str(&r, b, sizeof b));
  return r;
}

struct gv_tensor gv_tensor_view(const struct gv_tensor *t, int64_t first, int64_t count)
{
  struct gv_tensor r = *t;
  char a[96];
  GV_CHECK(first >= 0 && count >= 0 && first + count <= t->shape[0],
           "view rows [%lld, %lld) of %s out of range", (long long)first,
           (long long)(first + count), gv_tensor_str(t, a, sizeof a));
  r.shape[0] = count;
  r.data = (char *)t->data + (size_t)first * (gv_tensor_bytes(t) / (size_t)(t->shape[0] ? t->shape[0] : 1));
  return r;
}

const char *gv_tensor_str(const struct gv_tensor *t, char *buf, size_t n)
{
  size_t k = 0;
  k += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < t->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "] %s", gv_dtype_name(t->dtype));
  return buf;
}
