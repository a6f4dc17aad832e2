// The tuning database on PostgreSQL (through libpq): one store that the tuners and
// compiles of several machines share.
#ifndef KILN_COMPILER_TUNING_POSTGRESTUNINGDATABASE_H
#define KILN_COMPILER_TUNING_POSTGRESTUNINGDATABASE_H

#include "compiler/Tuning/TuningDatabase.h"

namespace kiln::tuning {

/// Connects to `url` (postgresql://user@host/db?...); for writing, creates kiln's
/// tables if the database has none. See TuningDatabase::openForWriting/openForReading.
llvm::Expected<std::unique_ptr<TuningDatabase>> openPostgres(const std::string &url,
                                                             bool forWriting);

} // namespace kiln::tuning

#endif // KILN_COMPILER_TUNING_POSTGRESTUNINGDATABASE_H
