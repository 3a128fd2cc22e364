/* test_models.c - the model zoo against published facts:
 *  - parameter counts equal Hugging Face's (the `num_parameters()` of the HF model
 *    classes: GPT2LMHeadModel counts the tied head once; LlamaForCausalLM,
 *    MistralForCausalLM and Qwen2ForCausalLM count embedding and head separately; BERT is
 *    BertModel without its pooler, whose published counts are 109482240 and 335141888;
 *    GPTNeoXForCausalLM (Pythia: embed_in and embed_out separate, fused query_key_value
 *    with bias = q, k, v with biases; 12·L·d² + 13·L·d + 2·V·d + 2·d) and GemmaForCausalLM
 *    (head tied, counted once; L·(2·d·H·hd + 2·d·KV·hd + 3·d·ffn + 2·d) + V·d + d): T5's,
 *    Pythia's and Gemma's numbers are those transformers reports for the published configs
 *    (tests/reference/hf_param_counts.py, on the meta device);
 *  - forward FLOPs per token equal the closed form of PaLM (Chowdhery et al. 2022,
 *    appendix B: training = 6N + 12·L·H·Q·T, forward a third of it, i.e.
 *    2·N_matmul + 4·L·T·d with N_matmul the weights of every matrix multiply, LM head
 *    included, and d = H·Q the attention width); for GPT-2 N_matmul = 12·L·d² + V·d,
 *    for LLaMA-style models 2·L·d·(d + 2·kv·hd) + 3·L·d·ffn + V·d, with d replaced by the
 *    attention width H·hd in the q and o projections and the attention term (Gemma 7B);
 *  - the IR of examples/tiny.gvm names and shapes its parameters exactly as the fixtures'
 *    hand-built IR (tests/unit/lower/tiny_ir.c) does.
 * Usage: test_models SOURCE_DIR */
#include <stdio.h>
#include <string.h>

#include "frontend.h"
#include "testutil.h"
#include "tiny_ir.h"

static const IrModel *load(Ctx *cx, const char *dir, const char *file, const char *name)
{
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  const IrModel *m = frontend_load_model(cx, path, name);
  if (!m)
    fprintf(stderr, "cannot load %s from %s\n", name, path);
  return m;
}

static void check_params(const char *dir, const char *file, const char *name, long long expected)
{
  Ctx *cx = ctx_new();
  const IrModel *m = load(cx, dir, file, name);
  CHECK(m != NULL);
  if (m) {
    CHECK_EQ_INT(expected, ir_model_params(m));
    printf("%-12s %14lld params\n", name, (long long)ir_model_params(m));
  }
  ctx_free(&cx);
}

/* aw: the attention width H·hd (0: d). */
static void check_flops_aw(const char *dir, const char *file, const char *name, double L, double d, double V,
                           double kv_width, double ffn, int gated, double T, double aw)
{
  Ctx *cx = ctx_new();
  const IrModel *m = load(cx, dir, file, name);
  CHECK(m != NULL);
  aw = aw > 0 ? aw : d;
  if (m) {
    double nmat = L * (2 * d * aw + 2 * d * kv_width + (gated ? 3 : 2) * d * ffn) + V * d;
    double expected = 2 * nmat + 4 * L * T * aw;
    IrCost c = ir_model_cost(m, 1, (int64_t)T, 0, 2);
    CHECK_CLOSE(expected, c.flops_fwd / T, 0, 1e-12);
    CHECK_CLOSE(2 * c.flops_fwd, c.flops_bwd, 0, 1e-12);
    printf("%-12s %14.6g forward FLOP per token at T=%.0f (closed form %.6g)\n", name, c.flops_fwd / T, T, expected);
  }
  ctx_free(&cx);
}

static void check_flops(const char *dir, const char *file, const char *name, double L, double d, double V,
                        double kv_width, double ffn, int gated, double T)
{
  check_flops_aw(dir, file, name, L, d, V, kv_width, ffn, gated, T, 0);
}

