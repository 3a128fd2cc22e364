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
 * Under bf16 mixed precision parameters are saved widened to f32 (exactly) and the fp32
 * master weights beside them: "master/NAME" (the moments' count), "zero/master" (flat
 * ZeRO-2's shard) and "zero3/L/master". An fp32 program loading a bf16 checkpoint takes
 * "master/NAME" for its parameters; a bf16 program loading an fp32 one takes "param/NAME"
 * as its masters (without ZeRO: ZeRO shards differ in size between the precisions).
 * Header: [2] the step to resume at, [3..4] the seed, [5] world size, [6..8] pp, tp, dp
 * (0 in files of older runs: not checked), [9] 1 for a bf16 program. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "program/run.h"
#include "program/tensorfile.h"

enum { HDR_STEP = 2, HDR_WORLD = 5, HDR_PP = 6, HDR_TP = 7, HDR_DP = 8, HDR_BF16 = 9 };

static const char *const what[4] = {"param", "adam_m", "adam_v", "master"};
static const char *const z3_what[4] = {"param_shard", "adam_m", "adam_v", "master"};

/* Records per parameter or shard: the parameter, then its state blocks (m, v[, master]). */
static int parts(const struct gv_run *r) { return 1 + gv_run_state_blocks(r); }

/* n elements at dev (of dtype t: the program's float dtype or f32) as an f32 record. */
static int put_part(struct gv_run *r, FILE *f, const char *key, int ndim, const int64_t *dims, const void *dev,
                    size_t n, enum gv_dtype t)
{
  const void *h = t == GV_DTYPE_F32 ? gv_run_to_host(r, dev, 4 * n) : gv_run_to_host_f32(r, dev, n);
  return gv_tf_put(f, key, GV_TF_F32, ndim, dims, h);
}

/* An f32 record of n elements into dev (dtype t; bf16 rounds, exact for saved bf16 values). */
static void get_part(struct gv_run *r, const struct gv_tf_record *rec, void *dev, size_t n, enum gv_dtype t)
{
  if (t == GV_DTYPE_F32)
    gv_dev_memcpy(&r->be, dev, rec->data, 4 * n, GV_COPY_H2D);
  else
    gv_run_from_host_f32(r, dev, rec->data, n);
}

static int z3_layer(const struct gv_run *r, int li) { return li >= 0 && li < r->nzl && r->zl[li].range > 0; }

/* Part k (z3_what) of ZeRO-3 layer li: the parameter shard (program dtype), or a state block. */
static void *z3_part(struct gv_run *r, int li, int k)
{
  const struct gv_run_zlayer *z = &r->zl[li];
  if (k == 0)
    return r->bases[GV_MEM_PARAMS] + z->pshard;
  return (float *)(r->bases[GV_MEM_OPTIM] + z->mshard) + (size_t)(k - 1) * gv_run_z3_numel(r, z);
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
                        (int32_t)(r->args.seed >> 32), (int32_t)r->world_size, (int32_t)r->pp, r->tp, r->dp_size,
                        r->fdt != GV_DTYPE_F32};
  FILE *f = gv_tf_begin(path, header);
  int ok = f != NULL, count = 0;
  for (int i = 0; ok && i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    if (gv_run_zero3_param(r, p))
      continue; /* saved with its layer's shard below (poff is an offset in the layer's range) */
    int64_t dims[2] = {p->shard_rows, p->shard_cols}, mdims[1] = {(int64_t)moment_count(r, p)};
    size_t n = gv_run_shard_numel(p), mn = moment_count(r, p);
    float *state = (float *)(r->bases[GV_MEM_OPTIM] + p->moff);
    for (int k = 0; ok && k < (mn ? parts(r) : 1); k++, count++) { /* without state here: flat ZeRO-2, below */
      snprintf(key, sizeof key, "%s/%s", what[k], p->name);
      int full = !k || mn == n;
      ok = !put_part(r, f, key, full ? 2 : 1, full ? dims : mdims, k ? (void *)(state + (size_t)(k - 1) * mn) :
                     r->bases[GV_MEM_PARAMS] + p->poff, k ? mn : n, k ? GV_DTYPE_F32 : r->fdt);
    }
  }
  if (ok && r->zero && r->shard_bytes) {
    size_t se = gv_run_flat_shard_numel(r);
    int64_t mv[1] = {(int64_t)(2 * se)}, one[1] = {(int64_t)se};
    ok = !put_part(r, f, "zero/adam_m_v", 1, mv, gv_run_flat_state(r), 2 * se, GV_DTYPE_F32);
    count++;
    if (ok && r->fdt != GV_DTYPE_F32) {
      ok = !put_part(r, f, "zero/master", 1, one, gv_run_flat_state(r) + 2 * se, se, GV_DTYPE_F32);
      count++;
    }
  }
  for (int li = 0; ok && li < r->nzl; li++)
    for (int k = 0; ok && z3_layer(r, li) && k < parts(r); k++, count++) {
      size_t zn = gv_run_z3_numel(r, &r->zl[li]);
      int64_t dims[1] = {(int64_t)zn};
      snprintf(key, sizeof key, "zero3/%d/%s", li, z3_what[k]);
      ok = !put_part(r, f, key, 1, dims, z3_part(r, li, k), zn, k ? GV_DTYPE_F32 : r->fdt);
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
  if (h[HDR_BF16] != (r->fdt != GV_DTYPE_F32))
    snprintf(buf, n, "saved by a%s program, this one is %s", h[HDR_BF16] ? " bf16" : "n fp32",
             r->fdt != GV_DTYPE_F32 ? "bf16" : "fp32");
  else if (h[HDR_DP] && h[HDR_DP] != r->dp_size)
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
    for (int k = 0; z3_layer(r, li) && k < parts(r); k++) {
      snprintf(key, sizeof key, "zero3/%d/%s", li, z3_what[k]);
      const struct gv_tf_record *rec = gv_tf_find(tf, key);
      size_t n = gv_run_z3_numel(r, &r->zl[li]);
      if (!rec)
        gv_fatalf(__FILE__, __LINE__, "--load", "gvrt",
                  "%s: record %s is missing (layer %d was not sharded by ZeRO-3 in the saved run?)", path, key, li);
      if (rec->dtype != GV_TF_F32 || rec->numel != n)
        gv_fatalf(__FILE__, __LINE__, "--load", "gvrt",
                  "%s: record %s has %zu %s, this program's shard has %zu floats (%s)", path, key, rec->numel,
                  rec->dtype == GV_TF_F32 ? "floats" : "non-f32 elements", n, shard_hint(r, tf, hint, sizeof hint));
      get_part(r, rec, z3_part(r, li, k), n, k ? GV_DTYPE_F32 : r->fdt);
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

/* One parameter's records (not ZeRO-3): the parameter and its state blocks, with the
 * master weights across precisions (header comment). */
static void load_param(struct gv_run *r, const struct gv_tf *tf, const char *path, const struct gv_run_param *p)
{
  char key[600];
  size_t n = gv_run_shard_numel(p), mn = moment_count(r, p);
  float *state = (float *)(r->bases[GV_MEM_OPTIM] + p->moff);
  for (int k = 0; k < (mn ? parts(r) : 1); k++) {
    size_t want = k ? mn : n;
    const char *kind = what[k];
    /* across precisions (mn == n: no ZeRO), one set of fp32 values: a bf16 run's masters when
     * saved, else an fp32 run's parameters; an fp32 program's parameters, a bf16 one's masters */
    if (((k == 0 && r->fdt == GV_DTYPE_F32) || k == 3) && mn == n) {
      snprintf(key, sizeof key, "master/%s", p->name);
      kind = gv_tf_find(tf, key) ? "master" : "param";
    }
    snprintf(key, sizeof key, "%s/%s", kind, p->name);
    const struct gv_tf_record *rec = gv_tf_find(tf, key);
    if (!rec || rec->dtype != GV_TF_F32 || rec->numel != want)
      gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: record '%s' is missing or not %zu floats (a different "
                "model or strategy?)", path, key, want);
    get_part(r, rec, k ? (void *)(state + (size_t)(k - 1) * mn) : r->bases[GV_MEM_PARAMS] + p->poff, want,
             k ? GV_DTYPE_F32 : r->fdt);
  }
}

int gv_run_load(struct gv_run *r, const char *dir)
{
  char path[4096], err[512];
  rank_file(r, dir, path, sizeof path);
  struct gv_tf tf;
  if (gv_tf_read(&tf, path, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s", err);
  if (tf.header[0] != GV_TF_MAGIC_CKPT || tf.header[HDR_WORLD] != r->world_size)
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: written by a run of %d ranks, this one has %lld", path,
              tf.header[HDR_WORLD], (long long)r->world_size);
  load_zero3(r, &tf, path);
  check_foreign_zero3(r, &tf, path);
  for (int i = 0; i < r->nparams; i++)
    if (!gv_run_zero3_param(r, &r->params[i])) /* (ZeRO-3 ones: loaded with their layer's shard) */
      load_param(r, &tf, path, &r->params[i]);
  if (r->zero && r->shard_bytes) {
    size_t se = gv_run_flat_shard_numel(r);
    for (int k = 0; k < (r->fdt == GV_DTYPE_F32 ? 1 : 2); k++) {
      const char *name = k ? "zero/master" : "zero/adam_m_v";
      const struct gv_tf_record *rec = gv_tf_find(&tf, name);
      size_t want = k ? se : 2 * se;
      if (!rec || rec->dtype != GV_TF_F32 || rec->numel != want)
        gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: record '%s' is missing or not %zu floats%s", path, name,
                  want, tf.header[HDR_BF16] != (r->fdt != GV_DTYPE_F32) ? " (saved by a program of the other "
                  "precision: ZeRO shards differ in size)" : "");
      get_part(r, rec, gv_run_flat_state(r) + (size_t)(2 * k) * se, want, GV_DTYPE_F32);
    }
  }
  check_strategy(r, &tf, path);
  int step = tf.header[HDR_STEP];
  gv_tf_free(&tf);
  gv_log0(GV_LOG_INFO, "loaded checkpoint %s: resuming at step %d", dir, step);
  return step;
}
