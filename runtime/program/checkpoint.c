/* checkpoint.c - --save / --load: a checkpoint is a folder of global tensors that any
 * strategy can load. DIR/iter_NNNNNNN/ holds model.safetensors (every parameter by its
 * global name and shape, in the program's dtype), optimizer.safetensors (NAME/exp_avg,
 * NAME/exp_avg_sq and, under bf16, NAME/master: AdamW's m, v and the fp32 master weights)
 * and index.json (the step, the data position, the seed, the run's arguments and
 * strategy, and every tensor's CRC-32); DIR/latest names the committed folder.
 *
 * A save: the ranks gather the parameter list (each knows its stage's), rank 0 creates
 * both files (.tmp) with their headers, then every rank writes the elements it owns
 * uniquely (gv_run_unique_owner: its ZeRO shard or chunk, its tp block, one replica)
 * with pwrite into the shared files, each tensor's CRC-32 is computed by one rank from
 * the file, and rank 0 renames the files, writes index.json and then DIR/latest (each a
 * temporary file renamed): every step is agreed on by all ranks, and a failure anywhere
 * stops the run with the previous checkpoint whole. --keep_last K removes older folders.
 * A load: each rank reads only the slices it holds (its tp block, its ZeRO part) of each
 * tensor (gvrt_safetensors.h), under any world size, pipeline split, tp degrees, ZeRO
 * level or precision. Every tensor's CRC-32 is checked, each by one rank, before the run
 * goes on: combined from the CRC-32s of the bytes the ranks read where their contiguous
 * slices tile the tensor (each byte read once), else (tp column blocks, tensors this
 * program does not read) by reading the tensor again.
 * The arenas may be device memory: values are staged through the host scratch. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gvrt_safetensors.h"
#include "program/run.h"

#define FORMAT_VERSION 2
static const char *const files[2] = {"model.safetensors", "optimizer.safetensors"};
static const char *const state_suffix[3] = {"exp_avg", "exp_avg_sq", "master"}; /* enum gv_prog_state order */

#define FATAL(...) gv_fatalf(__FILE__, __LINE__, "--load", "gvrt", __VA_ARGS__)

/* ---- the tensors of a checkpoint: every parameter of every stage ---- */

struct ck_tensors {
  int n;                       /* parameters */
  int blocks;                  /* optimizer tensors per parameter: 2 (m, v) or 3 (and master) */
  struct gv_st_tensor *model;  /* n, sorted by name */
  struct gv_st_tensor *optim;  /* n * blocks: parameter i's block k at i * blocks + k */
  char *text;                  /* the names */
};

static int by_name(const void *a, const void *b)
{
  return strcmp(((const struct gv_st_tensor *)a)->name, ((const struct gv_st_tensor *)b)->name);
}

/* Each rank's "NAME ROWS COLS\n" lines for its stage's parameters, gathered on every rank
 * (an all-reduce of zero-padded slots); NUL-separated per rank, returned malloc'd. */
static char *gather_params(struct gv_run *r, size_t *total)
{
  size_t len = 1;
  for (int i = 0; i < r->nparams; i++)
    len += strlen(r->params[i].name) + 48;
  char *mine = malloc(len);
  GV_CHECK(mine != NULL, "out of host memory");
  size_t at = 0;
  for (int i = 0; i < r->nparams; i++)
    at += (size_t)snprintf(mine + at, len - at, "%s %lld %lld\n", r->params[i].name, (long long)r->params[i].saved_rows,
                           (long long)r->params[i].cols);
  int32_t slot = (int32_t)at + 1, world = gv_comm_size(r->world), me = gv_comm_rank(r->world);
  gv_comm_all_reduce_host(r->world, &slot, 1, GV_DTYPE_I32, GV_REDUCE_MAX);
  int32_t *all = calloc((size_t)slot * (size_t)world, sizeof *all);
  GV_CHECK(all != NULL, "out of host memory");
  for (size_t k = 0; k < at; k++)
    all[(size_t)me * (size_t)slot + k] = (unsigned char)mine[k];
  gv_comm_all_reduce_host(r->world, all, (size_t)slot * (size_t)world, GV_DTYPE_I32, GV_REDUCE_SUM);
  char *text = malloc((size_t)slot * (size_t)world + 1);
  GV_CHECK(text != NULL, "out of host memory");
  for (size_t k = 0; k < (size_t)slot * (size_t)world; k++)
    text[k] = all[k] ? (char)all[k] : '\n';
  text[(size_t)slot * (size_t)world] = '\0';
  *total = (size_t)slot * (size_t)world;
  free(all);
  free(mine);
  return text;
}

