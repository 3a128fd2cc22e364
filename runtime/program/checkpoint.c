/* checkpoint.c - --save / --load: one file per rank, DIR/rank<r>.gvck, holding this
 * rank's parameter shards and AdamW moments by global name plus the step, written to a
 * temporary file and renamed into place (a crash never leaves a half-written checkpoint;
 * the previous one stays valid). Loading checks the world size and every record's shape,
 * and resumes at the saved step: the same losses as an uninterrupted run. The arenas may
 * be device memory: each record is staged through a host buffer (gv_run_to_host) on save
 * and copied from the file's host image with gv_dev_memcpy on load. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "program/run.h"
#include "program/tensorfile.h"

/* ZeRO's flat AdamW shard: m then v, at the end of the optimizer arena. */
static float *zero_moments(struct gv_run *r)
{
  return (float *)(r->bases[GV_MEM_OPTIM] + r->plan.arena_bytes[GV_MEM_OPTIM] - 2 * r->shard_bytes);
}

static void rank_file(const struct gv_run *r, const char *dir, char *path, size_t n)
{
  snprintf(path, n, "%s/rank%05d.gvck", dir, gv_comm_rank(r->world));
}

int gv_run_save(struct gv_run *r, const char *dir, int next_step)
{
  if (mkdir(dir, 0755) && errno != EEXIST)
    gv_fatalf(__FILE__, __LINE__, "--save", "gvrt", "%s: cannot create the checkpoint folder (%s)", dir,
              strerror(errno));
  char path[4096], key[600];
  rank_file(r, dir, path, sizeof path);
  int32_t header[64] = {GV_TF_MAGIC_CKPT, 1, next_step, (int32_t)(r->args.seed & 0xffffffffu),
                        (int32_t)(r->args.seed >> 32), (int32_t)r->world_size};
  FILE *f = gv_tf_begin(path, header);
  int ok = f != NULL, count = 0;
  static const char *what[3] = {"param", "adam_m", "adam_v"};
  int parts = r->zero ? 1 : 3; /* ZeRO: the moments are one flat shard, saved below */
  for (int i = 0; ok && i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    int64_t dims[2] = {p->shard_rows, p->shard_cols};
    size_t n = (size_t)(p->shard_rows * p->shard_cols);
    const float *src[3] = {(const float *)(r->bases[GV_MEM_PARAMS] + p->poff),
                           (const float *)(r->bases[GV_MEM_OPTIM] + p->moff),
                           (const float *)(r->bases[GV_MEM_OPTIM] + p->moff) + n};
    for (int k = 0; ok && k < parts; k++, count++) {
      snprintf(key, sizeof key, "%s/%s", what[k], p->name);
      ok = !gv_tf_put(f, key, GV_TF_F32, 2, dims, gv_run_to_host(r, src[k], n * sizeof(float)));
    }
  }
  if (ok && r->zero) {
    int64_t dims[1] = {2 * r->shard_bytes / 4};
    ok = !gv_tf_put(f, "zero/adam_m_v", GV_TF_F32, 1, dims, gv_run_to_host(r, zero_moments(r), 2 * (size_t)r->shard_bytes));
    count++;
  }
  if (!ok || gv_tf_commit(f, path, count))
    gv_fatalf(__FILE__, __LINE__, "--save", "gvrt", "%s: cannot write the checkpoint", path);
  gv_log0(GV_LOG_INFO, "saved checkpoint %s (step %d)", dir, next_step);
  return 0;
}

int gv_run_load(struct gv_run *r, const char *dir)
{
  char path[4096], key[600], err[512];
  rank_file(r, dir, path, sizeof path);
  struct gv_tf tf;
  if (gv_tf_read(&tf, path, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s", err);
  if (tf.header[0] != GV_TF_MAGIC_CKPT || tf.header[5] != r->world_size)
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: written by a run of %d ranks, this one has %lld", path,
              tf.header[5], (long long)r->world_size);
  static const char *what[3] = {"param", "adam_m", "adam_v"};
  int parts = r->zero ? 1 : 3;
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    size_t n = (size_t)(p->shard_rows * p->shard_cols);
    float *dst[3] = {(float *)(r->bases[GV_MEM_PARAMS] + p->poff), (float *)(r->bases[GV_MEM_OPTIM] + p->moff),
                     (float *)(r->bases[GV_MEM_OPTIM] + p->moff) + n};
    for (int k = 0; k < parts; k++) {
      snprintf(key, sizeof key, "%s/%s", what[k], p->name);
      const struct gv_tf_record *rec = gv_tf_find(&tf, key);
      if (!rec || rec->dtype != GV_TF_F32 || rec->numel != n)
        gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: record '%s' is missing or not %zu floats (a different "
                  "model or strategy?)", path, key, n);
      gv_dev_memcpy(&r->be, dst[k], rec->data, n * sizeof(float), GV_COPY_H2D);
    }
  }
  if (r->zero) {
    const struct gv_tf_record *rec = gv_tf_find(&tf, "zero/adam_m_v");
    if (!rec || rec->dtype != GV_TF_F32 || rec->numel != (size_t)(2 * r->shard_bytes / 4))
      gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: record 'zero/adam_m_v' is missing or of another size", path);
    gv_dev_memcpy(&r->be, zero_moments(r), rec->data, rec->numel * sizeof(float), GV_COPY_H2D);
  }
  int step = tf.header[2];
  gv_tf_free(&tf);
  gv_log0(GV_LOG_INFO, "loaded checkpoint %s: resuming at step %d", dir, step);
  return step;
}
