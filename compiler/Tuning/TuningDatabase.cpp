// The tuning database on SQLite, and what every store shares (see TuningDatabase.h
// and docs/architecture.md, "The tuner and its database", for the schema).
#include "compiler/Tuning/TuningDatabase.h"
#include "compiler/Tuning/PostgresTuningDatabase.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <thread>

namespace kiln::tuning {

namespace {

// Concurrent tuners (and compiles reading while a tuner writes) wait for each other's
// transactions this long; a writer holds the lock for one insert or one batch, so a
// wait this long means something is stuck, not busy.
constexpr int kBusyTimeoutMs = 30000;

constexpr const char *kSchema = R"sql(
CREATE TABLE trials(
  id INTEGER PRIMARY KEY,
  kernel TEXT NOT NULL,
  target TEXT NOT NULL,
  compiler_version TEXT NOT NULL,
  schedule TEXT NOT NULL,
  status TEXT NOT NULL
    CHECK (status IN ('ok', 'mismatch', 'crashed', 'timeout', 'compile-failed')),
  time_ns REAL CHECK ((status = 'ok') = (time_ns IS NOT NULL)),
  confirmed INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
  search TEXT NOT NULL,
  session TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT '',
  recorded_at TEXT NOT NULL);
CREATE INDEX trials_by_key ON trials(kernel, target, compiler_version);
CREATE VIEW best_schedules AS
  SELECT kernel, target, compiler_version, schedule, mean_ns, trials FROM (
    SELECT kernel, target, compiler_version, schedule, AVG(time_ns) AS mean_ns,
           COUNT(*) AS trials,
           ROW_NUMBER() OVER (PARTITION BY kernel, target, compiler_version
                              ORDER BY AVG(time_ns), schedule) AS rank
    FROM trials WHERE status = 'ok' AND confirmed = 1
    GROUP BY kernel, target, compiler_version, schedule)
  WHERE rank = 1;
)sql";

/// A prepared statement, finalized when it goes out of scope.
struct Statement {
  sqlite3_stmt *stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

std::string column(sqlite3_stmt *stmt, int i) {
  const unsigned char *text = sqlite3_column_text(stmt, i);
  return text ? reinterpret_cast<const char *>(text) : "";
}

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// Opens `path` with `flags` and checks what it holds; with `mayCreate`, an empty file
/// (one SQLite just created) gets the schema.
llvm::Expected<sqlite3 *> openChecked(const std::string &path, int flags, bool mayCreate) {
  sqlite3 *db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return error("cannot open the tuning database '" + path + "': " + message);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto closeWith = [&](const llvm::Twine &message) -> llvm::Expected<sqlite3 *> {
    sqlite3_close(db);
    return error("the tuning database '" + path + "' " + message);
  };
  // One read that touches the header: a file that is not SQLite fails here.
  auto pragma = [&](const char *sql, int64_t &value) {
    Statement s;
    if (sqlite3_prepare_v2(db, sql, -1, &s.stmt, nullptr) != SQLITE_OK ||
        sqlite3_step(s.stmt) != SQLITE_ROW)
      return false;
    value = sqlite3_column_int64(s.stmt, 0);
    return true;
  };
  // The three reads in one transaction, so that they see one state of the file: read
  // one by one, another tuner's schema could be committed between them (an
  // application_id of 0 and tables: "another application's database").
  int64_t applicationId = 0, version = 0, objects = 0;
  if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK ||
      !pragma("PRAGMA application_id", applicationId) || !pragma("PRAGMA user_version", version) ||
      !pragma("SELECT count(*) FROM sqlite_master", objects) ||
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    return closeWith("is not a SQLite database kiln can read (" + std::string(sqlite3_errmsg(db)) +
                     "); it was left as it is: move it away or name another with "
                     "--tuning-db or KILN_TUNING_DB");
  if (applicationId != TuningDatabase::kApplicationId && (applicationId != 0 || objects != 0))
    return closeWith("is a SQLite database of another application (application_id " +
                     std::to_string(applicationId) +
                     "), not a kiln tuning database; it was left as it is");
  if (applicationId == TuningDatabase::kApplicationId && version != TuningDatabase::kSchemaVersion)
    return closeWith("has schema version " + std::to_string(version) + "; this kiln reads version " +
                     std::to_string(TuningDatabase::kSchemaVersion) + ". It was left as it is");
  if (applicationId == 0) {
    if (!mayCreate)
      return closeWith("is empty (no kiln schema)");
    // Two tuners may create the file at once: the first to take the write lock
    // creates the schema, the other finds it.
    char *message = nullptr;
    int64_t id = 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, &message) != SQLITE_OK ||
        !pragma("PRAGMA application_id", id)) {
      std::string why = message ? message : sqlite3_errmsg(db);
      sqlite3_free(message);
      return closeWith("cannot be initialized: " + why);
    }
    if (id == 0) {
      std::string create = std::string(kSchema) + "PRAGMA application_id = " +
                           std::to_string(TuningDatabase::kApplicationId) +
                           "; PRAGMA user_version = " +
                           std::to_string(TuningDatabase::kSchemaVersion) + ";";
      if (sqlite3_exec(db, create.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        std::string why = message ? message : sqlite3_errmsg(db);
        sqlite3_free(message);
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        return closeWith("cannot be initialized: " + why);
      }
    }
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, &message) != SQLITE_OK) {
      std::string why = message ? message : sqlite3_errmsg(db);
      sqlite3_free(message);
      return closeWith("cannot be initialized: " + why);
    }
  }
  return db;
}

} // namespace

