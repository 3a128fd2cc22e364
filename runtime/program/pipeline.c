/* pipeline.c - the pipeline schedules that drive a stage's generated functions:
 * GPipe (every forward, then every backward) and 1F1B / pipedream_flush (Megatron's
 * non-interleaved schedule: pp - stage - 1 warm-up forwards, then one forward and one
 * backward in turn, then the remaining backwards). Boundary activations go to the next
 * stage and their gradients come back over the pipeline group; the paired transfers of
 * the steady phase use one sendrecv, so no two stages wait on each other's send.
 *
 *   1F1B, 4 stages, 6 micro-batches (F = forward, B = backward, . = bubble):
 *   stage 0: F0 F1 F2 F3 .  .  B0 F4 B1 F5 B2 .  B3 .  B4 .  B5
 *   stage 1: .  F0 F1 F2 .  B0 F3 B1 F4 B2 F5 B3 .  B4 .  B5
 *   stage 2: .  .  F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 .  B5
 *   stage 3: .  .  .  F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5
 */
#include "program/run.h"

enum { TAG_ACT = 11, TAG_GRAD = 12 };

typedef struct Pipe {
  struct gv_run *r;
  int64_t n;
  int first, last;
  double loss;
  void (*load)(struct gv_run *r, int64_t i, int64_t slot, void *arg);
  void (*done)(struct gv_run *r, int64_t i, int64_t slot, void *arg); /* NULL: none */
  void *arg;
} Pipe;

static int64_t slot_of(const Pipe *p, int64_t i) { return i % p->r->slots; }

static char *acts(const struct gv_run *r, int64_t off, int64_t slot)
{
  return r->bases[GV_MEM_ACTS] + off + slot * r->io_stride;
}

static void forward(Pipe *p, int64_t i)
{
  struct gv_run *r = p->r;
  int64_t slot = slot_of(p, i);
  p->load(r, i, slot, p->arg);
  r->cur_micro = i;
  gv_run_tl_mark(r, 0, i);
  r->fns.fwd(r, r->bases, slot);
  if (r->loss_off >= 0) { /* the loss lives in the activations arena (device memory on a GPU); a stage
                             before the last has one only for its MoE load-balancing terms */
    float loss;
    gv_dev_memcpy(&r->be, &loss, acts(r, r->loss_off, slot), sizeof loss, GV_COPY_D2H);
    p->loss += loss;
  }
  if (p->done)
    p->done(r, i, slot, p->arg);
  gv_run_tl_mark(r, 1, i);
}

static void backward(Pipe *p, int64_t i)
{
  p->r->cur_micro = i;
  gv_run_tl_mark(p->r, 2, i);
  p->r->fns.bwd(p->r, p->r->bases, slot_of(p, i));
  gv_run_tl_mark(p->r, 3, i);
}

/* ---- transfers (no-ops at the ends of the pipeline) ---- */

static void recv_forward(Pipe *p, int64_t i)
{
  struct gv_run *r = p->r;
  if (!p->first)
    gv_comm_recv(r->pp_group, acts(r, r->in_act, slot_of(p, i)), (size_t)r->in_elems, r->fdt, r->stage - 1,
                 TAG_ACT);
}

static void send_forward(Pipe *p, int64_t i)
{
  struct gv_run *r = p->r;
  if (!p->last)
    gv_comm_send(r->pp_group, acts(r, r->out_act, slot_of(p, i)), (size_t)r->out_elems, r->fdt, r->stage + 1,
                 TAG_ACT);
}

static void recv_backward(Pipe *p)
{
  struct gv_run *r = p->r;
  if (!p->last)
    gv_comm_recv(r->pp_group, r->bases[GV_MEM_ACTS] + r->out_grad, (size_t)r->out_elems, r->fdt,
                 r->stage + 1, TAG_GRAD);
}

static void send_backward(Pipe *p)
{
  struct gv_run *r = p->r;
  if (!p->first)
    gv_comm_send(r->pp_group, r->bases[GV_MEM_ACTS] + r->in_grad, (size_t)r->in_elems, r->fdt, r->stage - 1,
                 TAG_GRAD);
}

static void send_forward_recv_backward(Pipe *p, int64_t i)
{
  struct gv_run *r = p->r;
  if (!p->last)
    gv_comm_sendrecv(r->pp_group, acts(r, r->out_act, slot_of(p, i)), (size_t)r->out_elems, r->stage + 1,
                     r->bases[GV_MEM_ACTS] + r->out_grad, (size_t)r->out_elems, r->stage + 1, r->fdt, TAG_ACT);
}

static void send_backward_recv_forward(Pipe *p, int64_t next)
{
  struct gv_run *r = p->r;
  if (!p->first)
    gv_comm_sendrecv(r->pp_group, r->bases[GV_MEM_ACTS] + r->in_grad, (size_t)r->in_elems, r->stage - 1,
                     acts(r, r->in_act, slot_of(p, next)), (size_t)r->in_elems, r->stage - 1, r->fdt, TAG_ACT);
}

/* ---- schedules ---- */

static void forward_only(Pipe *p)
{
  for (int64_t i = 0; i < p->n; i++) {
    recv_forward(p, i);
    forward(p, i);
    send_forward(p, i);
  }
}

static void gpipe(Pipe *p)
{
  forward_only(p);
  for (int64_t i = 0; i < p->n; i++) {
    recv_backward(p);
    backward(p, i);
    send_backward(p);
  }
}

static void one_f_one_b(Pipe *p)
{
  struct gv_run *r = p->r;
  int64_t warm = r->pp - r->stage - 1 < p->n ? r->pp - r->stage - 1 : p->n, rest = p->n - warm;
  for (int64_t i = 0; i < warm; i++) {
    recv_forward(p, i);
    forward(p, i);
    send_forward(p, i);
  }
  if (rest > 0)
    recv_forward(p, warm);
  for (int64_t i = 0; i < rest; i++) {
    forward(p, warm + i);
    send_forward_recv_backward(p, warm + i);
    backward(p, i);
    if (i == rest - 1)
      send_backward(p);
    else
      send_backward_recv_forward(p, warm + i + 1);
  }
  for (int64_t i = rest; i < p->n; i++) {
    recv_backward(p);
    backward(p, i);
    send_backward(p);
  }
}

double gv_pipe_step(struct gv_run *r, int64_t nmicro, int backward_too,
                    void (*load)(struct gv_run *r, int64_t i, int64_t slot, void *arg),
                    void (*done)(struct gv_run *r, int64_t i, int64_t slot, void *arg), void *arg)
{
  Pipe p = {r, nmicro, r->stage == 0, r->stage == r->pp - 1, 0.0, load, done, arg};
  int64_t in_flight = !backward_too ? 1 : r->one_f_one_b || r->pp == 1 ? (r->pp - r->stage < nmicro ? r->pp - r->stage : nmicro)
                                                                        : nmicro;
  if (in_flight > r->slots)
    gv_fatalf(__FILE__, __LINE__, "gv_pipe_step", "gvrt",
              "a step of %lld micro-batches keeps %lld in flight on stage %d, but the program was planned for %lld; "
              "recompile with --chunks %lld", (long long)nmicro, (long long)in_flight, r->stage, (long long)r->slots,
              (long long)nmicro);
  if (!backward_too)
    forward_only(&p);
  else if (r->one_f_one_b || r->pp == 1)
    one_f_one_b(&p);
  else
    gpipe(&p);
  return p.loss;
}
