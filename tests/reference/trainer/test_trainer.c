/* test_trainer.c - the reference trainer against the PyTorch fixtures (gen_fixtures.py):
 * loads the fixture's fp32 weights and batch, then checks, in fp32 against fp64 references:
 *  - loss to 1e-5 relative;
 *  - logits and every parameter gradient, every element, per tensor:
 *    max |ours - ref| <= tol * max |ref| (+ atol for grads), tol 1e-5 for logits and
 *    1e-4 for grads (explained at GRAD_TOL);
 *  - the learning rates against the fixture's schedule, the pre-clip gradient norms to
 *    1e-5 relative, and the losses of the 10 AdamW steps (clip 1.0, warmup + cosine) plus
 *    the loss after the last step to 1e-5 relative.
 * Usage: test_trainer FIXTURE.bin */
#include <stdio.h>
#include <stdlib.h>

#include "../fixture.h"
#include "model.h"
#include "testutil.h"

/* fp32 accumulation over K terms gives a relative error of about sqrt(K) * 6e-8 of the
 * sum of |terms| (K <= 256 here: 1e-6), the backward chains about 20 such steps, and a
 * gradient element that is a small difference of large terms (attention, layernorm) loses
 * more relative to itself: so we bound each tensor's error by its scale, not per element.
 * Measured errors are ~1e-6 of max |ref|; 1e-4 leaves room for another BLAS.
 * GRAD_ATOL: the attention k bias has an exactly zero gradient (softmax is invariant to
 * adding q.b_k to every score of a row), so the reference holds fp64 noise (~1e-18) and we
 * hold fp32 noise (~1e-10); only an absolute bound, far below the ~1e-3 typical gradient
 * element, means anything there. */
#define LOGIT_TOL 1e-5
#define GRAD_TOL 1e-4
#define GRAD_ATOL 1e-8
#define LOSS_RTOL 1e-5

/* max |a - e| over n elements, and max |e| in *scale */
static double max_err(const float *a, const float *e, size_t n, double *scale)
{
  double err = 0.0;
  *scale = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - e[i]);
    err = d > err ? d : err;
    *scale = fabs(e[i]) > *scale ? fabs(e[i]) : *scale;
  }
  return err;
}

static void config_from(struct ref_config *c, const struct ref_fixture *fx, const double *hp)
{
  *c = (struct ref_config){.model = fx->model == REF_MODEL_GPT ? REF_GPT : REF_LLAMA,
                           .V = fx->V, .C = fx->C, .L = fx->L, .H = fx->H, .KV = fx->KV,
                           .F = fx->F, .S = fx->S, .B = fx->B, .T = fx->T,
                           .norm_eps = (float)hp[8], .rope_base = (float)hp[9]};
}

/* Loads every param/<name> record into the model; checks the parameter lists agree. */
static int load_weights(struct ref_model *m, const struct ref_fixture *fx)
{
  int n = 0;
  for (int i = 0; i < fx->count; i++)
    n += !strncmp(fx->rec[i].name, "param/", 6);
  CHECK_EQ_INT(n, m->nparams);
  for (int i = 0; i < m->nparams; i++) {
    char key[96];
    snprintf(key, sizeof key, "param/%s", m->par[i].name);
    const float *w = ref_fixture_f32(fx, key, m->par[i].numel);
    CHECK(w != NULL);
    if (!w)
      return -1;
    memcpy(m->par[i].w, w, m->par[i].numel * sizeof(float));
  }
  return n == m->nparams ? 0 : -1;
}

