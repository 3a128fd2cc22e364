/* checkpoint.c - --save / --load: DIR/latest names the committed step and its folder,
 * DIR/step<N>/rank<r>.gvck holds each rank's parameter shards and AdamW moments by global
 * name plus the step. A save is committed only when every rank's file is written: each
 * rank writes a temporary file, the ranks agree, rename, agree, and rank 0 writes
 * DIR/latest last (gv_run_save); a crash or a failure on any rank leaves the previous
 * checkpoint whole. Every record carries a CRC-32 (tensorfile.h). Loading checks that all
 * ranks hold the step the index names, the seed and global batch of the run (unless
 * --override_checkpoint_args), the world size, the strategy and every record's shape, and
 * resumes at the saved step: the same losses as an uninterrupted run. Folders without
 * DIR/latest (rank files directly in DIR, older runs) still load.
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
 * (0 in files of older runs: not checked), [9] 1 for a bf16 program, [10] the global batch
 * (0 in older files: not checked). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "program/run.h"
#include "program/tensorfile.h"

enum { HDR_STEP = 2, HDR_SEED = 3, HDR_WORLD = 5, HDR_PP = 6, HDR_TP = 7, HDR_DP = 8, HDR_BF16 = 9, HDR_BATCH = 10 };

static const char *const what[4] = {"param", "adam_m", "adam_v", "master"};
static const char *const z3_what[4] = {"param_shard", "adam_m", "adam_v", "master"};

/* Records per parameter or shard: the parameter, then its state blocks (m, v[, master]). */
static int parts(const struct gv_run *r) { return 1 + gv_run_state_blocks(r); }

