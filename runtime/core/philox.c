/* philox.c - the Philox4x32-10 block cipher (Salmon et al., SC'11; Random123): the one
 * counter-based generator of the runtime. Parameter init (optim/init.c) and dropout (the
 * backends' kernels; cuda/elementwise.cu has the device copy of these rounds) draw from it, so
 * it lives in core and kernels do not depend on the training layer. */
#include "gvrt.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

void gv_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t k[2])
{
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = k[0], k1 = k[1];
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(PHILOX_M0, c0, &hi0, &lo0);
    mulhilo(PHILOX_M1, c2, &hi1, &lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += PHILOX_W0;                                 /* key schedule (bumped after the last round too: unused) */
    k1 += PHILOX_W1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}
