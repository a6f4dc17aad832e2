// The tuning database: every schedule trial the autotuner measured, and the best
// confirmed schedule per kernel, in one SQLite file shared by compiles and tuners.
#ifndef KILN_COMPILER_TUNING_TUNINGDATABASE_H
#define KILN_COMPILER_TUNING_TUNINGDATABASE_H

#include "llvm/Support/Error.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::tuning {

/// What a schedule was measured for: the kernel's structure (kiln::tuningKey: ops,
/// shapes, dtypes, no names, no schedule), the backend's resolved target (CPU
/// features) and the compiler version. A schedule is reused only where all three match.
struct TuningKey {
  std::string kernel;
  std::string target;
  std::string compilerVersion;
};

/// One measured candidate. `timeNs` is the median kernel time per model run, set when
/// `status` is "ok". `confirmed` marks the re-measurements a tuner makes of its winner
/// and of the default at the end of a search: only those compete for a kernel's best,
/// so a candidate that was fast once by noise never becomes what compiles use.
struct Trial {
  TuningKey key;
  std::string schedule; // KernelSchedule::str()
  std::string status;   // ok, mismatch, crashed, timeout, compile-failed
  std::optional<double> timeNs;
  bool confirmed = false;
  std::string search;  // ga, sa, random, confirm, import
  std::string session; // one tuner run
  std::string model;
  std::string recordedAt; // ISO 8601 UTC, set by the database when empty
};

/// The schedule compiles take for a key: the confirmed schedule with the lowest mean
/// time (ties: the smaller schedule text, so every compile picks the same).
struct BestSchedule {
  std::string schedule;
  double meanNs = 0;
  int64_t trials = 0; // confirmed measurements behind the mean
};

/// A store of trials: a SQLite file, or a PostgreSQL database that several machines
/// share. Both hold the same schema (docs/architecture.md, "The tuner and its
/// database").
class TuningDatabase {
public:
  /// The schema this build reads and writes.
  static constexpr int kSchemaVersion = 1;
  /// The SQLite file's PRAGMA application_id: "kiln" in ASCII.
  static constexpr int32_t kApplicationId = 0x6b696c6e;

  /// Opens `location` for recording trials: a `postgresql://` (or `postgres://`) URL,
  /// else a SQLite file, created (with its directory) with the schema if it does not
  /// exist. A store that is not a kiln tuning database of a schema this build knows is
  /// an error naming it, and is left untouched.
  static llvm::Expected<std::unique_ptr<TuningDatabase>>
  openForWriting(const std::string &location);
  /// Opens `location` for lookups; a missing SQLite file, or a PostgreSQL database
  /// without kiln's tables, is no database (nullptr, nothing created).
  static llvm::Expected<std::unique_ptr<TuningDatabase>>
  openForReading(const std::string &location);

  virtual ~TuningDatabase();
  TuningDatabase(const TuningDatabase &) = delete;
  TuningDatabase &operator=(const TuningDatabase &) = delete;

  /// The file, or the URL without its password, for messages.
  const std::string &path() const { return name; }

  llvm::Error record(const Trial &trial);
  /// Records every trial in one transaction.
  virtual llvm::Error record(const std::vector<Trial> &trials) = 0;
  virtual llvm::Expected<std::optional<BestSchedule>> best(const TuningKey &key) = 0;
  /// Every trial, oldest first; with `confirmedOnly`, only the confirmed ones.
  virtual llvm::Expected<std::vector<Trial>> trials(bool confirmedOnly = false) = 0;

  /// Writes the confirmed trials as JSON lines (one object per trial), the form in
  /// which a tuned model ships its schedules.
  llvm::Error exportJsonLines(const std::string &outputPath);
  /// Records every trial of a JSON-lines file (as exportJsonLines writes); returns how
  /// many. A malformed line is an error naming the file and line; nothing is recorded.
  llvm::Expected<size_t> importJsonLines(const std::string &inputPath);

protected:
  explicit TuningDatabase(std::string name) : name(std::move(name)) {}

private:
  std::string name;
};

/// Whether `location` names a PostgreSQL database rather than a SQLite file.
bool isPostgresUrl(llvm::StringRef location);

/// $KILN_TUNING_DB, else $XDG_CACHE_HOME/kiln/tuning.sqlite, else
/// ~/.cache/kiln/tuning.sqlite.
std::string defaultDatabasePath();

} // namespace kiln::tuning

#endif // KILN_COMPILER_TUNING_TUNINGDATABASE_H