/* n elements at dev (of dtype t: the program's float dtype or f32) as an f32 record. */
static int put_part(struct gv_run *r, struct gv_tf_writer *f, const char *key, int ndim, const int64_t *dims, const void *dev,
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

/* Elements of p's AdamW m (and of v) on this rank: all of it, or under ZeRO-2 per parameter
 * (per-layer tp, or beside ZeRO-3 blocks: shard_bytes 0) this rank's chunk of ceil(n / dp),
 * saved as a 1-D record. Flat ZeRO-2 saves none per parameter (see "zero/adam_m_v"). */
static size_t moment_count(const struct gv_run *r, const struct gv_run_param *p)
{
  if (gv_run_zero2_param(r, p))
    return gv_run_zero2_chunk(p);
  return r->zero ? 0 : gv_run_shard_numel(p);
}

/* ---- the folder: DIR/latest names the committed step and its folder, DIR/<folder>/rank<r>.gvck ---- */

/* DIR/latest: "gvc-checkpoint 1", "step N", "world W", "folder NAME" (NAME: step<N>, or
 * step<N>.b when a save replaces a checkpoint of the same step: the committed one is never
 * written over). */
struct ckpt_index { int32_t step, world, alt; };

static void step_folder(const char *dir, int step, int alt, char *out, size_t n)
{
  snprintf(out, n, "%s/step%08d%s", dir, step, alt ? ".b" : "");
}

static void rank_file(const struct gv_run *r, const char *folder, char *path, size_t n)
{
  snprintf(path, n, "%s/rank%05d.gvck", folder, gv_comm_rank(r->world));
}

/* DIR/latest, or step -1 when there is none. */
static struct ckpt_index read_latest(const char *dir)
{
  char path[4096], folder[64], want[64];
  struct ckpt_index x = {-1, 0, 0};
  snprintf(path, sizeof path, "%s/latest", dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return x;
  int n = fscanf(f, "gvc-checkpoint 1 step %d world %d folder %63s", &x.step, &x.world, folder);
  fclose(f);
  snprintf(want, sizeof want, "step%08d", x.step);
  x.alt = n == 3 && !strncmp(folder, want, strlen(want)) && !strcmp(folder + strlen(want), ".b");
  if (n != 3 || x.step < 0 || x.world < 1 || (strcmp(folder, want) && !x.alt))
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: not a checkpoint index (expected the lines "
              "'gvc-checkpoint 1', 'step N', 'world W', 'folder stepNNNNNNNN[.b]')", path);
  return x;
}

/* DIR/latest, written to a temporary file and renamed: the commit point of a save. */
static int write_latest(const char *dir, struct ckpt_index x)
{
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/latest", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  int ok = fprintf(f, "gvc-checkpoint 1\nstep %d\nworld %d\nfolder step%08d%s\n", x.step, x.world, x.step,
                   x.alt ? ".b" : "") > 0;
  ok = fclose(f) == 0 && ok;
  if (ok && rename(tmp, path) == 0)
    return 0;
  int e = errno;
  unlink(tmp);
  errno = e;
  return -1;
}

/* mkdir -p (the last component included); 0 or -1 with errno. */
static int make_dirs(const char *dir)
{
  char p[4096];
  snprintf(p, sizeof p, "%s", dir);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      if (mkdir(p, 0755) && errno != EEXIST)
        return -1;
      *s = '/';
    }
  return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

/* The highest world rank with code != 0 (-1: none), and that rank's code, on every rank. */
static int failing_rank(struct gv_run *r, int code, int *code_out)
{
  int32_t who = code ? gv_comm_rank(r->world) : -1;
  gv_comm_all_reduce_host(r->world, &who, 1, GV_DTYPE_I32, GV_REDUCE_MAX);
  int32_t c = code;
  if (who >= 0)
    gv_comm_broadcast_host(r->world, &c, 1, GV_DTYPE_I32, who);
  *code_out = c;
  return who;
}

void gv_run_check_save_dir(struct gv_run *r, const char *dir)
{
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/.write-test.rank%d", dir, gv_comm_rank(r->world));
  FILE *f = NULL;
  int e = 0;
  if (make_dirs(dir) || !(f = fopen(probe, "w")) || fputs("gvc\n", f) < 0 || fclose(f) || remove(probe))
    e = errno ? errno : EIO;
  int code, who = failing_rank(r, e, &code);
  if (who >= 0)
    gv_fatalf(__FILE__, __LINE__, "--save", "gvrt", "%s: the checkpoint folder is not writable by rank %d (%s)", dir,
              who, strerror(code));
}

/* This rank's records into PATH.tmp, closed; 0 or an errno value (the file then removed). */
static int write_rank_file(struct gv_run *r, const char *path, int next_step)
{
  char key[600];
  int32_t header[64] = {GV_TF_MAGIC_CKPT, 1, next_step, (int32_t)(r->args.seed & 0xffffffffu),
                        (int32_t)(r->args.seed >> 32), (int32_t)r->world_size, (int32_t)r->pp, r->tp, r->dp_size,
                        r->fdt != GV_DTYPE_F32, r->args.global_batch};
  struct gv_tf_writer *f = gv_tf_begin(path, header);
  if (!f)
    return errno ? errno : EIO;
  int ok = 1;
  for (int i = 0; ok && i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    if (gv_run_zero3_param(r, p))
      continue; /* saved with its layer's shard below (poff is an offset in the layer's range) */
    int64_t dims[2] = {p->shard_rows, p->shard_cols}, mdims[1] = {(int64_t)moment_count(r, p)};
    size_t n = gv_run_shard_numel(p), mn = moment_count(r, p);
    float *state = (float *)(r->bases[GV_MEM_OPTIM] + p->moff);
    for (int k = 0; ok && k < (mn ? parts(r) : 1); k++) { /* without state here: flat ZeRO-2, below */
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
    if (ok && r->fdt != GV_DTYPE_F32)
      ok = !put_part(r, f, "zero/master", 1, one, gv_run_flat_state(r) + 2 * se, se, GV_DTYPE_F32);
  }
  for (int li = 0; ok && li < r->nzl; li++)
    for (int k = 0; ok && z3_layer(r, li) && k < parts(r); k++) {
      size_t zn = gv_run_z3_numel(r, &r->zl[li]);
      int64_t dims[1] = {(int64_t)zn};
      snprintf(key, sizeof key, "zero3/%d/%s", li, z3_what[k]);
      ok = !put_part(r, f, key, 1, dims, z3_part(r, li, k), zn, k ? GV_DTYPE_F32 : r->fdt);
    }
  if (!ok) {
    int e = errno ? errno : EIO;
    gv_tf_abort(f);
    return e;
  }
  return gv_tf_finish(f) ? (errno ? errno : EIO) : 0;
}

/* A save in three steps, each agreed on by every rank before the next: every rank writes
 * DIR/step<N>/rank<r>.gvck.tmp; then renames it into place; then rank 0 writes DIR/latest
 * (the commit) and the previous checkpoint's folder is removed. Until DIR/latest changes, a
 * load takes the previous checkpoint, whole; a failure anywhere removes this step's files
 * and stops the run with the failing rank's reason, the previous checkpoint kept. */
int gv_run_save(struct gv_run *r, const char *dir, int next_step)
{
  char folder[4096], path[4200], tmp[4300];
  int me = gv_comm_rank(r->world), code;
  struct ckpt_index prev = {-1, 0, 0};
  if (me == 0)
    prev = read_latest(dir);
  gv_comm_broadcast_host(r->world, &prev, 3, GV_DTYPE_I32, 0);
  struct ckpt_index next = {next_step, (int32_t)r->world_size, prev.step == next_step && !prev.alt};
  step_folder(dir, next.step, next.alt, folder, sizeof folder);
  rank_file(r, folder, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int e = make_dirs(folder) ? errno : write_rank_file(r, path, next_step);
  int who = failing_rank(r, e, &code);
  if (who < 0) { /* every rank file is written: rename them into place */
    e = gv_tf_rename(path) ? errno : 0;
    who = failing_rank(r, e, &code);
  }
  if (who < 0) { /* the commit */
    e = me == 0 && write_latest(dir, next) ? errno : 0;
    who = failing_rank(r, e, &code);
  }
  if (who >= 0) { /* unlink, not remove: a folder in the way of a file is not ours */
    unlink(tmp);
    unlink(path);
    gv_comm_barrier(r->world);
    if (me == 0)
      rmdir(folder);
    gv_fatalf(__FILE__, __LINE__, "--save", "gvrt", "%s: rank %d could not write its part of the checkpoint of step "
              "%d (%s); nothing of it is kept and %s/latest still names the previous checkpoint, if any", folder,
              who, next_step, strerror(code), dir);
  }
  if (prev.step >= 0) { /* the previous checkpoint, now replaced */
    step_folder(dir, prev.step, prev.alt, folder, sizeof folder);
    rank_file(r, folder, path, sizeof path);
    unlink(path);
    gv_comm_barrier(r->world);
    if (me == 0)
      rmdir(folder);
  }
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

/* The folder of the checkpoint in dir: the one DIR/latest names, or dir itself for
 * checkpoints written before the index existed (rank files directly in dir). */
static struct ckpt_index find_checkpoint(const struct gv_run *r, const char *dir, char *folder, size_t n)
{
  struct ckpt_index x = read_latest(dir);
  if (x.step < 0) {
    char path[4200];
    rank_file(r, dir, path, sizeof path);
    if (access(path, F_OK))
      gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: no checkpoint here (no %s/latest naming a saved step)", dir,
                dir);
    snprintf(folder, n, "%s", dir);
    return x;
  }
  if (x.world != r->world_size)
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s/latest: written by a run of %d ranks, this one has %lld", dir,
              x.world, (long long)r->world_size);
  step_folder(dir, x.step, x.alt, folder, n);
  return x;
}

/* Every rank's file must hold the same step (and the one DIR/latest names): a checkpoint
 * whose ranks were saved at different steps is refused on every rank, never half-resumed. */
static void agree_on_step(struct gv_run *r, const char *folder, int step, int indexed)
{
  int world = (int)r->world_size, me = gv_comm_rank(r->world), differ = 0;
  int32_t *steps = calloc((size_t)world, sizeof *steps);
  GV_CHECK(steps != NULL, "out of host memory");
  steps[me] = step;
  gv_comm_all_reduce_host(r->world, steps, (size_t)world, GV_DTYPE_I32, GV_REDUCE_SUM);
  char list[512] = "";
  for (int k = 0; k < world; k++) {
    differ |= steps[k] != steps[0] || (indexed >= 0 && steps[k] != indexed);
    size_t len = strlen(list);
    if (k < 8)
      snprintf(list + len, sizeof list - len, "%srank %d: step %d", k ? ", " : "", k, steps[k]);
  }
  free(steps);
  if (world > 8)
    snprintf(list + strlen(list), sizeof list - strlen(list), ", ...");
  if (indexed >= 0)
    snprintf(list + strlen(list), sizeof list - strlen(list), "; the index names step %d", indexed);
  if (differ)
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: the rank files hold different steps (%s); a save was "
              "interrupted or files were mixed: not resuming from it", folder, list);
}

/* The run's --seed and global batch must be the checkpoint's (data order, dropout and the
 * loss scale follow them), unless --override_checkpoint_args or nothing is trained (--eval_only,
 * or the checkpoint already at --iters: sampling with another seed). */
static void check_run_args(const struct gv_run *r, const struct gv_tf *tf, const char *path)
{
  const int32_t *h = tf->header;
  uint64_t seed = (uint64_t)(uint32_t)h[HDR_SEED] | (uint64_t)(uint32_t)h[HDR_SEED + 1] << 32;
  char why[256] = "";
  if (seed != r->args.seed)
    snprintf(why, sizeof why, "--seed %llu, this run has --seed %llu", (unsigned long long)seed,
             (unsigned long long)r->args.seed);
  else if (h[HDR_BATCH] && h[HDR_BATCH] != r->args.global_batch)
    snprintf(why, sizeof why, "--global_train_batch_size %d, this run has %d", h[HDR_BATCH], r->args.global_batch);
  if (!why[0] || r->args.eval_only || h[HDR_STEP] >= r->args.iters) /* no training: neither matters */
    return;
  if (r->args.override_checkpoint_args) {
    gv_log0(GV_LOG_WARN, "%s: saved with %s: resuming anyway (--override_checkpoint_args)", path, why);
    return;
  }
  gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: saved by a run with %s (the data order and dropout follow "
            "them); resume with the same values, or give --override_checkpoint_args to resume anyway", path, why);
}

int gv_run_load(struct gv_run *r, const char *dir)
{
  char folder[4096], path[4200], err[512];
  struct ckpt_index x = find_checkpoint(r, dir, folder, sizeof folder);
  rank_file(r, folder, path, sizeof path);
  struct gv_tf tf;
  if (gv_tf_read(&tf, path, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s", err);
  if (tf.header[0] != GV_TF_MAGIC_CKPT || tf.header[HDR_WORLD] != r->world_size)
    gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", "%s: written by a run of %d ranks, this one has %lld", path,
              tf.header[HDR_WORLD], (long long)r->world_size);
  agree_on_step(r, folder, tf.header[HDR_STEP], x.step);
  check_run_args(r, &tf, path);
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
  gv_log0(GV_LOG_INFO, "loaded checkpoint %s: resuming at step %d", folder, step);
  return step;
}