static void ck_tensors_build(struct gv_run *r, struct ck_tensors *c)
{
  size_t total;
  memset(c, 0, sizeof *c);
  c->text = gather_params(r, &total);
  c->blocks = gv_run_state_blocks(r);
  c->model = calloc(total / 4 + 1, sizeof *c->model);
  GV_CHECK(c->model != NULL, "out of host memory");
  for (char *line = strtok(c->text, "\n"); line; line = strtok(NULL, "\n")) {
    char *sp = strchr(line, ' ');
    long long rows = 0, cols = 0;
    if (!sp || sscanf(sp, " %lld %lld", &rows, &cols) != 2)
      continue;
    *sp = '\0';
    struct gv_st_tensor *t = &c->model[c->n++];
    *t = (struct gv_st_tensor){.name = line, .dtype = r->fdt == GV_DTYPE_F32 ? GV_ST_F32 : GV_ST_BF16};
    t->ndim = rows == 1 ? 1 : 2; /* biases and norms are 1-D */
    t->shape[0] = rows == 1 ? cols : rows;
    t->shape[1] = cols;
  }
  qsort(c->model, (size_t)c->n, sizeof *c->model, by_name);
  int n = 0; /* tied weights: declared on several stages, one tensor */
  for (int i = 0; i < c->n; i++)
    if (!n || strcmp(c->model[n - 1].name, c->model[i].name))
      c->model[n++] = c->model[i];
  c->n = n;
  c->optim = calloc((size_t)(n * c->blocks + 1), sizeof *c->optim);
  GV_CHECK(c->optim != NULL, "out of host memory");
  for (int i = 0; i < n; i++)
    for (int k = 0; k < c->blocks; k++) {
      struct gv_st_tensor *t = &c->optim[i * c->blocks + k];
      char *name = malloc(strlen(c->model[i].name) + 16);
      GV_CHECK(name != NULL, "out of host memory");
      sprintf(name, "%s/%s", c->model[i].name, state_suffix[k]);
      *t = c->model[i];
      t->name = name;
      t->dtype = GV_ST_F32;
    }
}

static void ck_tensors_free(struct ck_tensors *c)
{
  for (int i = 0; i < c->n * c->blocks; i++)
    free((char *)(uintptr_t)c->optim[i].name);
  free(c->optim);
  free(c->model);
  free(c->text);
}

static int ck_find(const struct ck_tensors *c, const char *name)
{
  struct gv_st_tensor key = {.name = name};
  const struct gv_st_tensor *t = bsearch(&key, c->model, (size_t)c->n, sizeof key, by_name);
  return t ? (int)(t - c->model) : -1;
}

/* The tensors of both files in one numbering (model first); which rank checks tensor i's
 * CRC-32: the largest first, each to the least loaded rank (the same on every rank). */
static const struct gv_st_tensor *ck_tensor(const struct ck_tensors *c, int i, int *file)
{
  *file = i >= c->n;
  return i < c->n ? &c->model[i] : &c->optim[i - c->n];
}

/* Items of the given sizes spread over the ranks: the largest first, each to the least
 * loaded rank (the same on every rank); malloc'd. */
static int *spread_owners(const double *size, int total, int world)
{
  int *owner = calloc((size_t)total + 1, sizeof *owner), *order = calloc((size_t)total + 1, sizeof *order);
  double *load = calloc((size_t)world, sizeof *load);
  GV_CHECK(owner && order && load, "out of host memory");
  for (int i = 0; i < total; i++)
    order[i] = i;
  for (int i = 1; i < total; i++) /* insertion sort by size, descending (stable: ties keep name order) */
    for (int j = i; j > 0 && size[order[j - 1]] < size[order[j]]; j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (int i = 0; i < total; i++) {
    int best = 0;
    for (int w = 1; w < world; w++)
      best = load[w] < load[best] ? w : best;
    owner[order[i]] = best;
    load[best] += size[order[i]] + 1;
  }
  free(order);
  free(load);
  return owner;
}

static int *crc_owners(const struct ck_tensors *c, int world)
{
  int total = c->n * (1 + c->blocks), f;
  double *size = calloc((size_t)total + 1, sizeof *size);
  GV_CHECK(size != NULL, "out of host memory");
  for (int i = 0; i < total; i++) {
    const struct gv_st_tensor *t = ck_tensor(c, i, &f);
    size[i] = (double)(t->end - t->begin);
  }
  int *owner = spread_owners(size, total, world);
  free(size);
  return owner;
}

/* ---- folders: DIR/latest names the committed DIR/iter_NNNNNNN ---- */

struct ckpt_index { int32_t step, alt; };

static void iter_folder(const char *dir, int step, int alt, char *out, size_t n)
{
  snprintf(out, n, "%s/iter_%07d%s", dir, step, alt ? ".b" : "");
}

/* DIR/latest ("gvc-checkpoint 2", "step N", "folder iter_NNNNNNN[.b]"), or step -1 when
 * there is none. A checkpoint of the older per-rank format is refused with the reason. */
static struct ckpt_index read_latest(const char *dir, const char *opt)
{
  char path[4096], folder[64], want[64], head[64] = "";
  struct ckpt_index x = {-1, 0};
  snprintf(path, sizeof path, "%s/latest", dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return x;
  int version = 0, n = fscanf(f, "%63s %d step %d folder %63s", head, &version, &x.step, folder);
  fclose(f);
  if (n >= 2 && !strcmp(head, "gvc-checkpoint") && version == 1)
    gv_fatalf(__FILE__, __LINE__, opt, "gvrt", "%s: a checkpoint of the older format 1 (one rank<r>.gvck file per "
              "rank, loadable only by the strategy that wrote it), which this version does not read; it reads "
              "format 2 (global tensors in safetensors files)", path);
  snprintf(want, sizeof want, "iter_%07d", x.step);
  x.alt = n == 4 && !strncmp(folder, want, strlen(want)) && !strcmp(folder + strlen(want), ".b");
  if (n != 4 || strcmp(head, "gvc-checkpoint") || version != FORMAT_VERSION || x.step < 0 ||
      (strcmp(folder, want) && !x.alt))
    gv_fatalf(__FILE__, __LINE__, opt, "gvrt", "%s: not a checkpoint index (expected the lines 'gvc-checkpoint 2', "
              "'step N', 'folder iter_NNNNNNN[.b]')", path);
  return x;
}

/* TEXT into PATH through PATH.tmp and a rename; 0 or -1 with errno. */
static int write_atomic(const char *path, const char *text)
{
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  int ok = fputs(text, f) >= 0;
  ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
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
  if (gv_comm_rank(r->world) == 0) /* an index of another format: refused now, not at the first save */
    read_latest(dir, "--save");
  gv_comm_barrier(r->world);
}

/* The files of a checkpoint folder, and the folder (rank 0 only; what is not ours stays). */
static void remove_folder(const char *folder)
{
  char path[4300];
  const char *names[] = {files[0], files[1], "index.json"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", folder, names[i]);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s.tmp", folder, names[i]);
    unlink(path);
  }
  rmdir(folder);
}

/* --keep_last K: the committed folder and the K - 1 newest before it stay. */
static void prune(const char *dir, int keep, struct ckpt_index now)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int *steps = NULL, n = 0, cap = 0;
  while (d && (e = readdir(d))) {
    int s, len = 0;
    if (sscanf(e->d_name, "iter_%7d%n", &s, &len) == 1 && len == 12 && (!e->d_name[12] || !strcmp(e->d_name + 12, ".b"))) {
      if (n == cap && !(steps = realloc(steps, sizeof *steps * (size_t)(cap = 2 * cap + 8))))
        break;
      steps[n++] = s * 2 + (e->d_name[12] != 0);
    }
  }
  if (d)
    closedir(d);
  for (int i = 0; steps && i < n; i++) {
    int newer = 0;
    for (int j = 0; j < n; j++)
      newer += steps[j] > steps[i];
    if (newer >= keep && steps[i] != now.step * 2 + now.alt) {
      char folder[4096];
      iter_folder(dir, steps[i] / 2, steps[i] % 2, folder, sizeof folder);
      remove_folder(folder);
    }
  }
  free(steps);
}

