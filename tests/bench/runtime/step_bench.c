/* step_bench.c - times one training step (forward + backward + clip + AdamW) of a
 * GPT-2-style model with the reference trainer on the CPU backend, and the OpenBLAS sgemm
 * peak of this machine in the same run (best of 10 square 1536^3 products, in huge pages). Not a test:
 * step_torch.py runs it beside PyTorch and prints the comparison. The peak is taken before
 * and again after the steps (OpenBLAS with its own threads, as many as we use) and the
 * larger is reported: the machine is shared, and one slow sample would flatter us. Output lines, parsed by
 * step_torch.py: "sgemm_gflops G", "step_s t1 t2 ..." (and
 * fwd_s, bwd_s, update_s: the phases of the same steps), "loss L". `step_bench --peak` prints
 * the peak alone (program_torch.py, with OPENBLAS_NUM_THREADS threads).
 *   step_bench L C H T B V ITERS    (threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS) */
#define _POSIX_C_SOURCE 199309L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_peak(void)
{
  enum { N = 1536 };
  /* allocated as the programs' buffers are (huge pages), not with 4 KiB pages' TLB misses */
  size_t bytes = sizeof(float) * N * N;
  float *a = gv_cpu_alloc(bytes), *b = gv_cpu_alloc(bytes), *c = gv_cpu_alloc(bytes);
  if (!a || !b || !c)
    return 0.0;
  for (size_t i = 0; i < (size_t)N * N; i++)
    a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
  double best = 1e30;
  for (int r = 0; r < 11; r++) {                     /* first run warms up */
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    double dt = now() - t0;
    if (r > 0 && dt < best)
      best = dt;
  }
  free(a), free(b), free(c);
  return 2.0 * N * N * (double)N / best / 1e9;
}

int main(int argc, char **argv)
{
  if (argc == 2 && strcmp(argv[1], "--peak") == 0) {  /* the peak alone (program_torch.py) */
    printf("sgemm_gflops %.2f %s\n", sgemm_peak(), openblas_get_corename());
    return 0;
  }
  if (argc != 8) {
    fprintf(stderr, "usage: step_bench L C H T B V ITERS | step_bench --peak\n");
    return 2;
  }
  struct ref_config c = {.model = REF_GPT, .L = atoi(argv[1]), .C = atoi(argv[2]), .H = atoi(argv[3]),
                         .T = atoi(argv[4]), .B = atoi(argv[5]), .V = atoi(argv[6]),
                         .norm_eps = 1e-5f, .rope_base = 10000.0f};
  int iters = atoi(argv[7]), warmup = 2;
  c.KV = c.H, c.F = 4 * c.C, c.S = c.T;
  int blas_threads = openblas_get_num_threads();      /* the cpu backend sets it to 1 */
  double peak = sgemm_peak();

  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  struct ref_model m;
  ref_model_init(&m, &c, &be);
  ref_model_init_params(&m, 1);
  size_t n = (size_t)c.B * c.T;
  int32_t *tok = malloc(n * sizeof *tok), *lab = malloc(n * sizeof *lab);
  uint32_t s = 12345;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    tok[i] = (int32_t)((s >> 8) % (uint32_t)c.V);
  }
  for (size_t i = 0; i < n; i++)
    lab[i] = (i + 1) % (size_t)c.T ? tok[i + 1] : tok[i];
  ref_model_set_batch(&m, tok, lab);

  const struct gv_adamw opt = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
  float loss = 0.0f;
  double *t = calloc((size_t)iters * 4, sizeof *t);   /* step, fwd, bwd, update per iter */
  for (int i = 0; i < warmup + iters; i++) {
    double t0 = now();
    loss = ref_model_forward(&m);
    double t1 = now();
    ref_model_backward(&m);
    double t2 = now();
    ref_model_update(&m, &opt, 1e-3f, 1.0f);
    double t3 = now();
    if (i >= warmup) {
      double *r = &t[(i - warmup) * 4];
      r[0] = t3 - t0, r[1] = t1 - t0, r[2] = t2 - t1, r[3] = t3 - t2;
    }
  }
  static const char *const key[4] = {"step_s", "fwd_s", "bwd_s", "update_s"};
  for (int k = 0; k < 4; k++) {
    printf("%s", key[k]);
    for (int i = 0; i < iters; i++)
      printf(" %.6f", t[i * 4 + k]);
    printf("\n");
  }
  printf("loss %.6f\n", loss);
  free(t);
  openblas_set_num_threads(blas_threads);
  double peak2 = sgemm_peak();
  printf("sgemm_gflops %.2f %.2f\n", peak > peak2 ? peak : peak2, peak > peak2 ? peak2 : peak);
  free(tok), free(lab);
  ref_model_free(&m);
  gv_backend_free(&be);
  return 0;
}
