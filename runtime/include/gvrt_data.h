/* gvrt_data.h - libgvrt's datasets: Megatron indexed datasets (.bin/.idx, MMIDIDX),
 * their writer, and GPT sample construction exactly as Megatron's GPTDataset builds it
 * (document, sample and shuffle indices from numpy's RandomState(seed)). Every sample
 * is seq+1 tokens; the same (prefix, seq, seed, num_samples, split) gives the same
 * samples on every rank and under every parallel strategy. Formats: docs/data.md.
 *
 * Errors at this API edge are recoverable and follow the runtime's convention (gvrt.h):
 * functions return a gv_data_status (0 for success) and write a one-line message that
 * names the file and the field into the caller's buffer err of errn bytes (NULL: none).
 * (gv_data_status / GV_DATA_TRY stand in for the runtime's gv_status / GV_TRY until
 * the two are merged.) */
#ifndef GVRT_DATA_H
#define GVRT_DATA_H

#include <stddef.h>
#include <stdint.h>

#ifndef GV_API
#if defined(__GNUC__)
#define GV_API __attribute__((visibility("default")))
#else
#define GV_API
#endif
#endif

typedef enum gv_data_status {
  GV_DATA_OK = 0,
  GV_DATA_ERR_IO,      /* open, stat, mmap, write or rename failed */
  GV_DATA_ERR_FORMAT,  /* a field of a .idx/.bin is invalid */
  GV_DATA_ERR_ARG,     /* a caller argument is out of range */
  GV_DATA_ERR_NOMEM,
} gv_data_status;


/* Megatron's dtype codes (indexed_dataset.py DType). */
enum gv_data_dtype {
  GV_DATA_DTYPE_U8 = 1, GV_DATA_DTYPE_I8 = 2, GV_DATA_DTYPE_I16 = 3, GV_DATA_DTYPE_I32 = 4,
  GV_DATA_DTYPE_I64 = 5, GV_DATA_DTYPE_F64 = 6, GV_DATA_DTYPE_F32 = 7, GV_DATA_DTYPE_U16 = 8,
};

GV_API const char *gv_data_dtype_name(int code);     /* "uint16"; NULL if unknown */
GV_API int gv_data_dtype_size(int code);             /* bytes; 0 if unknown */
GV_API int gv_data_dtype_for_vocab(int64_t vocab);   /* uint16 below 65500, else int32 */

/* ---- indexed dataset (reader) ---- */

typedef struct gv_mmidx gv_mmidx;   /* both files mmap'd read-only; all fields validated */

/* Opens PREFIX.idx and PREFIX.bin. */
GV_API gv_data_status gv_mmidx_open(const char *prefix, gv_mmidx **out, char *err, size_t errn);
GV_API void gv_mmidx_free(gv_mmidx **ix);

GV_API int64_t gv_mmidx_num_seqs(const gv_mmidx *ix);    /* sequences (S) */
GV_API int64_t gv_mmidx_num_docs(const gv_mmidx *ix);    /* documents (D - 1) */
GV_API int64_t gv_mmidx_num_tokens(const gv_mmidx *ix);
GV_API int gv_mmidx_dtype(const gv_mmidx *ix);
GV_API int32_t gv_mmidx_seq_len(const gv_mmidx *ix, int64_t seq);
/* Sequences [*first, *end) make up document doc. */
GV_API void gv_mmidx_doc_seqs(const gv_mmidx *ix, int64_t doc, int64_t *first, int64_t *end);
/* Copies tokens [off, off+n) of sequence seq into out, converted to int32; the range
 * must lie inside the sequence. */
GV_API void gv_mmidx_read(const gv_mmidx *ix, int64_t seq, int64_t off, int64_t n, int32_t *out);

/* The largest token id of all sequences (INT32_MIN when there are none), the sequence
 * holding its first occurrence, and the smallest id: one pass over the .bin. */
GV_API int32_t gv_mmidx_max_token(const gv_mmidx *ix, int64_t *seq_of_max, int32_t *min_token);

/* ---- indexed dataset (writer) ---- */

typedef struct gv_mmidx_writer gv_mmidx_writer;

/* Writes PREFIX.bin.tmp/PREFIX.idx.tmp; close renames them into place (idx last), so a
 * reader never sees a half-written dataset. dtype: an integer dtype code. */
GV_API gv_data_status gv_mmidx_writer_open(const char *prefix, int dtype, gv_mmidx_writer **out,
                                           char *err, size_t errn);
