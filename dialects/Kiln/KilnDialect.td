// The kiln dialect: what upstream MLIR dialects lack for compiling neural networks.
#ifndef KILN_DIALECT_TD
#define KILN_DIALECT_TD

include "mlir/IR/OpBase.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
  let summary = "Ops and types for ahead-of-time compilation of neural networks";
  let description = [{
    kiln IR is upstream MLIR (`func`, `arith`, `math`, `tensor`, `linalg`) plus this
    dialect, which adds only what upstream lacks: weights stored outside the IR
    (`kiln.weight`), packed quantized element types (`!kiln.quant`) and their
    dequantization, the named transformer ops whose fast kernels need a hand-written
    algorithm (`kiln.rms_norm`, `kiln.rope`, `kiln.attention`, `kiln.gather`), and
    `kiln.dispatch`, a region that becomes exactly one kernel.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  // Folded kiln ops become arith.constant.
  let hasConstantMaterializer = 1;
  let dependentDialects = ["mlir::arith::ArithDialect"];
}

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic, traits>;

#endif // KILN_DIALECT_TD