/* ---- save ---- */

/* The CRC-32s of the parts written or read (so that a save reads nothing back, and a load
 * reads each byte once, where they can): per tensor and rank, the byte offset, length and
 * CRC-32 of the part that rank wrote or read, where it is one contiguous range of the tensor
 * (whole rows of it); zero length where it moved none or only a strided block. A save numbers
 * the tensors as ck_tensor does, a load as the files do (file_id). */
struct part_crcs { double *at; int world, me; };

/* Elements [first, first + n) of p's block, of es bytes each in the file, have CRC-32 crc;
 * of two parts of one tensor on one rank the longer is kept. */
static void note_crc(struct part_crcs *pc, int i, const struct gv_run_param *p, size_t first, size_t n, size_t es,
                     uint32_t crc)
{
  double *a = pc->at + ((size_t)i * (size_t)pc->world + (size_t)pc->me) * 3;
  if ((double)(n * es) <= a[1])
    return;
  a[0] = (double)(((size_t)p->row0 * (size_t)p->cols + first) * es);
  a[1] = (double)(n * es);
  a[2] = (double)crc;
}

static int contiguous(const struct part_crcs *pc, const struct gv_run_param *p)
{
  return pc && p->shard_cols == p->cols; /* else a column block: strided in the file */
}

static void note_part(struct part_crcs *pc, int i, const struct gv_run_param *p, size_t first, size_t n, size_t es,
                      const void *h)
{
  if (contiguous(pc, p))
    note_crc(pc, i, p, first, n, es, gv_st_crc32_update(0, h, n * es));
}

/* Tensor i's CRC-32 from its parts when they tile it (every rank's parts all-reduced); 0 if not. */
static int crc_from_parts(const struct part_crcs *pc, int i, int64_t bytes, uint32_t *crc)
{
  const double *a = pc->at + (size_t)i * (size_t)pc->world * 3;
  double at = 0;
  *crc = 0;
  for (int done = 0; done < pc->world;) { /* the part starting where the last ended (parts do not overlap) */
    int k = 0;
    while (k < pc->world && !(a[3 * k + 1] > 0 && a[3 * k] == at))
      k++;
    if (k == pc->world)
      break;
    *crc = gv_st_crc32_combine(*crc, (uint32_t)a[3 * k + 2], (int64_t)a[3 * k + 1]);
    at += a[3 * k + 1];
    done++;
  }
  return bytes > 0 && at == (double)bytes;
}

/* This rank's uniquely owned elements of every parameter into the two files (with the
 * CRC-32s of its contiguous parts in pc); 0 or errno. */
