// kiln-mark-library-products names the library it does not know.
// RUN: kiln-opt %s --kiln-mark-library-products="library=mkl" -verify-diagnostics

// expected-error @below {{kiln-mark-library-products: unknown library 'mkl' (the libraries: cublas)}}
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
