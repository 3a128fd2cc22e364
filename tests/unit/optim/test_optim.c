/* test_optim.c - AdamW, clipping, schedule and init checked against closed forms:
 * AdamW's first step is lr * g / (|g| + eps) after decay (bias correction makes m^ = g,
 * v^ = g^2), the second step is recomputed here in double; clipping of a 3-4-12 vector
 * (norm 13); the schedule at its corner points; Philox against the Random123 known-answer
 * vectors; and a shard of a tensor initialised alone equals that slice of the whole. */
#include <stdint.h>

#include "gvrt.h"
#include "gvrt_train.h"
#include "testutil.h"

/* ---- AdamW ---- */

static void test_adamw(void)
{
  const struct gv_adamw opt = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
  float p[3] = {0.5f, -1.0f, 2.0f}, g[3] = {0.3f, -2.0f, 0.0f}, m[3] = {0}, v[3] = {0};
  const float lr = 1e-2f;
  double pd[3], md[3] = {0}, vd[3] = {0};
  for (int i = 0; i < 3; i++)
    pd[i] = p[i];

  gv_optim_adamw_step(&opt, p, g, m, v, 3, 1, lr, 1);
  for (int i = 0; i < 3; i++) {
    double gi = g[i], expect = pd[i] * (1 - 0.01 * 0.1) - 0.01 * gi / (fabs(gi) + 1e-8);
    CHECK_CLOSE(expect, p[i], 1e-7, 1e-6);          /* fp32 ulps of |p| ~ 2 */
  }
  /* second step, no decay (a 1-D param), recomputed in double */
  for (int i = 0; i < 3; i++) {
    pd[i] = p[i];
    md[i] = 0.1 * g[i];
    vd[i] = 0.05 * (double)g[i] * g[i];
  }
  const float g2[3] = {-0.1f, 1.0f, 0.25f};
  gv_optim_adamw_step(&opt, p, g2, m, v, 3, 2, lr, 0);
  for (int i = 0; i < 3; i++) {
    double mi = 0.9 * md[i] + 0.1 * g2[i], vi = 0.95 * vd[i] + 0.05 * (double)g2[i] * g2[i];
    double mh = mi / (1 - 0.81), vh = vi / (1 - 0.9025);
    CHECK_CLOSE(pd[i] - 0.01 * mh / (sqrt(vh) + 1e-8), p[i], 1e-7, 1e-6);
    CHECK_CLOSE(mi, m[i], 1e-9, 1e-6);
    CHECK_CLOSE(vi, v[i], 1e-12, 1e-6);
  }
  CHECK(gv_optim_decays(2, 1) && !gv_optim_decays(1, 1) && gv_optim_decays(1, 0));
}

static void test_bf16(void)
{
  const float x[4] = {1.0f, 1.00390625f, 1.01171875f, -3.0f};   /* exact, tie to even (down), tie up */
  uint16_t b[4];
  gv_optim_to_bf16(b, x, 4);
  CHECK_EQ_INT(0x3f80, b[0]);
  CHECK_EQ_INT(0x3f80, b[1]);
  CHECK_EQ_INT(0x3f82, b[2]);
  CHECK_EQ_INT(0xc040, b[3]);
}

/* ---- clipping ---- */

static void test_clip(void)
{
  float a[2] = {3.0f, 4.0f}, b[1] = {12.0f};
  float *gs[2] = {a, b};
  size_t ns[2] = {2, 1};
  double norm = gv_optim_clip_grad_norm(gs, ns, 2, 1.0f);
  CHECK_CLOSE(13.0, norm, 0, 1e-12);
  float coef = (float)(1.0 / (13.0 + 1e-6));
  CHECK_CLOSE(3.0f * coef, a[0], 0, 1e-6);
  CHECK_CLOSE(12.0f * coef, b[0], 0, 1e-6);
  /* below the threshold nothing changes */
  float c[2] = {0.3f, 0.4f};
  float *gc[1] = {c};
  size_t nc[1] = {2};
  CHECK_CLOSE(0.5, gv_optim_clip_grad_norm(gc, nc, 1, 1.0f), 0, 1e-7);
  CHECK(c[0] == 0.3f && c[1] == 0.4f);
  CHECK(gv_optim_clip_coef(0.0, 1.0f) == 1.0f);
}

/* ---- schedule ---- */