static int write_parts(struct gv_run *r, const struct ck_tensors *c, gv_st_writer *w[2], struct part_crcs *pc,
                       char *err, size_t errn)
{
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    size_t first, n;
    int ti = ck_find(c, p->name);
    int64_t rows;
    if (!gv_run_unique_owner(r, p) || !gv_run_owned(r, p, &first, &n) || !(n = gv_run_saved_part(p, first, n, &rows)))
      continue; /* (vocabulary padding is not saved) */
    const void *h = gv_run_to_host(r, gv_run_param_at(r, p, first), n * gv_run_fsz(r));
    if (gv_st_write_part(w[0], ti, p->row0, rows, p->col0, p->shard_cols, (int64_t)first, (int64_t)n,
                         c->model[ti].dtype, h, err, errn))
      return errno ? errno : EIO;
    note_part(pc, ti, p, first, n, gv_run_fsz(r), h); /* h: the file's dtype (ck_tensors_build) */
    for (int k = 0; k < c->blocks; k++) {
      h = gv_run_to_host(r, gv_run_owned_state(r, p, first, (enum gv_prog_state)k), sizeof(float) * n);
      if (gv_st_write_part(w[1], ti * c->blocks + k, p->row0, rows, p->col0, p->shard_cols, (int64_t)first,
                           (int64_t)n, GV_ST_F32, h, err, errn))
        return errno ? errno : EIO;
      note_part(pc, c->n + ti * c->blocks + k, p, first, n, sizeof(float), h);
    }
  }
  return 0;
}

/* Step 1 (rank 0: create the files with their headers) or 2 (every rank: its parts). */
static int write_files(struct gv_run *r, const struct ck_tensors *c, const char *folder, int make, struct part_crcs *pc,
                       char *err, size_t n)
{
  char path[2][4300];
  gv_st_writer *w[2] = {NULL, NULL};
  const char *meta[4] = {"format", "gvc-checkpoint 2", "step", ""};
  for (int f = 0; f < 2; f++) {
    snprintf(path[f], sizeof path[f], "%s/%s.tmp", folder, files[f]);
    w[f] = gv_st_create(path[f], f ? c->optim : c->model, f ? c->n * c->blocks : c->n, meta, 1, make, err, n);
    if (!w[f]) {
      gv_st_abort(w[0]);
      return errno ? errno : EIO;
    }
  }
  int e = make ? 0 : write_parts(r, c, w, pc, err, n);
  for (int f = 0; f < 2; f++)
    if (e)
      gv_st_abort(w[f]);
    else if (gv_st_finish(w[f], err, n))
      e = errno ? errno : EIO;
  return e;
}

/* Step 3: the CRC-32s of the tensors this rank checks (crc_owners): from the written parts
 * where they tile the tensor (pc, all-reduced), else from the files; the all-reduce gives
 * every rank all of them (as doubles: exact). */
static int compute_crcs(struct gv_run *r, const struct ck_tensors *c, const char *folder, const char *suffix,
                        const struct part_crcs *pc, double *crcs, char *err, size_t n)
{
  int total = c->n * (1 + c->blocks), me = gv_comm_rank(r->world), *owner = crc_owners(c, gv_comm_size(r->world)), rc = 0;
  gv_st *st[2] = {NULL, NULL};
  for (int i = 0; i < total && !rc; i++) {
    int f;
    const struct gv_st_tensor *want = ck_tensor(c, i, &f), *t;
    uint32_t from_parts;
    if (owner[i] != me)
      continue;
    if (pc && crc_from_parts(pc, i, gv_st_numel(want) * (int64_t)gv_st_dtype_size(want->dtype), &from_parts)) {
      crcs[i] = from_parts;
      continue;
    }
    char path[4300];
    snprintf(path, sizeof path, "%s/%s%s", folder, files[f], suffix);
    uint32_t crc = 0;
    if (!st[f] && gv_st_open(&st[f], path, err, n))
      rc = -1;
    else if (!(t = gv_st_find(st[f], want->name))) {
      snprintf(err, n, "%s: tensor '%s' is missing", path, want->name);
      rc = -1;
    }
    else if (!(rc = gv_st_crc32(st[f], t, &crc, err, n)))
      crcs[i] = crc;
  }
  gv_st_close(st[0]);
  gv_st_close(st[1]);
  free(owner);
  return rc ? (errno ? errno : EIO) : 0;
}

/* index.json: what the checkpoint holds and how it was made. */
static char *index_json(const struct gv_run *r, const struct ck_tensors *c, int step, const double *crcs)
{
  char seed[32];
  cJSON *root = cJSON_CreateObject(), *s, *a, *t[2];
  cJSON_AddStringToObject(root, "format", "gvc-checkpoint");
  cJSON_AddNumberToObject(root, "version", FORMAT_VERSION);
  cJSON_AddNumberToObject(root, "step", step);
  cJSON_AddNumberToObject(root, "consumed_samples", (double)step * r->args.global_batch);
  cJSON_AddNumberToObject(root, "global_batch", r->args.global_batch);
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->args.seed);
  cJSON_AddStringToObject(root, "seed", seed);
  cJSON_AddStringToObject(root, "rng", "counter-based (Philox4x32-10 dropout, GPT sample order): the seed and the "
                          "step are its whole state");
  cJSON_AddStringToObject(root, "model", r->model ? r->model : "");
  cJSON_AddStringToObject(root, "precision", r->fdt == GV_DTYPE_F32 ? "fp32" : "bf16");
  s = cJSON_AddObjectToObject(root, "strategy");
  cJSON_AddNumberToObject(s, "world", (double)r->world_size);
  cJSON_AddNumberToObject(s, "pp", (double)r->pp);
  cJSON_AddNumberToObject(s, "tp", r->tp);
  cJSON_AddNumberToObject(s, "dp", r->data_size);
  if (r->cp > 1)
    cJSON_AddNumberToObject(s, "cp", r->cp);
  if (r->ep > 1)
    cJSON_AddNumberToObject(s, "ep", r->ep);
  cJSON_AddNumberToObject(s, "tp_of_ep", r->tp_of_ep > 1 ? r->tp_of_ep : 1);
  cJSON_AddNumberToObject(s, "zero", r->nzl ? 3 : r->zero);
  a = cJSON_AddArrayToObject(root, "args");
  for (int i = 0; i < r->argc; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(r->argv[i]));
  cJSON *tens = cJSON_AddObjectToObject(root, "crc32");
  for (int f = 0; f < 2; f++)
    t[f] = cJSON_AddObjectToObject(tens, files[f]);
  for (int i = 0; i < c->n * (1 + c->blocks); i++) {
    int f;
    const struct gv_st_tensor *x = ck_tensor(c, i, &f);
    cJSON_AddNumberToObject(t[f], x->name, crcs[i]);
  }
  char *out = cJSON_Print(root);
  cJSON_Delete(root);
  GV_CHECK(out != NULL, "out of host memory");
  return out;
}

