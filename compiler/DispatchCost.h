// What a profile needs to know about a dispatch that only the compiler can tell: the
// arithmetic it does, the bytes it moves, what it computes and where in the model it
// comes from. The artifact carries them per dispatch (artifact.fbs) for the runtime's
// kiln_session_dispatch_profile and kiln-run/kiln-generate --profile.
#ifndef KILN_COMPILER_DISPATCHCOST_H
#define KILN_COMPILER_DISPATCHCOST_H

#include "dialects/Kiln/KilnDialect.h"
#include "runtime/src/ArtifactWriter.h"

namespace kiln {

/// Fills `call`'s flops, bytes, summary and location.
///
/// FLOPs are the model's arithmetic, not the kernel's: every arith/math op of a
/// linalg.generic body (but constants and casts) once per point of its iteration space;
/// kiln.rms_norm, kiln.rope and kiln.attention their textbook counts (attention over
/// every key, masked or not). Decoding packed weights, gathers, copies and reshapes count
/// nothing. Bytes are each input read once (an input only gathered from or sliced: the
/// rows or the slice read) plus the results. The summary names the op doing most of the
/// arithmetic, its iteration space and the type of the largest float or packed input
/// when not f32 ("matmul 1x1024x640 q4_k +2": two more ops fused in). The location is a
/// NameLoc's name (a GGUF tensor, an ONNX node) or a file's name:line:col.
void describeForProfiles(DispatchOp dispatch, artifact::DispatchDesc &call);

} // namespace kiln

#endif // KILN_COMPILER_DISPATCHCOST_H
