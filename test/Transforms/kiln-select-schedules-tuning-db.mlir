// kiln-select-schedules with a tuning database: a missing file is no database (and is
// not created); a file that is not a kiln tuning database, or a database without the
// target it keys on, is an error; explicit knobs win over the database.
// RUN: rm -rf %t && mkdir -p %t
// RUN: kiln-opt %s --kiln-select-schedules="tuning-db=%t/absent.sqlite target=x86-64-linux" | FileCheck %s --check-prefix=MISSING
// RUN: not ls %t/absent.sqlite
// RUN: kiln-opt %s --kiln-select-schedules="tuning-db=%t/absent.sqlite target=x86-64-linux schedule=vector_width=4" | FileCheck %s --check-prefix=KNOBS
// This file is not a database: the pass names it and leaves it as it is.
// RUN: cp %s %t/copy.mlir
// RUN: kiln-opt %s --verify-diagnostics --kiln-select-schedules="tuning-db=%t/copy.mlir target=x86-64-linux"
// RUN: cmp %s %t/copy.mlir
// RUN: not kiln-opt %s --kiln-select-schedules="tuning-db=%t/copy.mlir" 2>&1 | FileCheck %s --check-prefix=NO-TARGET

#id = affine_map<(d0) -> (d0)>

// MISSING-LABEL: func.func @exp
// MISSING-NOT: kiln.schedule
// KNOBS: attributes {kiln.schedule = "vector_width=4"}
// NO-TARGET: error: kiln-select-schedules: tuning-db needs the target it keys on
// expected-error-re @+1 {{the tuning database '{{.*}}copy.mlir' is not a SQLite database kiln can read ({{.*}}); it was left as it is}}
func.func @exp(%x: tensor<8xf32>) -> tensor<8xf32> {
  %a = kiln.dispatch ins(%x : tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%i : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %v = math.exp %in : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  return %a : tensor<8xf32>
}
