// Building kiln ops from C++: result types are inferred and verifiers reject bad ops.
#include "compiler/Registration.h"
#include "dialects/Kiln/KilnDialect.h"
#include "kiln/quant_formats.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace kiln;

namespace {

class KilnDialectTest : public ::testing::Test {
protected:
  KilnDialectTest() : builder(&context) {
    DialectRegistry registry;
    registerDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    module = ModuleOp::create(builder.getUnknownLoc());
    auto func = func::FuncOp::create(builder, builder.getUnknownLoc(), "test",
                                     builder.getFunctionType({}, {}));
    module->push_back(func);
    builder.setInsertionPointToStart(func.addEntryBlock());
    // Keep diagnostics out of the test output; tests look at their text.
    handler.emplace(&context, [this](Diagnostic &diag) {
      messages.push_back(diag.str());
      return success();
    });
  }

  RankedTensorType tensor(ArrayRef<int64_t> shape, Type element) {
    return RankedTensorType::get(shape, element);
  }
  Value weight(RankedTensorType type) {
    return WeightOp::create(builder, builder.getUnknownLoc(), type, "w", "m.gguf", 0, DenseI64ArrayAttr(), StringAttr(),
                            DenseF32ArrayAttr());
  }
  /// Terminates the test function and verifies the module.
  LogicalResult verifyModule() {
    func::ReturnOp::create(builder, builder.getUnknownLoc());
    return verify(*module);
  }
  QuantType quant(QuantScheme scheme, int64_t group = 0) {
    return QuantType::get(&context, scheme, group);
  }

  MLIRContext context;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
  std::vector<std::string> messages;
  std::optional<ScopedDiagnosticHandler> handler;
};

TEST_F(KilnDialectTest, quant_scheme_names_match_the_format_table) {
  for (int s = 0; s < KILN_QUANT_SCHEME_COUNT; ++s)
    EXPECT_EQ(stringifyQuantScheme(static_cast<QuantScheme>(s)), kiln_quant_formats[s].name);
}

TEST_F(KilnDialectTest, quant_type_block_elements_come_from_the_table) {
  EXPECT_EQ(quant(QuantScheme::q4_k).getBlockElements(), 256);
  EXPECT_FALSE(quant(QuantScheme::q4_k).isGroupWise());
  EXPECT_EQ(quant(QuantScheme::int4, 64).getBlockElements(), 64);
  EXPECT_TRUE(quant(QuantScheme::int4, 64).isGroupWise());
}

TEST_F(KilnDialectTest, quant_type_rejects_a_group_size_on_block_formats) {
  auto emit = [&] { return mlir::emitError(builder.getUnknownLoc()); };
  EXPECT_FALSE(QuantType::getChecked(emit, &context, QuantScheme::q8_0, int64_t{32}));
  EXPECT_FALSE(QuantType::getChecked(emit, &context, QuantScheme::int8, int64_t{0}));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0], "q8_0 has a fixed block size of 32 elements; it takes no group size");
}

TEST_F(KilnDialectTest, gather_of_a_packed_table_infers_f32_rows) {
  Value table = weight(tensor({1000, 64}, quant(QuantScheme::q8_0)));
  Value ids = weight(tensor({2, 5}, builder.getI32Type()));
  auto gather = GatherOp::create(builder, builder.getUnknownLoc(), table, ids);
  EXPECT_EQ(gather.getType(), tensor({2, 5, 64}, builder.getF32Type()));
  EXPECT_TRUE(succeeded(verifyModule())) << ::testing::PrintToString(messages);
}

TEST_F(KilnDialectTest, attention_infers_grouped_query_output_shape) {
  Type f16 = builder.getF16Type();
  Value q = weight(tensor({3, 7, 8, 64}, f16));
  Value k = weight(tensor({3, 11, 2, 64}, f16));
  Value v = weight(tensor({3, 11, 2, 32}, f16));
  auto attention = AttentionOp::create(builder, builder.getUnknownLoc(), q, k, v,
                                       /*mask=*/Value(), /*query_offset=*/Value(),
                                       /*causal=*/true, /*scale=*/nullptr, /*window=*/nullptr,
                                       /*ring_positions=*/nullptr);
  EXPECT_EQ(attention.getType(), tensor({3, 7, 8, 32}, f16));
  EXPECT_TRUE(succeeded(verifyModule())) << ::testing::PrintToString(messages);
}

TEST_F(KilnDialectTest, dequantize_infers_f32_of_the_same_shape) {
  Value packed = weight(tensor({16, 512}, quant(QuantScheme::q4_k)));
  auto dequantize = DequantizeOp::create(builder, builder.getUnknownLoc(), packed);
  EXPECT_EQ(dequantize.getType(), tensor({16, 512}, builder.getF32Type()));
}

TEST_F(KilnDialectTest, verifier_rejects_rms_norm_weight_of_wrong_length) {
  Type f32 = builder.getF32Type();
  Value x = weight(tensor({4, 64}, f32));
  Value w = weight(tensor({32}, f32));
  RmsNormOp::create(builder, builder.getUnknownLoc(), x, w, builder.getF32FloatAttr(1e-6f));
  EXPECT_TRUE(failed(verifyModule()));
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.front(),
            "'kiln.rms_norm' op weight has 32 elements but the innermost dimension has 64");
}

} // namespace
