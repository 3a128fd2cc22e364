/* checkpoint.c - --save / --load: one file per rank, DIR/rank<r>.gvck, holding this
 * rank's parameter shards and AdamW moments by global name plus the step, written to a
 * temporary file and renamed into place (a crash never leaves a half-written checkpoint;
 * the previous one stays valid). Loading checks the world size, the strategy and every
 * record's shape, and resumes at the saved step: the same losses as an uninterrupted run.
 * The arenas may be device memory: each record is staged through a host buffer
 * (gv_run_to_host) on save and copied from the file's host image with gv_dev_memcpy on load.
 *
 * Records: "param/NAME", "adam_m/NAME", "adam_v/NAME" (the rank's tp block of a parameter;
 * under ZeRO-2 only "param/NAME" and the flat moment shard "zero/adam_m_v"), and for each
 * ZeRO-3 layer L of this rank's stage only its persistent shard of the layer's padded
 * range: "zero3/L/param_shard", "zero3/L/adam_m", "zero3/L/adam_v" (range / dp bytes each).
 * Under bf16 mixed precision "param/NAME" is the fp32 master weight (the bf16 parameter is
 * its rounding), so checkpoints move between fp32 and bf16 programs of one strategy.
 * Header: [2] the step to resume at, [3..4] the seed, [5] world size, [6..8] pp, tp, dp
 * (0 in files of older runs: not checked). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "program/run.h"
#include "program/tensorfile.h"

enum { HDR_STEP = 2, HDR_WORLD = 5, HDR_PP = 6, HDR_TP = 7, HDR_DP = 8 };

static const char *const what[3] = {"param", "adam_m", "adam_v"};
static const char *const z3_what[3] = {"param_shard", "adam_m", "adam_v"};

/* ZeRO's flat AdamW shard: m then v, at the end of the optimizer arena. */
static float *zero_moments(struct gv_run *r)
{
  return (float *)(r->bases[GV_MEM_OPTIM] + r->plan.arena_bytes[GV_MEM_OPTIM] - 2 * r->shard_bytes);
}

static int z3_layer(const struct gv_run *r, int li) { return li >= 0 && li < r->nzl && r->zl[li].range > 0; }

/* Bytes of each of a ZeRO-3 layer's three records: this rank's shard of the padded range,
 * over the layer's own dp group (with per-layer tp, the layer's degree decides it). */
static size_t z3_bytes(const struct gv_run *r, int li) { return (size_t)(r->zl[li].range / r->zl[li].dp_size); }

/* Part k (z3_what) of ZeRO-3 layer li in the arenas: the parameter shard, or AdamW's m or v
 * (m then v in the layer's moment shard, as owned_moment in run.c reads them). */
static char *z3_part(struct gv_run *r, int li, int k)
{
  const struct gv_run_zlayer *z = &r->zl[li];
  if (k == 0)
    return r->bases[GV_MEM_PARAMS] + z->pshard;
  return r->bases[GV_MEM_OPTIM] + z->mshard + (k == 2 ? (int64_t)z3_bytes(r, li) : 0);
}

static void rank_file(const struct gv_run *r, const char *dir, char *path, size_t n)
{
  snprintf(path, n, "%s/rank%05d.gvck", dir, gv_comm_rank(r->world));
}

/* Elements of p's AdamW m (and of v) on this rank: all of it, or under ZeRO-2 per parameter
 * (per-layer tp, or beside ZeRO-3 blocks: shard_bytes 0) this rank's chunk of ceil(n / dp),
 * saved as a 1-D record. Flat ZeRO-2 saves none per parameter (see "zero/adam_m_v"). */
static size_t moment_count(const struct gv_run *r, const struct gv_run_param *p)
{
  if (gv_run_zero2_param(r, p))
    return gv_run_zero2_chunk(p);
  return r->zero ? 0 : gv_run_shard_numel(p);
}

