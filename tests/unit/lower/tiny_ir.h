/* tiny_ir.h - the tiny GPT-2- and LLaMA-style models of tests/reference, built directly
 * as IR (no front end), so the lowering and the runtime are tested against the PyTorch
 * fixtures on their own. Names and shapes follow the reference script's conventions. */
#ifndef GV_TINY_IR_H
#define GV_TINY_IR_H

#include "arena.h"
#include "ir.h"

IrModel *tiny_ir_gpt(Arena *a);
IrModel *tiny_ir_llama(Arena *a);

#endif