/* Step 4 (rank 0): the files renamed into place, index.json, then DIR/latest: the commit. */
static int commit(const struct gv_run *r, const struct ck_tensors *c, const char *dir, const char *folder,
                  struct ckpt_index x, const double *crcs)
{
  char from[4300], to[4300], latest[4200], text[128];
  for (int f = 0; f < 2; f++) {
    snprintf(from, sizeof from, "%s/%s.tmp", folder, files[f]);
    snprintf(to, sizeof to, "%s/%s", folder, files[f]);
    if (rename(from, to))
      return errno;
  }
  char *idx = index_json(r, c, x.step, crcs);
  snprintf(to, sizeof to, "%s/index.json", folder);
  int rc = write_atomic(to, idx);
  free(idx);
  if (rc)
    return errno;
  snprintf(latest, sizeof latest, "%s/latest", dir);
  snprintf(text, sizeof text, "gvc-checkpoint %d\nstep %d\nfolder iter_%07d%s\n", FORMAT_VERSION, x.step, x.step,
           x.alt ? ".b" : "");
  return write_atomic(latest, text) ? errno : 0;
}

int gv_run_save(struct gv_run *r, const char *dir, int next_step)
{
  char folder[4096], err[9000] = "";
  int me = gv_comm_rank(r->world), code, world = gv_comm_size(r->world);
  double t0 = gv_run_now_s();
  struct ckpt_index prev = {-1, 0};
  if (me == 0)
    prev = read_latest(dir, "--save");
  gv_comm_broadcast_host(r->world, &prev, 2, GV_DTYPE_I32, 0);
  struct ckpt_index next = {next_step, prev.step == next_step && !prev.alt}; /* never over the committed one */
  iter_folder(dir, next.step, next.alt, folder, sizeof folder);
  struct ck_tensors c;
  ck_tensors_build(r, &c);
  int total = c.n * (1 + c.blocks);
  double *crcs = calloc((size_t)total + 1, sizeof *crcs);
  GV_CHECK(crcs != NULL, "out of host memory");
  struct part_crcs pc = {calloc((size_t)total * (size_t)world * 3 + 1, sizeof(double)), world, me};
  GV_CHECK(pc.at != NULL, "out of host memory");
  int e = me == 0 ? (make_dirs(folder) ? errno : write_files(r, &c, folder, 1, NULL, err, sizeof err)) : 0;
  if (e && !err[0])
    snprintf(err, sizeof err, "%s: %s", folder, strerror(e));
  int who = failing_rank(r, e, &code);
  if (who < 0) {
    e = write_files(r, &c, folder, 0, &pc, err, sizeof err);
    who = failing_rank(r, e, &code);
  }
  if (who < 0) {
    gv_comm_all_reduce_host(r->world, pc.at, (size_t)total * (size_t)world * 3, GV_DTYPE_F64, GV_REDUCE_SUM);
    e = compute_crcs(r, &c, folder, ".tmp", &pc, crcs, err, sizeof err);
    who = failing_rank(r, e, &code);
  }
  if (who < 0) {
    gv_comm_all_reduce_host(r->world, crcs, (size_t)total, GV_DTYPE_F64, GV_REDUCE_SUM);
    e = me == 0 ? commit(r, &c, dir, folder, next, crcs) : 0;
    if (e)
      snprintf(err, sizeof err, "%s: cannot commit (%s)", folder, strerror(e));
    who = failing_rank(r, e, &code);
  }
  free(crcs);
  free(pc.at);
  ck_tensors_free(&c);
  if (who >= 0) {
    if (who == me)
      gv_log(GV_LOG_ERROR, "%s", err);
    gv_comm_barrier(r->world);
    if (me == 0)
      remove_folder(folder);
    gv_fatalf(__FILE__, __LINE__, "--save", "gvrt", "%s: rank %d could not write its part of the checkpoint of step "
              "%d (%s); nothing of it is kept and %s/latest still names the previous checkpoint, if any", folder,
              who, next_step, strerror(code), dir);
  }
  if (me == 0 && r->args.keep_last > 0)
    prune(dir, r->args.keep_last, next);
  gv_comm_barrier(r->world);
  gv_log0(GV_LOG_INFO, "saved checkpoint %s (step %d, %d ranks, %.2fs)", folder, next_step, world, gv_run_now_s() - t0);
  return 0;
}

