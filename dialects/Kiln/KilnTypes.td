// Attributes and types of the kiln dialect.
#ifndef KILN_TYPES_TD
#define KILN_TYPES_TD

include "KilnDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

// Mirrors kiln_quant_scheme in runtime/include/kiln/quant_formats.h, the one table of
// quantization formats (a static_assert in KilnTypes.cpp keeps the two in step).
def Kiln_QuantScheme : I32EnumAttr<"QuantScheme", "weight quantization scheme", [
    I32EnumAttrCase<"q8_0", 0>,
    I32EnumAttrCase<"q4_0", 1>,
    I32EnumAttrCase<"q4_k", 2>,
    I32EnumAttrCase<"q6_k", 3>,
    I32EnumAttrCase<"int8", 4>,
    I32EnumAttrCase<"int4", 5>,
    I32EnumAttrCase<"q5_0", 6>,
    I32EnumAttrCase<"q5_1", 7>,
    I32EnumAttrCase<"q4_0x16", 8>,
    I32EnumAttrCase<"q8_0x16", 9>,
    I32EnumAttrCase<"q5_0x16", 10>,
    I32EnumAttrCase<"q4_kx16", 11>,
    I32EnumAttrCase<"q6_kx16", 12>,
    I32EnumAttrCase<"q4_1", 13>]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}

def Kiln_RopeMode : I32EnumAttr<"RopeMode", "how rotary embedding pairs elements", [
    I32EnumAttrCase<"interleaved", 0>,
    I32EnumAttrCase<"neox", 1>]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}

def Kiln_RopeModeAttr : EnumAttr<Kiln_Dialect, Kiln_RopeMode, "rope_mode"> {
  let assemblyFormat = "`<` $value `>`";
}

def Kiln_QuantType : TypeDef<Kiln_Dialect, "Quant"> {
  let mnemonic = "quant";
  let summary = "element type of a packed, quantized weight";
  let description = [{
    `tensor<R x C x !kiln.quant<q4_0>>` is a logical R x C matrix stored packed along
    its innermost dimension in the given scheme. The GGUF block formats (`q8_0`,
    `q4_0`, `q5_0`, `q5_1`, `q4_k`, `q6_k`) carry their scales inside each block and
    have a fixed block size. The group-wise formats (`int8`, `int4`) need a group size and keep
    their scales (and optional zero points) in separate tensors:
    `!kiln.quant<int4, group = 128>`. `q4_0x16`, `q8_0x16`, `q5_0x16`, `q4_kx16` and `q6_kx16`
    are kiln's own layouts of q4_0, q8_0, q5_0, q4_k and q6_k (the compiler writes them): the blocks of 16 rows interleaved, so that a kernel reads the
    same value of 16 rows as one vector (kiln/quant_formats.h); its tensors have at
    least two dimensions, the second-innermost a multiple of 16.
  }];
  let parameters = (ins "::kiln::QuantScheme":$scheme, "int64_t":$groupSize);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Logical elements covered by one block (or group) of this scheme.
    int64_t getBlockElements() const;
    /// Whether scales live in a separate tensor rather than inside the blocks.
    bool isGroupWise() const;
    /// Bytes that `elements` values (whole blocks) occupy packed; -1 for partial blocks.
    int64_t getPackedBytes(int64_t elements) const;
    /// Rows stored interleaved (1: each row's blocks in order).
    int64_t getInterleave() const;
    /// The interleaved layout of `scheme` that the compiler may choose, if any.
    static std::optional<::kiln::QuantScheme> interleaved(::kiln::QuantScheme scheme);
    /// The shape of the packed bytes of a `shape`-shaped tensor: the innermost
    /// dimension counts bytes instead of values (interleaved formats: of `interleave`
    /// rows, and the second-innermost counts groups of them).
    ::llvm::SmallVector<int64_t> getPackedShape(::llvm::ArrayRef<int64_t> shape) const;
  }];
}

#endif // KILN_TYPES_TD