std::string defaultDatabasePath() {
  if (const char *path = std::getenv("KILN_TUNING_DB"); path && *path)
    return path;
  llvm::SmallString<256> cache;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    cache = xdg;
  else if (const char *home = std::getenv("HOME"); home && *home)
    llvm::sys::path::append(cache, home, ".cache");
  llvm::sys::path::append(cache, "kiln", "tuning.sqlite");
  return std::string(cache);
}

namespace {

/// The SQLite store: one file.
class SqliteTuningDatabase : public TuningDatabase {
public:
  SqliteTuningDatabase(sqlite3 *db, std::string file) : TuningDatabase(file), db(db) {}
  ~SqliteTuningDatabase() override { sqlite3_close(db); }

  llvm::Error execute(const char *sql);
  llvm::Error useWriteAheadLog();
  llvm::Error record(const std::vector<Trial> &trials) override;
  llvm::Expected<std::optional<BestSchedule>> best(const TuningKey &key) override;
  llvm::Expected<std::vector<Trial>> trials(bool confirmedOnly) override;

private:
  llvm::Error fail(const llvm::Twine &what) const;
  llvm::Error insert(const Trial &trial);

  sqlite3 *db;
};

} // namespace

bool isPostgresUrl(llvm::StringRef location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

TuningDatabase::~TuningDatabase() = default;

llvm::Expected<std::unique_ptr<TuningDatabase>>
TuningDatabase::openForWriting(const std::string &path) {
  if (isPostgresUrl(path))
    return openPostgres(path, /*forWriting=*/true);
  llvm::StringRef directory = llvm::sys::path::parent_path(path);
  if (!directory.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(directory))
      return error("cannot create the directory of the tuning database '" + path +
                   "': " + ec.message());
  llvm::Expected<sqlite3 *> db =
      openChecked(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, true);
  if (!db)
    return db.takeError();
  auto opened = std::make_unique<SqliteTuningDatabase>(*db, path);
  if (llvm::Error e = opened->useWriteAheadLog())
    return std::move(e);
  return std::move(opened);
}

llvm::Expected<std::unique_ptr<TuningDatabase>>
TuningDatabase::openForReading(const std::string &path) {
  if (isPostgresUrl(path))
    return openPostgres(path, /*forWriting=*/false);
  if (!llvm::sys::fs::exists(path))
    return nullptr;
  llvm::Expected<sqlite3 *> db =
      openChecked(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, false);
  if (!db)
    return db.takeError();
  return std::make_unique<SqliteTuningDatabase>(*db, path);
}

llvm::Error TuningDatabase::record(const Trial &trial) { return record(std::vector<Trial>{trial}); }

namespace {

llvm::Error SqliteTuningDatabase::fail(const llvm::Twine &what) const {
  return error("tuning database '" + path() + "': " + what + ": " + sqlite3_errmsg(db));
}

llvm::Error SqliteTuningDatabase::execute(const char *sql) {
  char *message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK)
    return llvm::Error::success();
  std::string why = message ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  return error("tuning database '" + path() + "': " + sql + ": " + why);
}

/// WAL: readers (compiles) never block the writer (a tuner) nor each other. Switching a
/// new file to WAL takes an exclusive lock, and while another connection reads the file
/// (a second tuner opening the same new file) SQLite answers SQLITE_BUSY at once, without
/// the busy handler, or leaves the mode as it was: so retry until the busy timeout.
llvm::Error SqliteTuningDatabase::useWriteAheadLog() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    std::string mode;
    char *message = nullptr;
    int status = sqlite3_exec(
        db, "PRAGMA journal_mode = WAL",
        [](void *out, int columns, char **values, char **) {
          if (columns > 0 && values[0])
            *static_cast<std::string *>(out) = values[0];
          return 0;
        },
        &mode, &message);
    std::string why = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    if (status == SQLITE_OK && mode == "wal")
      return llvm::Error::success();
    bool busy = status == SQLITE_BUSY || status == SQLITE_LOCKED || status == SQLITE_OK;
    if (!busy || std::chrono::steady_clock::now() >= deadline)
      return error("tuning database '" + path() + "': cannot switch it to write-ahead logging: " +
                   (status == SQLITE_OK ? "the journal mode stayed '" + mode + "'" : why));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

llvm::Error SqliteTuningDatabase::insert(const Trial &trial) {
  Statement s;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO trials(kernel, target, compiler_version, schedule, status, "
                         "time_ns, confirmed, search, session, model, recorded_at) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(NULLIF(?, ''), "
                         "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
                         -1, &s.stmt, nullptr) != SQLITE_OK)
    return fail("cannot prepare an insert");
  const std::string *texts[] = {&trial.key.kernel, &trial.key.target, &trial.key.compilerVersion,
                                &trial.schedule, &trial.status};
  for (int i = 0; i < 5; ++i)
    sqlite3_bind_text(s.stmt, i + 1, texts[i]->c_str(), -1, SQLITE_TRANSIENT);
  if (trial.timeNs)
    sqlite3_bind_double(s.stmt, 6, *trial.timeNs);
  else
    sqlite3_bind_null(s.stmt, 6);
  sqlite3_bind_int(s.stmt, 7, trial.confirmed ? 1 : 0);
  sqlite3_bind_text(s.stmt, 8, trial.search.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.stmt, 9, trial.session.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.stmt, 10, trial.model.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.stmt, 11, trial.recordedAt.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(s.stmt) != SQLITE_DONE)
    return fail("cannot record a trial of schedule '" + trial.schedule + "'");
  return llvm::Error::success();
}

