/* init.c - counter-based parameter initialisation. The value of element i of parameter
 * `name` is a pure function of (seed, name, i): Philox4x32-10 (Salmon et al., SC'11;
 * Random123) keyed by FNV-1a(name) mixed with the seed, counter = (i / 4, 0, 0), and
 * Box-Muller on the block's two 32-bit uniform pairs gives four normals, of which lane
 * i % 4 is element i. So any shard (contiguous range or 2-D block) initialises exactly
 * the bits the whole tensor would have at those indices, whatever the parallel strategy.
 * Box-Muller runs in double and rounds once to float, so the result does not depend on
 * the compiler's float contraction. */
#include <math.h>

#include "gvrt.h"
#include "gvrt_train.h"

/* splitmix64 finaliser: spreads the seed over all key bits. */
static uint64_t mix64(uint64_t x)
{
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t gv_init_key(uint64_t seed, const char *name)
{
  uint64_t h = 0xcbf29ce484222325ull;                /* FNV-1a 64 */
  for (const unsigned char *s = (const unsigned char *)name; *s; s++)
    h = (h ^ *s) * 0x100000001b3ull;
  return h ^ mix64(seed);
}

/* The four standard normals of Philox block `block`. */
static void normals4(uint64_t key, uint64_t block, double z[4])
{
  const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0, 0};
  uint32_t u[4];
  gv_philox4x32(u, ctr, k);
  for (int j = 0; j < 4; j += 2) {
    double u1 = ((double)u[j] + 1.0) * 0x1p-32;      /* (0, 1]: log is finite */
    double u2 = (double)u[j + 1] * 0x1p-32;          /* [0, 1) */
    double r = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
    z[j] = r * cos(th);
    z[j + 1] = r * sin(th);
  }
}

float gv_init_normal_at(uint64_t key, uint64_t i, float mean, float std)
{
  double z[4];
  normals4(key, i >> 2, z);
  return (float)(mean + std * z[i & 3]);
}

/* One Philox block serves four consecutive indices; partial blocks at either end of the
 * range are cut, so the result equals gv_init_normal_at index by index. */
void gv_init_normal(float *out, size_t n, uint64_t key, uint64_t first, float mean, float std)
{
  if (n == 0)
    return;
  const uint64_t b0 = first >> 2, b1 = (first + n - 1) >> 2;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (uint64_t b = b0; b <= b1; b++) {
    double z[4];
    normals4(key, b, z);
    for (uint64_t i = b << 2; i < (b << 2) + 4; i++)
      if (i >= first && i < first + n)
        out[i - first] = (float)(mean + std * z[i & 3]);
  }
}

void gv_init_normal_block(float *out, size_t rows, size_t cols, size_t row0, size_t col0,
                          size_t global_cols, uint64_t key, float mean, float std)
{
  for (size_t r = 0; r < rows; r++)
    gv_init_normal(out + r * cols, cols, key, (uint64_t)(row0 + r) * global_cols + col0, mean, std);
}

void gv_init_fill(float *out, size_t n, float value)
{
  for (size_t i = 0; i < n; i++)
    out[i] = value;
}