/* Same parameter names and shapes, in any order. */
static void check_same_params(const IrModel *a, const IrModel *b)
{
  CHECK_EQ_INT(a->nparams, b->nparams);
  for (int i = 0; i < a->nparams; i++) {
    int found = 0;
    for (int j = 0; j < b->nparams && !found; j++)
      found = !strcmp(a->params[i].name, b->params[j].name) &&
              !memcmp(&a->params[i].shape, &b->params[j].shape, sizeof(IrShape));
    if (!found)
      fprintf(stderr, "parameter %s of %s not found with the same shape\n", a->params[i].name, a->name);
    CHECK(found);
  }
  CHECK_EQ_INT(a->nlayers, b->nlayers);
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : ".";
  check_params(dir, "models/gpt2.gvm", "gpt2", 124439808LL);
  check_params(dir, "models/gpt2.gvm", "gpt2_medium", 354823168LL);
  check_params(dir, "models/gpt2.gvm", "gpt2_large", 774030080LL);
  check_params(dir, "models/gpt2.gvm", "gpt2_xl", 1557611200LL);
  check_params(dir, "models/llama.gvm", "llama2_7b", 6738415616LL);
  check_params(dir, "models/llama.gvm", "llama2_13b", 13015864320LL);
  check_params(dir, "models/llama.gvm", "llama2_70b", 68976648192LL);
  check_params(dir, "models/llama.gvm", "llama3_8b", 8030261248LL);
  check_params(dir, "models/mistral.gvm", "mistral_7b", 7241732096LL);
  check_params(dir, "models/qwen2.gvm", "qwen2_5_7b", 7615616512LL);
  check_params(dir, "models/mixtral.gvm", "mixtral_8x7b", 46702792704LL); /* HF MixtralForCausalLM */
  /* HF BertModel(add_pooling_layer=False), the encoder of BertForMaskedLM: 109482240 and
   * 335141888 with the pooler, minus its hidden x hidden + hidden parameters */
  check_params(dir, "models/bert.gvm", "bert_base", 109482240LL - (768LL * 768 + 768));
  check_params(dir, "models/bert.gvm", "bert_large", 335141888LL - (1024LL * 1024 + 1024));
  /* HF T5ForConditionalGeneration (shared embedding and LM head counted once): tests/reference/hf_param_counts.py */
  check_params(dir, "models/t5.gvm", "t5_small", 60506624LL);
  check_params(dir, "models/t5.gvm", "t5_base", 222903552LL);
  check_params(dir, "models/t5.gvm", "t5_large", 737668096LL);
  check_params(dir, "models/t5.gvm", "t5_3b", 2851598336LL);
  /* HF ViTForImageClassification (1000 labels; ViTModel without its pooler, plus the
   * classifier): tests/reference/hf_param_counts.py */
  check_params(dir, "models/vit.gvm", "vit_base", 86567656LL);
  check_params(dir, "models/vit.gvm", "vit_large", 304326632LL);
  check_params(dir, "models/vit.gvm", "vit_huge", 632045800LL);
  check_params(dir, "models/vit.gvm", "vit_tiny", 26538LL);
  /* HF GPTNeoXForCausalLM and GemmaForCausalLM (tied head once): tests/reference/hf_param_counts.py */
  check_params(dir, "models/gpt_neox.gvm", "pythia_160m", 162322944LL);
  check_params(dir, "models/gpt_neox.gvm", "pythia_410m", 405334016LL);
  check_params(dir, "models/gpt_neox.gvm", "pythia_1b", 1011781632LL);
  check_params(dir, "models/gpt_neox.gvm", "pythia_1_4b", 1414647808LL);
  check_params(dir, "models/gpt_neox.gvm", "pythia_2_8b", 2775208960LL);
  check_params(dir, "models/gemma.gvm", "gemma_2b", 2506172416LL);
  check_params(dir, "models/gemma.gvm", "gemma_7b", 8537680896LL);

  check_flops(dir, "models/gpt2.gvm", "gpt2", 12, 768, 50257, 768, 3072, 0, 1024);
  check_flops(dir, "models/gpt2.gvm", "gpt2_xl", 48, 1600, 50257, 1600, 6400, 0, 1024);
  check_flops(dir, "models/llama.gvm", "llama2_7b", 32, 4096, 32000, 4096, 11008, 1, 4096);
  check_flops(dir, "models/llama.gvm", "llama2_70b", 80, 8192, 32000, 1024, 28672, 1, 4096);
  check_flops(dir, "models/gpt_neox.gvm", "pythia_410m", 24, 1024, 50304, 1024, 4096, 0, 2048);
  check_flops_aw(dir, "models/gemma.gvm", "gemma_2b", 18, 2048, 256000, 256, 16384, 1, 8192, 2048);
  check_flops_aw(dir, "models/gemma.gvm", "gemma_7b", 28, 3072, 256000, 4096, 24576, 1, 8192, 4096);

  Arena *a = arena_new(1 << 20);
  Ctx *cx = ctx_new();
  const IrModel *g = load(cx, dir, "examples/tiny.gvm", "tiny_gpt"), *l = load(cx, dir, "examples/tiny.gvm", "tiny_llama");
  CHECK(g && l);
  if (g && l) {
    check_same_params(g, tiny_ir_gpt(a));
    check_same_params(l, tiny_ir_llama(a));
  }
  ctx_free(&cx);
  arena_free(&a);
  return tu_report("unit_frontend_models");
}