llvm::Error SqliteTuningDatabase::record(const std::vector<Trial> &trials) {
  // IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
  // instead of one failing to upgrade its read lock.
  if (llvm::Error e = execute("BEGIN IMMEDIATE"))
    return e;
  for (const Trial &trial : trials)
    if (llvm::Error e = insert(trial)) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    }
  return execute("COMMIT");
}

llvm::Expected<std::optional<BestSchedule>> SqliteTuningDatabase::best(const TuningKey &key) {
  Statement s;
  if (sqlite3_prepare_v2(db,
                         "SELECT schedule, mean_ns, trials FROM best_schedules WHERE kernel = ? "
                         "AND target = ? AND compiler_version = ?",
                         -1, &s.stmt, nullptr) != SQLITE_OK)
    return fail("cannot prepare a lookup");
  sqlite3_bind_text(s.stmt, 1, key.kernel.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.stmt, 2, key.target.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.stmt, 3, key.compilerVersion.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(s.stmt);
  if (rc == SQLITE_DONE)
    return std::nullopt;
  if (rc != SQLITE_ROW)
    return fail("cannot look up a kernel's best schedule");
  return BestSchedule{column(s.stmt, 0), sqlite3_column_double(s.stmt, 1),
                      sqlite3_column_int64(s.stmt, 2)};
}

llvm::Expected<std::vector<Trial>> SqliteTuningDatabase::trials(bool confirmedOnly) {
  Statement s;
  std::string sql = "SELECT kernel, target, compiler_version, schedule, status, time_ns, "
                    "confirmed, search, session, model, recorded_at FROM trials";
  if (confirmedOnly)
    sql += " WHERE confirmed = 1";
  sql += " ORDER BY id";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s.stmt, nullptr) != SQLITE_OK)
    return fail("cannot prepare a query of the trials");
  std::vector<Trial> result;
  int rc;
  while ((rc = sqlite3_step(s.stmt)) == SQLITE_ROW) {
    Trial t;
    t.key = {column(s.stmt, 0), column(s.stmt, 1), column(s.stmt, 2)};
    t.schedule = column(s.stmt, 3);
    t.status = column(s.stmt, 4);
    if (sqlite3_column_type(s.stmt, 5) != SQLITE_NULL)
      t.timeNs = sqlite3_column_double(s.stmt, 5);
    t.confirmed = sqlite3_column_int(s.stmt, 6) != 0;
    t.search = column(s.stmt, 7);
    t.session = column(s.stmt, 8);
    t.model = column(s.stmt, 9);
    t.recordedAt = column(s.stmt, 10);
    result.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE)
    return fail("cannot read the trials");
  return result;
}

} // namespace

