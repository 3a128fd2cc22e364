/* schedule.c - learning-rate schedule: linear warmup, then cosine or linear decay.
 * step is the 0-based index of the update about to be taken (the value handed to the
 * optimizer for that update), W = warmup_steps, N = decay_steps:
 *   step <  W:  lr = max_lr * (step + 1) / W                        (llm.c's warmup)
 *   step >= W:  r = min(1, (step - W) / (N - W))
 *     cosine:   lr = min_lr + 0.5 * (1 + cos(pi * r)) * (max_lr - min_lr)
 *     linear:   lr = max_lr - r * (max_lr - min_lr)
 *     constant: lr = max_lr
 * so lr reaches min_lr at step N and stays there. tests/reference/gen_fixtures.py
 * computes the same values in Python (fixture record "lrs"). */
#include <math.h>

#include "gvrt_train.h"

double gv_lr_at(const struct gv_lr_schedule *s, int step)
{
  if (step < s->warmup_steps)
    return s->max_lr * (step + 1) / s->warmup_steps;
  if (s->decay == GV_LR_CONSTANT || s->decay_steps <= s->warmup_steps)
    return s->max_lr;
  double r = (double)(step - s->warmup_steps) / (s->decay_steps - s->warmup_steps);
  if (r > 1.0)
    r = 1.0;
  if (s->decay == GV_LR_LINEAR)
    return s->max_lr - r * (s->max_lr - s->min_lr);
  return s->min_lr + 0.5 * (1.0 + cos(M_PI * r)) * (s->max_lr - s->min_lr);
}
