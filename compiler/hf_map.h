/* hf_map.h - a model's Hugging Face mapping (`NAME.hf.map` beside its .gvm file): how
 * config.json's fields relate to the model's hyper-parameters and how gvc's parameter
 * names and layouts relate to the Hugging Face tensors. Line-based, `#` comments:
 *
 *   architecture GPT2LMHeadModel              config.json's "architectures" on export
 *   config n_embd = hidden [absent VALUE]     a hyper-parameter of the size; VALUE is what
 *                                             transformers assumes when the field is absent
 *   config model_type = "gpt2"                a JSON constant: checked, and written on export
 *   default tie_word_embeddings = false       written on export only
 *   tensor GVC... = HF [transpose] [split D]  gvc name pattern(s) <-> HF name pattern
 *   tensor G1 G2 G3 = HF split 0 groups HYPER  HF is HYPER groups of rows, each holding the
 *                                             next slice of G1, G2, G3 in turn (GPT-NeoX's
 *                                             query_key_value: [heads, 3, head_dim] rows)
 *   tensor GVC = HF stack                     HF (with {e}) for e = 0, 1, ... stacked along a
 *                                             new first dimension: the experts of an MoE
 *   tensor GVC = HF unsqueeze                 HF is the gvc tensor with a leading dimension of 1
 *                                             (ViT's position embeddings [1, T, C])
 *   tied HF = HF2                             HF may be absent and then stands for HF2;
 *                                             present without a gvc tensor, it must equal HF2
 *   ignore HF                                 tensors of the HF file that are not weights
 *   prefix P                                  the file's names may all lack P (GPT2Model's
 *                                             keys beside GPT2LMHeadModel's "transformer.")
 *                                             or carry it (BERT's "bert.") where the rules
 *                                             name them otherwise
 *
 * Patterns hold `{i}`, the layer index (digits); an ignore pattern may end in `*` (any rest). `transpose`: the HF tensor is the gvc
 * weight transposed (GPT-2's Conv1D). `split D`: the HF tensor is the gvc tensors (each
 * transposed first when `transpose`) concatenated along its dimension D, in order. */
#ifndef GV_HF_MAP_H
#define GV_HF_MAP_H

#include <stddef.h>

enum { HF_MAP_MAX_PARTS = 8 };
typedef enum HfRuleKind { HF_CONFIG, HF_DEFAULT, HF_TENSOR, HF_TIED, HF_IGNORE } HfRuleKind;

typedef struct HfRule {
  HfRuleKind kind;
  int line;
  const char *key;                   /* config: the JSON field; tied/ignore: the HF pattern */
  const char *hyper;                 /* config: a hyper-parameter name, or NULL ... */
  const char *json;                  /* ... and then a JSON literal */
  const char *absent;                /* config: a JSON literal, or NULL */
  const char *gvc[HF_MAP_MAX_PARTS]; /* tensor: gvc patterns */
  int nparts, transpose, split;      /* split: -1 none */
  int stack;                         /* the HF pattern's {e} over the gvc tensor's first dim */
  int unsqueeze;                     /* the HF tensor has a leading 1 more than the gvc tensor */
  const char *groups;                /* split 0 in this many groups (a hyper-parameter), or NULL */
  const char *hf;                    /* tensor: HF pattern; tied: what it stands for */
} HfRule;

typedef struct HfMap {
  const char *path;
  const char *architecture;
  const char *prefix;  /* NULL when none */
  HfRule *rules;
  int nrules;
  char *text; /* the file, cut into the rules' strings */
} HfMap;

/* Reads and checks PATH; on error prints `PATH:LINE: error: ...` and returns 1. */
int hf_map_load(HfMap *m, const char *path);
void hf_map_free(HfMap *m);
/* Does NAME match PATTERN ({i}: one or more digits, stored in *i, -1 without {i}; a
 * final `*`: any rest)? */
int hf_pattern_match(const char *pattern, const char *name, long *i);
/* PATTERN with {i} replaced by i, into out (returns out). */
char *hf_pattern_subst(const char *pattern, long i, char *out, size_t len);
/* NAME (a pattern with {i} replaced) with {e} replaced by e, into out (returns out). */
char *hf_pattern_expert(const char *name, long e, char *out, size_t len);

#endif