int gv_run_save(struct gv_run *r, const char *dir, int next_step)
{
  if (mkdir(dir, 0755) && errno != EEXIST)
    gv_fatalf(__FILE__, __LINE__, "--save", "gvrt", "%s: cannot create the checkpoint folder (%s)", dir,
              strerror(errno));
  char path[4096], key[600];
  rank_file(r, dir, path, sizeof path);
  int32_t header[64] = {GV_TF_MAGIC_CKPT, 1, next_step, (int32_t)(r->args.seed & 0xffffffffu),
                        (int32_t)(r->args.seed >> 32), (int32_t)r->world_size, (int32_t)r->pp, r->tp, r->dp_size};
  FILE *f = gv_tf_begin(path, header);
  int ok = f != NULL, count = 0;
  for (int i = 0; ok && i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    if (gv_run_zero3_param(r, p))
      continue; /* saved with its layer's shard below (poff is an offset in the layer's range) */
    int64_t dims[2] = {p->shard_rows, p->shard_cols}, mdims[1] = {(int64_t)moment_count(r, p)};
    size_t n = gv_run_shard_numel(p), mn = moment_count(r, p);
    const float *src[3] = {r->fdt == GV_DTYPE_F32 ? (const float *)(r->bases[GV_MEM_PARAMS] + p->poff) : gv_run_master(r, p),
                           (const float *)(r->bases[GV_MEM_OPTIM] + p->moff),
                           (const float *)(r->bases[GV_MEM_OPTIM] + p->moff) + mn};
    for (int k = 0; ok && k < (mn ? 3 : 1); k++, count++) { /* without moments here: flat ZeRO-2, below */
      snprintf(key, sizeof key, "%s/%s", what[k], p->name);
      int full = !k || mn == n;
      ok = !gv_tf_put(f, key, GV_TF_F32, full ? 2 : 1, full ? dims : mdims,
                      gv_run_to_host(r, src[k], (k ? mn : n) * sizeof(float)));
    }
  }
  if (ok && r->zero && r->shard_bytes) {
    int64_t dims[1] = {2 * r->shard_bytes / 4};
    ok = !gv_tf_put(f, "zero/adam_m_v", GV_TF_F32, 1, dims, gv_run_to_host(r, zero_moments(r), 2 * (size_t)r->shard_bytes));
    count++;
  }
  for (int li = 0; ok && li < r->nzl; li++)
    for (int k = 0; ok && z3_layer(r, li) && k < 3; k++, count++) {
      int64_t dims[1] = {(int64_t)z3_bytes(r, li) / 4};
      snprintf(key, sizeof key, "zero3/%d/%s", li, z3_what[k]);
      ok = !gv_tf_put(f, key, GV_TF_F32, 1, dims, gv_run_to_host(r, z3_part(r, li, k), z3_bytes(r, li)));
    }
  if (!ok || gv_tf_commit(f, path, count))
    gv_fatalf(__FILE__, __LINE__, "--save", "gvrt", "%s: cannot write the checkpoint", path);
  gv_log0(GV_LOG_INFO, "saved checkpoint %s (step %d)", dir, next_step);
  return 0;
}

/* Does a parameter of this rank's stage belong to layer li? */
static int layer_on_stage(const struct gv_run *r, int li)
{
  for (int i = 0; i < r->nparams; i++)
    if (r->params[i].layer == li)
      return 1;
  return z3_layer(r, li);
}

/* Every ZeRO-3 record of the file must be one of this program's ZeRO-3 layers. */
static void check_foreign_zero3(const struct gv_run *r, const struct gv_tf *tf, const char *path)
{
  for (int i = 0; i < tf->count; i++) {
    const char *name = tf->rec[i].name;
    if (strncmp(name, "zero3/", 6))
      continue;
    char *end;
    long li = strtol(name + 6, &end, 10);
    if (end == name + 6 || *end != '/' || li < 0 || li > 1000000)
      gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: record %s: not a ZeRO-3 layer record", path, name);
    if (z3_layer(r, (int)li))
      continue;
    if (layer_on_stage(r, (int)li))
      gv_fatalf(__FILE__, __LINE__, "--load", "gvrt",
                "%s: record %s: layer %ld was sharded by ZeRO-3 in the saved run, this program does not shard it "
                "(compiled without --default_dp_type zero3 or --zero3_layers for it?)", path, name, li);
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt",
              "%s: record %s: layer %ld is not on this rank's pipeline stage (saved with another pipeline split?)",
              path, name, li);
  }
}

/* Why a ZeRO-3 shard may have another size: the degrees the file was saved with, if known. */
static const char *shard_hint(const struct gv_run *r, const struct gv_tf *tf, char *buf, size_t n)
{
  const int32_t *h = tf->header;
  if (h[HDR_DP] && h[HDR_DP] != r->dp_size)
    snprintf(buf, n, "saved with data-parallel degree %d, this program has %d", h[HDR_DP], r->dp_size);
  else if (h[HDR_DP] && h[HDR_TP] != r->tp)
    snprintf(buf, n, "saved with tensor-parallel degree %d, this program has %d", h[HDR_TP], r->tp);
  else
    snprintf(buf, n, "saved with another data-parallel degree?");
  return buf;
}

