/* arena.c - per-device arenas carved from the compiler's memory plan: one allocation per
 * memory kind, made once at start-up through the counting gv_dev_alloc, so "planned bytes ==
 * allocated bytes" is checked here rather than hoped for. Buffers are offsets into them. */
#include "gvrt.h"

static const char *const kind_names[GV_MEM_KINDS] = {"params", "grads", "optimizer", "activations",
                                                     "workspace"};

static void check_plan(const struct gv_plan *plan)
{
  for (int i = 0; i < plan->nbufs; i++) {
    const struct gv_plan_buf *b = &plan->bufs[i];
    GV_CHECK((unsigned)b->kind < GV_MEM_KINDS, "plan buffer '%s' has kind %d", b->name, (int)b->kind);
    GV_CHECK(b->offset % 64 == 0, "plan buffer '%s' offset %zu is not 64-byte aligned", b->name,
             b->offset);
    GV_CHECK(b->offset + b->bytes <= plan->arena_bytes[b->kind],
             "plan buffer '%s' [%zu, %zu) overruns the %s arena of %zu bytes", b->name, b->offset,
             b->offset + b->bytes, kind_names[b->kind], plan->arena_bytes[b->kind]);
  }
}

void gv_arenas_init(struct gv_arenas *a, struct gv_backend *be, const struct gv_plan *plan)
{
  size_t before = be->allocated_bytes, planned = 0;
  check_plan(plan);
  a->be = be;
  for (int k = 0; k < GV_MEM_KINDS; k++) {
    a->bytes[k] = plan->arena_bytes[k];
    a->base[k] = a->bytes[k] ? gv_dev_alloc(be, a->bytes[k]) : NULL;
    planned += a->bytes[k];
    gv_log(GV_LOG_DEBUG, "%s arena: %zu bytes on %s:%d", kind_names[k], a->bytes[k], be->ops->name,
           be->device);
  }
  GV_CHECK(be->allocated_bytes - before == planned,
           "memory plan: planned %zu bytes, allocated %zu", planned, be->allocated_bytes - before);
  gv_log(GV_LOG_INFO, "arenas on %s:%d: params %zu, grads %zu, optimizer %zu, activations %zu, workspace %zu bytes (total %zu = planned)",
         be->ops->name, be->device, a->bytes[0], a->bytes[1], a->bytes[2], a->bytes[3], a->bytes[4],
         planned);
  gv_backend_set_workspace(be, a->base[GV_MEM_WORKSPACE], a->bytes[GV_MEM_WORKSPACE]);
}

void gv_arenas_free(struct gv_arenas *a)
{
  if (!a->be) return;
  if (a->be->workspace == a->base[GV_MEM_WORKSPACE]) gv_backend_set_workspace(a->be, NULL, 0);
  for (int k = 0; k < GV_MEM_KINDS; k++) gv_dev_free(a->be, &a->base[k], a->bytes[k]);
  a->be = NULL;
}

void *gv_arenas_ptr(const struct gv_arenas *a, const struct gv_plan_buf *buf)
{
  GV_CHECK(a->base[buf->kind] != NULL && buf->offset + buf->bytes <= a->bytes[buf->kind],
           "buffer '%s' is not inside its arena", buf->name);
  return (char *)a->base[buf->kind] + buf->offset;
}