/* Appends one sequence; tokens must fit the dtype. */
GV_API gv_data_status gv_mmidx_writer_add(gv_mmidx_writer *w, const int32_t *tokens, int64_t n,
                                          char *err, size_t errn);
/* Ends the current document (after one or more sequences). */
GV_API void gv_mmidx_writer_end_doc(gv_mmidx_writer *w);
GV_API int64_t gv_mmidx_writer_tokens(const gv_mmidx_writer *w);
GV_API int64_t gv_mmidx_writer_docs(const gv_mmidx_writer *w);
/* Writes the .idx, renames both files into place and frees w (also on error). */
GV_API gv_data_status gv_mmidx_writer_close(gv_mmidx_writer **w, char *err, size_t errn);
/* Removes the temporary files and frees w. */
GV_API void gv_mmidx_writer_abort(gv_mmidx_writer **w);

/* ---- sequence-to-sequence pairs (runtime/data/pairs.c, docs/data.md §4) ---- */

typedef struct gv_pairs gv_pairs;

/* Opens PREFIX_src and PREFIX_tgt (`gvc data --src-key K --tgt-key K`): one record per
 * document, every record of a side of one length, as many records on both sides. */
GV_API gv_data_status gv_pairs_open(const char *prefix, gv_pairs **out, char *err, size_t errn);
GV_API void gv_pairs_free(gv_pairs **p);
GV_API int64_t gv_pairs_count(const gv_pairs *p);
GV_API int32_t gv_pairs_src_len(const gv_pairs *p);   /* the encoder's sequence length */
GV_API int32_t gv_pairs_tgt_len(const gv_pairs *p);   /* the decoder's */
/* Pair i modulo the count: src [src_len] as stored; dec_in [tgt_len] = start, then the
 * target's first tgt_len - 1 tokens; labels [tgt_len] = the target with pad as -1 (ignored
 * by the cross-entropy). */
GV_API void gv_pairs_get(const gv_pairs *p, int64_t i, int32_t pad, int32_t start, int32_t *src, int32_t *dec_in,
                         int32_t *labels);

/* ---- byte-level BPE (GPT-2 / Hugging Face ByteLevel + BPE) ---- */

typedef struct gv_bpe gv_bpe;

GV_API gv_data_status gv_bpe_new(gv_bpe **out, char *err, size_t errn);
GV_API void gv_bpe_free(gv_bpe **b);
/* A vocabulary entry: sym in the byte-to-unicode alphabet, UTF-8 ("\xc4\xa0the" = " the"). */
GV_API gv_data_status gv_bpe_add_token(gv_bpe *b, const char *sym, int32_t id, char *err, size_t errn);
/* The next merge rule (rank = call order); all three symbols must be in the vocabulary. */
GV_API gv_data_status gv_bpe_add_merge(gv_bpe *b, const char *left, const char *right,
                                       char *err, size_t errn);
GV_API int32_t gv_bpe_token_id(const gv_bpe *b, const char *sym);   /* -1 if absent */
GV_API int32_t gv_bpe_vocab_size(const gv_bpe *b);                  /* max id + 1 */
/* Encodes text[0..n) into *out (grown as needed, capacity *cap); *nout tokens. */
GV_API gv_data_status gv_bpe_encode(gv_bpe *b, const char *text, size_t n, int32_t **out,
                                    size_t *cap, size_t *nout, char *err, size_t errn);

/* The text of ids[0..n) into *out (grown as needed, capacity *cap; NUL-terminated), *nout
 * bytes: each id's symbol, byte-level symbols mapped back to their bytes, other characters
 * (added tokens such as <|endoftext|>) as they are. An id without a symbol is an error. */
GV_API gv_data_status gv_bpe_decode(gv_bpe *b, const int32_t *ids, size_t n, char **out, size_t *cap,
                                    size_t *nout, char *err, size_t errn);
/* A Hugging Face tokenizer.json (byte-level BPE: model.type "BPE", a ByteLevel
 * pre-tokenizer; docs/data.md) into a new gv_bpe; *add_prefix_space from the ByteLevel. */
GV_API gv_data_status gv_bpe_load_json(const char *path, gv_bpe **out, int *add_prefix_space,
                                       char *err, size_t errn);

/* ---- GPT samples (Megatron GPTDataset) ---- */

struct gv_data_opts {
  int seq;               /* sequence length; every sample has seq+1 tokens */
  uint32_t seed;         /* numpy RandomState seed (Megatron default 42) */
  int64_t num_samples;   /* samples wanted; 0 = one epoch's worth */
  const char *split;     /* Megatron's split weights, e.g. "949,50,1"; NULL = "1" (all) */
  int split_index;       /* 0 train, 1 valid, 2 test */
};

