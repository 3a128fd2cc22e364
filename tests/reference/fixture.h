/* fixture.h - reader for the reference fixtures written by gen_fixtures.py (format in its
 * docstring): a 64-int header, then named records (name, dtype, shape, data). Records are
 * loaded whole; f32/f64/i32 only. Test-side code, not part of libgvrt. */
#ifndef GV_REF_FIXTURE_H
#define GV_REF_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

enum { REF_F32 = 0, REF_F64 = 1, REF_I32 = 2 };
enum { REF_MODEL_GPT = 1, REF_MODEL_LLAMA = 2 };

struct ref_record {
  char *name;
  int dtype, ndim;
  int dims[8];
  size_t numel;
  void *data;
};

struct ref_fixture {
  int model, V, C, L, H, KV, F, S, B, T, steps;
  int count;
  struct ref_record *rec;
};

/* 0 on success; on failure prints why (file and field) to stderr and returns -1. */
int ref_fixture_load(struct ref_fixture *fx, const char *path);
void ref_fixture_free(struct ref_fixture *fx);
/* The record called name (of dtype, numel elements), or NULL after printing why. */
const struct ref_record *ref_fixture_get(const struct ref_fixture *fx, const char *name, int dtype);
const float *ref_fixture_f32(const struct ref_fixture *fx, const char *name, size_t numel);
const double *ref_fixture_f64(const struct ref_fixture *fx, const char *name, size_t numel);
const int32_t *ref_fixture_i32(const struct ref_fixture *fx, const char *name, size_t numel);

#endif