static void test_schedule(void)
{
  struct gv_lr_schedule s = {.max_lr = 1e-3, .min_lr = 1e-4, .warmup_steps = 3, .decay_steps = 10,
                             .decay = GV_LR_COSINE};
  CHECK_CLOSE(1e-3 / 3, gv_lr_at(&s, 0), 0, 1e-12);
  CHECK_CLOSE(1e-3, gv_lr_at(&s, 2), 0, 1e-12);
  CHECK_CLOSE(1e-3, gv_lr_at(&s, 3), 0, 1e-12);     /* cosine starts at max */
  CHECK_CLOSE(0.55e-3, gv_lr_at(&s, 3) / 2 + gv_lr_at(&s, 10) / 2, 0, 1e-12);
  CHECK_CLOSE(1e-4, gv_lr_at(&s, 10), 0, 1e-12);
  CHECK_CLOSE(1e-4, gv_lr_at(&s, 50), 0, 1e-12);
  double mid = 1e-4 + 0.5 * (1 + cos(M_PI * 0.5)) * 9e-4;   /* r = 1/2 needs N - W even */
  s.decay_steps = 11;
  CHECK_CLOSE(mid, gv_lr_at(&s, 7), 0, 1e-12);
  s.decay = GV_LR_LINEAR;
  CHECK_CLOSE(0.55e-3, gv_lr_at(&s, 7), 0, 1e-12);
  s.decay = GV_LR_CONSTANT;
  CHECK_CLOSE(1e-3, gv_lr_at(&s, 9), 0, 1e-12);
}

/* ---- Philox init ---- */

static void test_philox_kat(void)
{
  /* Random123 kat_vectors, philox4x32 R=10 */
  static const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                     {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                     {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
  static const uint32_t key[3][2] = {{0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
  static const uint32_t expect[3][4] = {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
                                        {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
                                        {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
  for (int t = 0; t < 3; t++) {
    uint32_t out[4];
    gv_philox4x32(out, ctr[t], key[t]);
    for (int j = 0; j < 4; j++)
      CHECK_EQ_INT(expect[t][j], out[j]);
  }
}

enum { ROWS = 96, COLS = 80 };

static void test_init_shards(void)
{
  static float whole[ROWS * COLS], part[ROWS * COLS];
  uint64_t key = gv_init_key(42, "layers.0.attn.q.weight");
  gv_init_normal(whole, ROWS * COLS, key, 0, 0.0f, 0.02f);

  /* the bulk fill is the element-wise definition */
  int defn = 1;
  for (int i = 0; i < ROWS * COLS; i += 7)
    defn &= whole[i] == gv_init_normal_at(key, (uint64_t)i, 0.0f, 0.02f);
  CHECK(defn);

  /* a contiguous shard starting at an index that is not a multiple of 4 */
  gv_init_normal(part, 1001, key, 3333, 0.0f, 0.02f);
  CHECK(memcmp(part, whole + 3333, 1001 * sizeof(float)) == 0);
  gv_init_normal(part, 2, key, 5, 0.0f, 0.02f);      /* inside one Philox block */
  CHECK(memcmp(part, whole + 5, 2 * sizeof(float)) == 0);

  /* a TP column shard (rows 0..95, cols 20..59) and a row shard */
  gv_init_normal_block(part, ROWS, 40, 0, 20, COLS, key, 0.0f, 0.02f);
  int same = 1;
  for (int r = 0; r < ROWS; r++)
    same &= memcmp(part + r * 40, whole + r * COLS + 20, 40 * sizeof(float)) == 0;
  CHECK(same);
  gv_init_normal_block(part, 17, COLS, 50, 0, COLS, key, 0.0f, 0.02f);
  CHECK(memcmp(part, whole + 50 * COLS, 17 * COLS * sizeof(float)) == 0);

  /* statistics: mean 0 and std 0.02 within sampling error of n = 7680 */
  double s = 0, s2 = 0;
  for (int i = 0; i < ROWS * COLS; i++)
    s += whole[i], s2 += (double)whole[i] * whole[i];
  double n = ROWS * COLS, mean = s / n, sd = sqrt(s2 / n - mean * mean);
  CHECK(fabs(mean) < 4 * 0.02 / sqrt(n));
  CHECK(fabs(sd - 0.02) < 4 * 0.02 / sqrt(2 * n));

  /* different names and seeds give different streams */
  CHECK(gv_init_key(42, "a") != gv_init_key(42, "b"));
  CHECK(gv_init_key(42, "a") != gv_init_key(43, "a"));
  CHECK(gv_init_normal_at(gv_init_key(42, "b"), 7, 0, 1) != gv_init_normal_at(key, 7, 0, 1));
}

int main(void)
{
  test_adamw();
  test_bf16();
  test_clip();
  test_schedule();
  test_philox_kat();
  test_init_shards();
  return tu_report("test_optim");
}