static void check_first_step(struct ref_model *m, const struct ref_fixture *fx)
{
  const size_t M = (size_t)fx->B * fx->T;
  const double *loss = ref_fixture_f64(fx, "loss", 1);
  const float *logits = ref_fixture_f32(fx, "logits", M * (size_t)fx->V);
  CHECK(loss && logits);
  if (!loss || !logits)
    return;
  float ours = ref_model_forward(m);
  printf("loss %.9f  ref %.9f  rel err %.2e\n", ours, loss[0], fabs(ours - loss[0]) / loss[0]);
  CHECK_CLOSE(loss[0], ours, 0, LOSS_RTOL);
  double scale, e = max_err(m->logits, logits, M * (size_t)fx->V, &scale);
  printf("logits: max err %.2e, max |ref| %.2e\n", e, scale);
  CHECK(e <= LOGIT_TOL * scale);

  ref_model_backward(m);
  double worst = 0.0;
  const char *worst_name = "";
  for (int i = 0; i < m->nparams; i++) {
    char key[96];
    snprintf(key, sizeof key, "grad/%s", m->par[i].name);
    const float *g = ref_fixture_f32(fx, key, m->par[i].numel);
    CHECK(g != NULL);
    if (!g)
      continue;
    double gs, ge = max_err(m->par[i].g, g, m->par[i].numel, &gs);
    if (ge > GRAD_TOL * gs + GRAD_ATOL)
      fprintf(stderr, "grad %s: max err %.2e, max |ref| %.2e\n", m->par[i].name, ge, gs);
    CHECK(ge <= GRAD_TOL * gs + GRAD_ATOL);
    ge = gs > 1e3 * GRAD_ATOL ? ge / gs : 0.0;      /* the worst relative error is reported */
    if (ge > worst)
      worst = ge, worst_name = m->par[i].name;
  }
  printf("grads: %d tensors, worst max err / max |ref| = %.2e (%s)\n", m->nparams, worst, worst_name);
}

static void check_training(struct ref_model *m, const struct ref_fixture *fx, const double *hp)
{
  const int N = fx->steps;
  const double *losses = ref_fixture_f64(fx, "losses", (size_t)N + 1);
  const double *losses32 = ref_fixture_f64(fx, "losses_f32", (size_t)N + 1);
  const double *norms = ref_fixture_f64(fx, "grad_norms", (size_t)N);
  const double *lrs = ref_fixture_f64(fx, "lrs", (size_t)N);
  CHECK(losses && losses32 && norms && lrs);
  if (!losses || !losses32 || !norms || !lrs)
    return;
  const struct gv_adamw opt = {.beta1 = (float)hp[1], .beta2 = (float)hp[2], .eps = (float)hp[3],
                               .weight_decay = (float)hp[4]};
  const struct gv_lr_schedule sched = {.max_lr = hp[0], .min_lr = hp[7], .warmup_steps = (int)hp[6],
                                       .decay_steps = N, .decay = GV_LR_COSINE};
  double worst = 0.0;
  for (int s = 0; s <= N; s++) {
    float loss = ref_model_forward(m);
    double rel = fabs(loss - losses[s]) / losses[s];
    worst = rel > worst ? rel : worst;
    printf("step %2d  loss %.7f  ref f64 %.7f  ref f32 %.7f  rel err %.2e", s, loss, losses[s],
           losses32[s], rel);
    CHECK_CLOSE(losses[s], loss, 0, LOSS_RTOL);
    if (s == N) {
      printf("\n");
      break;
    }
    ref_model_backward(m);
    double lr = gv_lr_at(&sched, s);
    CHECK_CLOSE(lrs[s], lr, 0, 1e-12);
    double norm = ref_model_update(m, &opt, (float)lr, (float)hp[5]);
    printf("  grad norm %.6f (ref %.6f)  lr %.3e\n", norm, norms[s], lr);
    CHECK_CLOSE(norms[s], norm, 0, LOSS_RTOL);
  }
  printf("training: worst loss rel err over %d steps %.2e\n", N + 1, worst);
}

int main(int argc, char **argv)
{
  struct ref_fixture fx;
  if (argc != 2 || ref_fixture_load(&fx, argv[1]))
    return 2;
  const double *hp = ref_fixture_f64(&fx, "hparams", 10);
  const struct ref_record *tok = ref_fixture_get(&fx, "tokens", REF_I32);
  const struct ref_record *lab = ref_fixture_get(&fx, "labels", REF_I32);
  if (!hp || !tok || !lab)
    return 2;
  struct ref_config c;
  config_from(&c, &fx, hp);
  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  struct ref_model m;
  ref_model_init(&m, &c, &be);
  if (load_weights(&m, &fx) == 0) {
    ref_model_set_batch(&m, tok->data, lab->data);
    check_first_step(&m, &fx);
    check_training(&m, &fx, hp);
  }
  ref_model_free(&m);
  gv_backend_free(&be);
  ref_fixture_free(&fx);
  return tu_report(c.model == REF_GPT ? "test_trainer tiny_gpt" : "test_trainer tiny_llama");
}