/* ---- load ---- */

/* The run's --seed and global batch must be the checkpoint's (data order, dropout and the
 * loss scale follow them), unless --override_checkpoint_args or nothing is trained. */
static void check_run_args(const struct gv_run *r, const cJSON *idx, const char *path, int step)
{
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(idx, "seed"), *b = cJSON_GetObjectItemCaseSensitive(idx, "global_batch");
  unsigned long long seed = cJSON_IsString(s) ? strtoull(s->valuestring, NULL, 10) : 0;
  int batch = cJSON_IsNumber(b) ? (int)b->valuedouble : 0;
  char why[256] = "";
  if (!cJSON_IsString(s) || !cJSON_IsNumber(b))
    FATAL("%s: field '%s' is missing or of the wrong type", path, cJSON_IsString(s) ? "global_batch" : "seed");
  if (seed != r->args.seed)
    snprintf(why, sizeof why, "--seed %llu, this run has --seed %llu", seed, (unsigned long long)r->args.seed);
  else if (batch != r->args.global_batch)
    snprintf(why, sizeof why, "--global_train_batch_size %d, this run has %d", batch, r->args.global_batch);
  if (!why[0] || r->args.eval_only || step >= r->args.iters) /* no training: neither matters */
    return;
  if (r->args.override_checkpoint_args) {
    gv_log0(GV_LOG_WARN, "%s: saved with %s: resuming anyway (--override_checkpoint_args)", path, why);
    return;
  }
  FATAL("%s: saved by a run with %s (the data order and dropout follow them); resume with the same values, or give "
        "--override_checkpoint_args to resume anyway", path, why);
}

/* The writer's strategy (index.json's 'strategy', for information: the tensors are global,
 * so no degree of it, tp_of_ep included, changes what a loader reads) as "world 2 pp 1 ...".
 * cp and ep are written only when > 1, and tp_of_ep is absent from checkpoints written
 * before it was recorded: each is 1 then. */
static void writer_strategy(const cJSON *idx, const char *path, char *out, size_t len)
{
  static const struct { const char *key; int optional, least; } keys[] = {
    {"world", 0, 1}, {"pp", 0, 1}, {"tp", 0, 1}, {"dp", 0, 1}, {"cp", 1, 1}, {"ep", 1, 1}, {"tp_of_ep", 1, 1},
    {"zero", 0, 0}};
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(idx, "strategy");
  size_t at = 0;
  if (!cJSON_IsObject(s))
    FATAL("%s: field 'strategy' is missing or not an object", path);
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, keys[k].key);
    if (!v && keys[k].optional)
      continue;
    if (!cJSON_IsNumber(v) || v->valuedouble < keys[k].least || v->valuedouble > 1e6 ||
        v->valuedouble != (int)v->valuedouble)
      FATAL("%s: field 'strategy.%s' is %s (an integer of at least %d expected)", path, keys[k].key,
            v ? "not a valid degree" : "missing", keys[k].least);
    at += (size_t)snprintf(out + at, len - at, "%s%s %d", at ? " " : "", keys[k].key, (int)v->valuedouble);
  }
}

static cJSON *read_index(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    FATAL("%s: cannot open (%s): the checkpoint's index is missing", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0, k;
  do {
    if (len + 65536 > cap && !(buf = realloc(buf, cap = 2 * cap + 65536)))
      FATAL("out of host memory");
    k = fread(buf + len, 1, cap - len, f);
    len += k;
  } while (k > 0);
  fclose(f);
  cJSON *idx = cJSON_ParseWithLength(buf, len);
  free(buf);
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(idx, "format"), *v = cJSON_GetObjectItemCaseSensitive(idx, "version");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "gvc-checkpoint") || !cJSON_IsNumber(v) ||
      v->valuedouble != FORMAT_VERSION)
    FATAL("%s: not a gvc checkpoint index of format %d (field 'format' or 'version')", path, FORMAT_VERSION);
  return idx;
}

/* Every tensor of file f is in the index and in this program, and the other way round. */
static void check_file(const struct ck_tensors *c, gv_st *st, int f, const cJSON *crcs, const char *index_path)
{
  const char *path = gv_st_path(st);
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(crcs, files[f]), *e;
  if (!cJSON_IsObject(want))
    FATAL("%s: field 'crc32.%s' is missing", index_path, files[f]);
  for (int i = 0; i < gv_st_count(st); i++) {
    const char *name = gv_st_at(st, i)->name;
    if (!cJSON_GetObjectItemCaseSensitive(want, name))
      FATAL("%s: tensor '%s' is not in the checkpoint's index.json (an extra tensor: files mixed?)", path, name);
  }
  cJSON_ArrayForEach(e, want) if (!gv_st_find(st, e->string))
    FATAL("%s: tensor '%s' is missing (the index lists it)", path, e->string);
  if (f == 0)
    for (int i = 0; i < gv_st_count(st); i++) {
      const char *name = gv_st_at(st, i)->name;
      if (ck_find(c, name) < 0)
        FATAL("%s: tensor '%s' is not a parameter of this program (another model?)", path, name);
    }
}

