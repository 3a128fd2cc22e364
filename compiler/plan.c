/* plan.c - the static memory plan (plan.h): sequential layout for static and per-slot
 * buffers, and first-fit over live ranges for transient buffers, per function. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

enum { ALIGN = 64 };

static int64_t align_up(int64_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

Plan *plan_new(Arena *a, int64_t slots)
{
  Plan *p = ARENA_NEW(a, Plan);
  p->arena = a;
  p->slots = slots < 1 ? 1 : slots;
  return p;
}

int plan_buf(Plan *p, const char *name, int kind, PlanClass cls, int64_t bytes)
{
  if (p->nbufs == p->cap) {
    int cap = p->cap ? 2 * p->cap : 256;
    p->bufs = arena_realloc(p->arena, p->bufs, sizeof *p->bufs * (size_t)p->cap, sizeof *p->bufs * (size_t)cap);
    p->cap = cap;
  }
  PlanBuf *b = &p->bufs[p->nbufs];
  memset(b, 0, sizeof *b);
  b->name = name;
  b->kind = kind;
  b->cls = cls;
  b->bytes = bytes;
  b->fn = -1;
  b->first = b->last = -1;
  return p->nbufs++;
}

int plan_alias(Plan *p, const char *name, int base, int64_t rel, int64_t bytes)
{
  int b = plan_buf(p, name, p->bufs[base].kind, PC_ALIAS, bytes);
  p->bufs[b].base = base;
  p->bufs[b].rel = rel;
  return b;
}

void plan_use(Plan *p, int buf, int fn, int call)
{
  PlanBuf *b = &p->bufs[buf];
  if (b->cls != PC_TRANSIENT)
    return;
  if (b->fn < 0) {
    b->fn = fn;
    b->first = b->last = call;
    return;
  }
  if (call < b->first)
    b->first = call;
  if (call > b->last)
    b->last = call;
}

/* First-fit of the transients of one function, by start of live range. */
static int64_t assign_transients(Plan *p, int fn, int64_t base)
{
  int n = 0;
  for (int i = 0; i < p->nbufs; i++)
    n += p->bufs[i].cls == PC_TRANSIENT && p->bufs[i].fn == fn;
  if (!n)
    return 0;
  int *order = calloc((size_t)n, sizeof *order);
  for (int i = 0, k = 0; i < p->nbufs; i++)
    if (p->bufs[i].cls == PC_TRANSIENT && p->bufs[i].fn == fn)
      order[k++] = i;
  for (int i = 1; i < n; i++) /* insertion sort by (first, index): stable and deterministic */
    for (int j = i; j > 0 && p->bufs[order[j - 1]].first > p->bufs[order[j]].first; j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  int64_t top = 0;
  for (int i = 0; i < n; i++) {
    PlanBuf *b = &p->bufs[order[i]];
    int64_t off = 0, size = align_up(b->bytes);
    for (int moved = 1; moved;) { /* lowest offset not overlapping a live, placed buffer */
      moved = 0;
      for (int j = 0; j < i; j++) {
        PlanBuf *o = &p->bufs[order[j]];
        int live = o->last >= b->first && o->first <= b->last;
        int64_t olo = o->offset - base, ohi = olo + align_up(o->bytes);
        if (live && off < ohi && olo < off + size) {
          off = ohi;
          moved = 1;
        }
      }
    }
    b->offset = base + off;
    if (off + size > top)
      top = off + size;
  }
  free(order);
  return top;
}

void plan_assign(Plan *p)
{
  memset(p->arena_bytes, 0, sizeof p->arena_bytes);
  p->slot_bytes = 0;
  for (int i = 0; i < p->nbufs; i++) {
    PlanBuf *b = &p->bufs[i];
    if (b->cls == PC_STATIC) {
      b->offset = p->arena_bytes[b->kind];
      p->arena_bytes[b->kind] += align_up(b->bytes);
    } else if (b->cls == PC_SLOT) {
      b->offset = p->slot_bytes;
      p->slot_bytes += align_up(b->bytes);
    }
  }
  int64_t acts_static = p->arena_bytes[PLAN_ACTS];
  int64_t base = acts_static + p->slot_bytes * p->slots;
  for (int i = 0; i < p->nbufs; i++)
    if (p->bufs[i].cls == PC_SLOT)
      p->bufs[i].offset += acts_static;
  int maxfn = -1;
  for (int i = 0; i < p->nbufs; i++)
    if (p->bufs[i].cls == PC_TRANSIENT && p->bufs[i].fn > maxfn)
      maxfn = p->bufs[i].fn;
  p->transient_bytes = 0;
  for (int fn = 0; fn <= maxfn; fn++) {
    int64_t t = assign_transients(p, fn, base);
    if (t > p->transient_bytes)
      p->transient_bytes = t;
  }
  p->arena_bytes[PLAN_ACTS] = base + p->transient_bytes;
  for (int i = 0; i < p->nbufs; i++)
    if (p->bufs[i].cls == PC_ALIAS)
      p->bufs[i].offset = p->bufs[p->bufs[i].base].offset + p->bufs[i].rel;
}

int plan_append(Plan *p, const char *name, int kind, int64_t bytes, int64_t align)
{
  int b = plan_buf(p, name, kind, PC_STATIC, bytes);
  int64_t at = (p->arena_bytes[kind] + align - 1) / align * align;
  p->bufs[b].offset = at;
  p->arena_bytes[kind] = at + align_up(bytes);
  return b;
}

int64_t plan_stride(const Plan *p, int buf)
{
  if (p->bufs[buf].cls == PC_ALIAS) /* a part of a per-slot buffer is per slot too */
    return plan_stride(p, p->bufs[buf].base);
  return p->bufs[buf].cls == PC_SLOT ? p->slot_bytes : 0;
}

int64_t plan_kept_activation_bytes(const Plan *p) { return p->slot_bytes; }

int64_t plan_total_bytes(const Plan *p)
{
  int64_t b = 0;
  for (int k = 0; k < PLAN_KINDS; k++)
    b += p->arena_bytes[k];
  return b;
}

static const char *kind_name(int k)
{
  static const char *names[] = {"params", "grads", "optim", "acts", "workspace"};
  return k >= 0 && k < PLAN_KINDS ? names[k] : "?";
}

void plan_print(FILE *out, const Plan *p)
{
  static const char *cls[] = {"static", "slot", "transient", "alias"};
  fprintf(out, "%-48s %-9s %-9s %12s %12s  %s\n", "buffer", "arena", "class", "offset", "bytes", "live (fn:calls)");
  for (int i = 0; i < p->nbufs; i++) {
    const PlanBuf *b = &p->bufs[i];
    fprintf(out, "%-48s %-9s %-9s %12lld %12lld", b->name, kind_name(b->kind), cls[b->cls], (long long)b->offset,
            (long long)b->bytes);
    if (b->cls == PC_TRANSIENT)
      fprintf(out, "  %d:%d-%d", b->fn, b->first, b->last);
    else if (b->cls == PC_SLOT)
      fprintf(out, "  + slot * %lld", (long long)p->slot_bytes);
    fputc('\n', out);
  }
  fprintf(out, "\n%-12s %14s\n", "arena", "bytes");
  int64_t total = 0;
  for (int k = 0; k < PLAN_KINDS; k++) {
    fprintf(out, "%-12s %14lld\n", kind_name(k), (long long)p->arena_bytes[k]);
    total += p->arena_bytes[k];
  }
  fprintf(out, "%-12s %14lld\n", "total", (long long)total);
  fprintf(out, "activations kept per micro-batch slot: %lld bytes x %lld slots; transient region: %lld bytes\n",
          (long long)p->slot_bytes, (long long)p->slots, (long long)p->transient_bytes);
}