/* This program's ZeRO-3 layers: each shard record present with this rank's shard size. */
static void load_zero3(struct gv_run *r, const struct gv_tf *tf, const char *path)
{
  char key[600], hint[160];
  for (int li = 0; li < r->nzl; li++)
    for (int k = 0; z3_layer(r, li) && k < 3; k++) {
      snprintf(key, sizeof key, "zero3/%d/%s", li, z3_what[k]);
      const struct gv_tf_record *rec = gv_tf_find(tf, key);
      size_t n = z3_bytes(r, li) / 4;
      if (!rec)
        gv_fatalf(__FILE__, __LINE__, "--load", "gvrt",
                  "%s: record %s is missing (layer %d was not sharded by ZeRO-3 in the saved run?)", path, key, li);
      if (rec->dtype != GV_TF_F32 || rec->numel != n)
        gv_fatalf(__FILE__, __LINE__, "--load", "gvrt",
                  "%s: record %s has %zu %s, this program's shard has %zu floats (%s)", path, key, rec->numel,
                  rec->dtype == GV_TF_F32 ? "floats" : "non-f32 elements", n, shard_hint(r, tf, hint, sizeof hint));
      gv_dev_memcpy(&r->be, z3_part(r, li, k), rec->data, n * sizeof(float), GV_COPY_H2D);
    }
}

/* The strategy the file was saved with (files of older runs have zeros: not checked). A
 * different split may happen to give records of the same sizes: refused here. */
static void check_strategy(const struct gv_run *r, const struct gv_tf *tf, const char *path)
{
  const int32_t *h = tf->header;
  if (h[HDR_DP] && (h[HDR_PP] != r->pp || h[HDR_TP] != r->tp || h[HDR_DP] != r->dp_size))
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: saved by a run of pp %d x tp %d x dp %d, this one is "
              "pp %lld x tp %d x dp %d", path, h[HDR_PP], h[HDR_TP], h[HDR_DP], (long long)r->pp, r->tp, r->dp_size);
}

int gv_run_load(struct gv_run *r, const char *dir)
{
  char path[4096], key[600], err[512];
  rank_file(r, dir, path, sizeof path);
  struct gv_tf tf;
  if (gv_tf_read(&tf, path, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s", err);
  if (tf.header[0] != GV_TF_MAGIC_CKPT || tf.header[HDR_WORLD] != r->world_size)
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: written by a run of %d ranks, this one has %lld", path,
              tf.header[HDR_WORLD], (long long)r->world_size);
  load_zero3(r, &tf, path);
  check_foreign_zero3(r, &tf, path);
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    if (gv_run_zero3_param(r, p))
      continue; /* loaded with its layer's shard */
    size_t n = gv_run_shard_numel(p), mn = moment_count(r, p);
    float *dst[3] = {r->fdt == GV_DTYPE_F32 ? (float *)(r->bases[GV_MEM_PARAMS] + p->poff) : gv_run_master(r, p),
                     (float *)(r->bases[GV_MEM_OPTIM] + p->moff), (float *)(r->bases[GV_MEM_OPTIM] + p->moff) + mn};
    for (int k = 0; k < (mn ? 3 : 1); k++) {
      size_t want = k ? mn : n;
      snprintf(key, sizeof key, "%s/%s", what[k], p->name);
      const struct gv_tf_record *rec = gv_tf_find(&tf, key);
      if (!rec || rec->dtype != GV_TF_F32 || rec->numel != want)
        gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: record '%s' is missing or not %zu floats (a different "
                  "model or strategy?)", path, key, want);
      gv_dev_memcpy(&r->be, dst[k], rec->data, want * sizeof(float), GV_COPY_H2D);
    }
    if (r->fdt != GV_DTYPE_F32) { /* the bf16 parameter from its fp32 master */
      struct gv_tensor w = gv_run_vals(r, r->bases[GV_MEM_PARAMS] + p->poff, n), m = gv_run_flat(dst[0], n);
      gv_copy(&r->be, &w, &m);
    }
  }
  if (r->zero && r->shard_bytes) {
    const struct gv_tf_record *rec = gv_tf_find(&tf, "zero/adam_m_v");
    if (!rec || rec->dtype != GV_TF_F32 || rec->numel != (size_t)(2 * r->shard_bytes / 4))
      gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: record 'zero/adam_m_v' is missing or of another size", path);
    gv_dev_memcpy(&r->be, zero_moments(r), rec->data, rec->numel * sizeof(float), GV_COPY_H2D);
  }
  check_strategy(r, &tf, path);
  int step = tf.header[HDR_STEP];
  gv_tf_free(&tf);
  gv_log0(GV_LOG_INFO, "loaded checkpoint %s: resuming at step %d", dir, step);
  return step;
}