/* Tensor name of file f, checked against parameter p: a float dtype (its shape: when read). */
static const struct gv_st_tensor *tensor_for(gv_st *st, const char *name, const struct gv_run_param *p, int need_f32)
{
  const struct gv_st_tensor *t = gv_st_find(st, name);
  if (!t)
    FATAL("%s: tensor '%s' is missing (this program's parameter %s has no %s)", gv_st_path(st), name, p->name, name);
  int ok = need_f32 ? t->dtype == GV_ST_F32 : t->dtype == GV_ST_F32 || t->dtype == GV_ST_BF16 || t->dtype == GV_ST_F16;
  if (!ok)
    FATAL("%s: tensor '%s': dtype %s, expected %s", gv_st_path(st), name, gv_st_dtype_name(t->dtype),
          need_f32 ? "F32" : "F32, BF16 or F16");
  return t;
}

/* Tensor t of file f in one numbering of both files' tensors (model first). */
static int file_id(gv_st *st[2], int f, const struct gv_st_tensor *t)
{
  return (int)(t - gv_st_at(st[f], 0)) + (f ? gv_st_count(st[0]) : 0);
}

/* Elements [first, first + n) of p's tp block from tensor t of file f, as fp32 into h (the
 * arena itself where it can: gv_run_host_f32_for); the CRC-32 of the bytes read noted in pc
 * where they are one range of t. */
static void read_slice(gv_st *st[2], int f, const struct gv_st_tensor *t, const struct gv_run_param *p, size_t first,
                       size_t n, float *h, struct part_crcs *pc)
{
  char err[1024];
  size_t m = 0;
  uint32_t crc = 0;
  int whole = contiguous(pc, p);
  if (gv_run_read_part_crc(st[f], t, p, first, n, h, &m, whole ? &crc : NULL, err, sizeof err))
    FATAL("%s", err);
  if (whole && m)
    note_crc(pc, file_id(st, f, t), p, first, m, gv_st_dtype_size(t->dtype), crc);
}

/* One parameter: its held elements, and the state of its owned ones. The fp32 values of a
 * parameter are the bf16 run's masters when saved, else its parameters (both ways between
 * precisions). */
static void load_param(struct gv_run *r, gv_st *st[2], const struct gv_run_param *p, struct part_crcs *pc)
{
  char name[1024];
  size_t first, n;
  snprintf(name, sizeof name, "%s/master", p->name);
  const struct gv_st_tensor *master = gv_st_find(st[1], name) ? tensor_for(st[1], name, p, 1) : NULL;
  const struct gv_st_tensor *w = tensor_for(st[0], p->name, p, 0);
  int masters_as_params = r->fdt == GV_DTYPE_F32 && master;
  if (gv_run_held(r, p, &first, &n)) {
    void *dev = gv_run_param_at(r, p, first);
    float *h = gv_run_host_f32_for(r, dev, n, r->fdt == GV_DTYPE_F32);
    read_slice(st, masters_as_params, masters_as_params ? master : w, p, first, n, h, pc);
    gv_run_from_host_f32(r, dev, h, n);
  }
  if (!gv_run_owned(r, p, &first, &n))
    return;
  for (int k = 0; k < gv_run_state_blocks(r); k++) {
    snprintf(name, sizeof name, "%s/%s", p->name, state_suffix[k]);
    int from_model = k == GV_STATE_MASTER && !master;
    const struct gv_st_tensor *t = from_model ? w : k == GV_STATE_MASTER ? master : tensor_for(st[1], name, p, 1);
    float *dev = gv_run_owned_state(r, p, first, (enum gv_prog_state)k), *h = gv_run_host_f32_for(r, dev, n, 1);
    read_slice(st, !from_model, t, p, first, n, h, pc);
    gv_run_from_host(r, dev, h, sizeof(float) * n);
  }
}

/* Every tensor's CRC-32 against the index's, each checked by one rank: from the parts the
 * ranks read (pc, all-reduced here) where they tile the tensor, else by reading it again
 * (those spread over the ranks). Errors agreed on; returns how many came from the parts. */
static int verify_crcs(struct gv_run *r, gv_st *st[2], const cJSON *crcs, struct part_crcs *pc)
{
  int n0 = gv_st_count(st[0]), total = n0 + gv_st_count(st[1]), me = gv_comm_rank(r->world), bad = 0, from_reads = 0;
  gv_comm_all_reduce_host(r->world, pc->at, (size_t)total * (size_t)pc->world * 3, GV_DTYPE_F64, GV_REDUCE_SUM);
  double *size = calloc((size_t)total + 1, sizeof *size);
  uint32_t *read_crc = calloc((size_t)total + 1, sizeof *read_crc);
  unsigned char *tiled = calloc((size_t)total + 1, 1);
  GV_CHECK(size && read_crc && tiled, "out of host memory");
  for (int i = 0; i < total; i++) {
    const struct gv_st_tensor *t = gv_st_at(st[i >= n0], i >= n0 ? i - n0 : i);
    tiled[i] = (unsigned char)crc_from_parts(pc, i, (int64_t)(t->end - t->begin), &read_crc[i]);
    size[i] = tiled[i] ? 0 : (double)(t->end - t->begin); /* the reading spread, the combining nearly free */
    from_reads += tiled[i];
  }
  int *owner = spread_owners(size, total, pc->world);
  char err[1024] = "";
  for (int f = 0; f < 2; f++) { /* file by file, as the error names it */
    for (int i = f ? n0 : 0; i < (f ? total : n0) && !bad; i++) {
      const struct gv_st_tensor *t = gv_st_at(st[f], f ? i - n0 : i);
      const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(crcs, files[f]), t->name);
      uint32_t crc = read_crc[i];
      if (owner[i] != me)
        continue;
      if (!tiled[i] && gv_st_crc32(st[f], t, &crc, err, sizeof err))
        bad = 1;
      else if (!cJSON_IsNumber(x) || x->valuedouble != (double)crc) {
        snprintf(err, sizeof err, "%s: tensor '%s' is damaged: its CRC-32 is %08x, index.json recorded %s",
                 gv_st_path(st[f]), t->name, crc, cJSON_IsNumber(x) ? "another" : "none");
        bad = 1;
      }
    }
    int code, who = failing_rank(r, bad, &code);
    if (who == me)
      gv_log(GV_LOG_ERROR, "%s", err);
    if (who >= 0)
      FATAL("%s: rank %d found a damaged tensor (its message above); not resuming from it", gv_st_path(st[f]), who);
  }
  free(owner);
  free(tiled);
  free(read_crc);
  free(size);
  return from_reads;
}

