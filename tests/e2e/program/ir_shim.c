/* ir_shim.c - TEMPORARY: the IR helpers lower.c needs, until compiler/ir.c lands. */
#include "ir.h"

#include <string.h>

int64_t ir_dim(int64_t d, int64_t micro_batch, int64_t seq)
{
  return d == IR_DIM_B ? micro_batch : d == IR_DIM_T ? seq : d;
}

const char *ir_op_name(IrOp op)
{
  static const char *names[] = {
#define X(name, spelling, nin, nparam) spelling,
    IR_OPS(X)
#undef X
  };
  return op < IR_OP_COUNT ? names[op] : "?";
}
