func.func @f() {
  %0 = kiln.weight "" from "m.gguf"[0] : tensor<4xf32>
  return
}