llvm::Error TuningDatabase::exportJsonLines(const std::string &outputPath) {
  llvm::Expected<std::vector<Trial>> confirmed = trials(/*confirmedOnly=*/true);
  if (!confirmed)
    return confirmed.takeError();
  std::ofstream out(outputPath, std::ios::binary | std::ios::trunc);
  if (!out)
    return error("cannot write '" + outputPath + "'");
  for (const Trial &t : *confirmed) {
    nlohmann::ordered_json line = {{"kernel", t.key.kernel},
                                   {"target", t.key.target},
                                   {"compiler_version", t.key.compilerVersion},
                                   {"schedule", t.schedule},
                                   {"status", t.status},
                                   {"time_ns", t.timeNs ? nlohmann::ordered_json(*t.timeNs)
                                                        : nlohmann::ordered_json(nullptr)},
                                   {"search", t.search},
                                   {"session", t.session},
                                   {"model", t.model},
                                   {"recorded_at", t.recordedAt}};
    out << line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  }
  out.close();
  if (!out)
    return error("cannot write '" + outputPath + "'");
  return llvm::Error::success();
}

llvm::Expected<size_t> TuningDatabase::importJsonLines(const std::string &inputPath) {
  std::ifstream in(inputPath, std::ios::binary);
  if (!in)
    return error("cannot read '" + inputPath + "'");
  std::vector<Trial> parsed;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto bad = [&](const std::string &why) {
      return error(inputPath + ":" + std::to_string(number) + ": " + why);
    };
    nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object())
      return bad("not a JSON object");
    Trial t;
    for (auto [name, field] : {std::pair{"kernel", &t.key.kernel},
                               {"target", &t.key.target},
                               {"compiler_version", &t.key.compilerVersion},
                               {"schedule", &t.schedule},
                               {"status", &t.status}}) {
      auto it = json.find(name);
      if (it == json.end() || !it->is_string())
        return bad(std::string("needs a string \"") + name + "\"");
      *field = it->get<std::string>();
    }
    auto time = json.find("time_ns");
    if (t.status == "ok" && time != json.end() && time->is_number())
      t.timeNs = time->get<double>();
    if (t.status == "ok" && !t.timeNs)
      return bad("an \"ok\" trial needs a number \"time_ns\"");
    t.confirmed = true;
    t.search = "import";
    t.session = json.value("session", "");
    t.model = json.value("model", "");
    parsed.push_back(std::move(t));
  }
  if (llvm::Error e = record(parsed))
    return std::move(e);
  return parsed.size();
}

} // namespace kiln::tuning
