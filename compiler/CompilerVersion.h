// The compiler's version: written into every artifact and part of every tuning
// database key (a schedule measured with one compiler is not reused by another).
#ifndef KILN_COMPILER_COMPILERVERSION_H
#define KILN_COMPILER_COMPILERVERSION_H

namespace kiln {
constexpr const char *kCompilerVersion = "kiln 0.2.0";
} // namespace kiln

#endif // KILN_COMPILER_COMPILERVERSION_H