/* {seq, seed, 0, NULL, 0}: one epoch over the whole dataset. */
GV_API struct gv_data_opts gv_data_opts_default(int seq, uint32_t seed);

/* Megatron's split of S sequences: split_index covers [*lo, *hi). GV_DATA_ERR_ARG if the
 * string is not 1 to 3 non-negative weights with a positive sum. */
GV_API gv_data_status gv_data_split_range(const char *split, int split_index, int64_t nseq,
                                          int64_t *lo, int64_t *hi, char *err, size_t errn);

typedef struct gv_data gv_data;

GV_API gv_data_status gv_data_open(const char *prefix, const struct gv_data_opts *opts,
                                   gv_data **out, char *err, size_t errn);
GV_API void gv_data_free(gv_data **ds);

/* Samples the indices hold (>= opts.num_samples); get_sample wraps idx modulo this. */
GV_API int64_t gv_data_num_samples(const gv_data *ds);
GV_API int gv_data_seq(const gv_data *ds);
GV_API int gv_data_epochs(const gv_data *ds);
GV_API const gv_mmidx *gv_data_index(const gv_data *ds);

/* tokens[0..seq]: inputs are tokens[0..seq-1], labels tokens[1..seq]. */
GV_API void gv_data_get_sample(const gv_data *ds, int64_t idx, int32_t *tokens);

/* Global sample index of row i of data-parallel rank dp_rank at step:
 * step * global_batch + dp_rank * (global_batch / dp_size) + i. */
static inline int64_t gv_data_batch_index(int64_t step, int global_batch, int dp_rank, int dp_size,
                                          int i)
{
  return step * global_batch + (int64_t)dp_rank * (global_batch / dp_size) + i;
}

/* Fills tokens[global_batch/dp_size][seq+1] with rank dp_rank's slice of the global batch
 * of step. global_batch must be a multiple of dp_size. */
GV_API gv_data_status gv_data_get_batch(const gv_data *ds, int64_t step, int global_batch,
                                        int dp_rank, int dp_size, int32_t *tokens,
                                        char *err, size_t errn);

/* Megatron-compatible RNG, exposed for tests: numpy RandomState(seed).shuffle of an
 * int64 array (MT19937, Fisher-Yates from the end, masked rejection). */
struct gv_data_mt { uint32_t key[624]; int pos; };
GV_API void gv_data_mt_seed(struct gv_data_mt *mt, uint32_t seed);
GV_API uint32_t gv_data_mt_next(struct gv_data_mt *mt);
GV_API void gv_data_mt_shuffle(struct gv_data_mt *mt, int64_t *x, int64_t n);

/* ---- image datasets (PREFIX.gvimg): fixed-size images with one class label each ----
 * A 32-byte little-endian header: "GVIMAGES", u32 version (1), u32 count, u32 channels,
 * u32 height, u32 width, u32 classes; then `count` records of u32 label (< classes) and
 * channels x height x width u8 pixels (channel-major, rows top to bottom). The record of
 * image i is at 32 + i (4 + C H W): the index is the arithmetic. Opening checks the size
 * and every label (a message names the file and the record). Format: docs/data.md. */
typedef struct gv_images gv_images;
struct gv_images_info { int64_t count, channels, height, width, classes; };

GV_API gv_data_status gv_images_open(const char *path, gv_images **out, char *err, size_t errn);
GV_API const struct gv_images_info *gv_images_info(const gv_images *d);
/* The pixels of image i (C H W bytes) and its label. */
GV_API const uint8_t *gv_images_get(const gv_images *d, int64_t i, int32_t *label);
GV_API void gv_images_free(gv_images **d);

/* Writes a .gvimg file through a temporary file renamed at close (the count patched in;
 * shape->classes 0: one more than the largest label written). */
typedef struct gv_images_writer gv_images_writer;
GV_API gv_data_status gv_images_writer_open(const char *path, const struct gv_images_info *shape,
                                            gv_images_writer **out, char *err, size_t errn);
GV_API gv_data_status gv_images_writer_add(gv_images_writer *w, const uint8_t *pixels, int32_t label,
                                           char *err, size_t errn);
/* Finishes (keep != 0) or abandons the file; frees w. */
GV_API gv_data_status gv_images_writer_close(gv_images_writer **w, int keep, char *err, size_t errn);

#endif