/* The parameters in the order of their tensors in the model file (by name, not the program's
 * order: layers.10 comes before layers.2), so that each file is read front to back and the
 * kernel's readahead is not restarted at every jump. */
struct at_param {
  uint64_t at;
  int i;
};

static int by_at(const void *a, const void *b)
{
  const struct at_param *x = a, *y = b;
  return x->at < y->at ? -1 : x->at > y->at ? 1 : x->i - y->i;
}

static struct at_param *params_in_file_order(const struct gv_run *r, gv_st *model)
{
  struct at_param *o = calloc((size_t)r->nparams + 1, sizeof *o);
  GV_CHECK(o != NULL, "out of host memory");
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_st_tensor *t = gv_st_find(model, r->params[i].name);
    o[i] = (struct at_param){t ? t->begin : UINT64_MAX, i};
  }
  qsort(o, (size_t)r->nparams, sizeof *o, by_at);
  return o;
}

int gv_run_load_found(const char *dir)
{
  return read_latest(dir, "--load").step >= 0;
}

int gv_run_load(struct gv_run *r, const char *dir)
{
  char folder[4096], path[4300], err[1024];
  double t0 = gv_run_now_s();
  struct ckpt_index x = read_latest(dir, "--load");
  if (x.step < 0) {
    snprintf(path, sizeof path, "%s/rank00000.gvck", dir);
    if (!access(path, F_OK))
      FATAL("%s: a checkpoint of the older format 1 (rank<r>.gvck files directly in the folder), which this version "
            "does not read; it reads format 2 (global tensors in safetensors files)", dir);
    FATAL("%s: no checkpoint here (no %s/latest naming a saved step)", dir, dir);
  }
  iter_folder(dir, x.step, x.alt, folder, sizeof folder);
  snprintf(path, sizeof path, "%s/index.json", folder);
  char index_path[4300];
  snprintf(index_path, sizeof index_path, "%s", path);
  cJSON *idx = read_index(index_path);
  const cJSON *st_step = cJSON_GetObjectItemCaseSensitive(idx, "step");
  if (!cJSON_IsNumber(st_step) || st_step->valuedouble != x.step)
    FATAL("%s: field 'step' is not %d, the step %s/latest names: files mixed?", index_path, x.step, dir);
  check_run_args(r, idx, index_path, x.step);
  char writer[256];
  writer_strategy(idx, index_path, writer, sizeof writer);
  struct ck_tensors c;
  ck_tensors_build(r, &c);
  gv_st *st[2];
  for (int f = 0; f < 2; f++) {
    snprintf(path, sizeof path, "%s/%s", folder, files[f]);
    if (gv_st_open(&st[f], path, err, sizeof err))
      FATAL("%s", err);
    check_file(&c, st[f], f, cJSON_GetObjectItemCaseSensitive(idx, "crc32"), index_path);
  }
  for (int i = 0; i < c.n; i++) { /* every parameter of the program is in the file */
    snprintf(path, sizeof path, "%s/%s", folder, files[0]);
    if (!gv_st_find(st[0], c.model[i].name))
      FATAL("%s: tensor '%s' is missing (this program has that parameter: another model?)", path, c.model[i].name);
  }
  int total = gv_st_count(st[0]) + gv_st_count(st[1]), world = gv_comm_size(r->world);
  struct part_crcs pc = {calloc((size_t)total * (size_t)world * 3 + 1, sizeof(double)), world, gv_comm_rank(r->world)};
  GV_CHECK(pc.at != NULL, "out of host memory");
  struct at_param *order = params_in_file_order(r, st[0]);
  for (int i = 0; i < r->nparams; i++)
    load_param(r, st, &r->params[order[i].i], &pc);
  free(order);
  int from_reads = verify_crcs(r, st, cJSON_GetObjectItemCaseSensitive(idx, "crc32"), &pc);
  free(pc.at);
  gv_st_close(st[0]);
  gv_st_close(st[1]);
  ck_tensors_free(&c);
  cJSON_Delete(idx);
  gv_log0(GV_LOG_INFO, "loaded checkpoint %s: resuming at step %d (%.2fs; CRC-32s of %d of %d tensors from the "
          "bytes read; saved by %s)", folder, x.step, gv_run_now_s() - t0, from_reads, total, writer);
  return x.step;
}
