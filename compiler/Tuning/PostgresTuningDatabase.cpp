// The tuning database's schema and queries on PostgreSQL. The tables carry a kiln_
// prefix (the database may hold others), and kiln_tuning_schema records the schema
// version, as PRAGMA user_version does in a SQLite file.
#include "compiler/Tuning/PostgresTuningDatabase.h"

#include <libpq-fe.h>

namespace kiln::tuning {

namespace {

constexpr const char *kSchema = R"sql(
CREATE TABLE kiln_trials(
  id BIGSERIAL PRIMARY KEY,
  kernel TEXT NOT NULL,
  target TEXT NOT NULL,
  compiler_version TEXT NOT NULL,
  schedule TEXT NOT NULL,
  status TEXT NOT NULL
    CHECK (status IN ('ok', 'mismatch', 'crashed', 'timeout', 'compile-failed')),
  time_ns DOUBLE PRECISION CHECK ((status = 'ok') = (time_ns IS NOT NULL)),
  confirmed BOOLEAN NOT NULL DEFAULT FALSE,
  search TEXT NOT NULL,
  session TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT '',
  recorded_at TEXT NOT NULL);
CREATE INDEX kiln_trials_by_key ON kiln_trials(kernel, target, compiler_version);
CREATE VIEW kiln_best_schedules AS
  SELECT kernel, target, compiler_version, schedule, mean_ns, trials FROM (
    SELECT kernel, target, compiler_version, schedule, AVG(time_ns) AS mean_ns,
           COUNT(*) AS trials,
           ROW_NUMBER() OVER (PARTITION BY kernel, target, compiler_version
                              ORDER BY AVG(time_ns), schedule COLLATE "C") AS rank
    FROM kiln_trials WHERE status = 'ok' AND confirmed
    GROUP BY kernel, target, compiler_version, schedule) ranked
  WHERE rank = 1;
CREATE TABLE kiln_tuning_schema(version INTEGER NOT NULL);
)sql";

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// `url` without a password (postgresql://user:secret@host → postgresql://user@host),
/// for messages.
std::string redacted(const std::string &url) {
  size_t scheme = url.find("://"), at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos)
    return url;
  size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at)
    return url;
  return url.substr(0, colon) + url.substr(at);
}

/// A query result, cleared when it goes out of scope.
struct Result {
  PGresult *result;
  ~Result() { PQclear(result); }
  bool ok() const {
    ExecStatusType status = PQresultStatus(result);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  }
  std::string text(int row, int column) const { return PQgetvalue(result, row, column); }
  bool null(int row, int column) const { return PQgetisnull(result, row, column); }
};

class PostgresTuningDatabase : public TuningDatabase {
public:
  PostgresTuningDatabase(PGconn *connection, std::string url)
      : TuningDatabase(redacted(url)), connection(connection) {}
  ~PostgresTuningDatabase() override { PQfinish(connection); }

  /// Runs `sql` with text `params`.
  Result run(const char *sql, const std::vector<std::string> &params = {}) {
    std::vector<const char *> values;
    for (const std::string &p : params)
      values.push_back(p.c_str());
    return {PQexecParams(connection, sql, static_cast<int>(values.size()), nullptr,
                         values.data(), nullptr, nullptr, 0)};
  }
  llvm::Error fail(const llvm::Twine &what) {
    return error("tuning database '" + path() + "': " + what + ": " +
                 PQerrorMessage(connection));
  }

  llvm::Error record(const std::vector<Trial> &trials) override {
    if (!run("BEGIN").ok())
      return fail("cannot begin a transaction");
    for (const Trial &t : trials) {
      Result r = run("INSERT INTO kiln_trials(kernel, target, compiler_version, schedule, "
                     "status, time_ns, confirmed, search, session, model, recorded_at) VALUES "
                     "($1, $2, $3, $4, $5, NULLIF($6, '')::DOUBLE PRECISION, $7::BOOLEAN, $8, "
                     "$9, $10, COALESCE(NULLIF($11, ''), to_char(now() AT TIME ZONE 'utc', "
                     "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')))",
                     {t.key.kernel, t.key.target, t.key.compilerVersion, t.schedule, t.status,
                      t.timeNs ? std::to_string(*t.timeNs) : "", t.confirmed ? "true" : "false",
                      t.search, t.session, t.model, t.recordedAt});
      if (!r.ok()) {
        llvm::Error e = fail("cannot record a trial of schedule '" + t.schedule + "'");
        run("ROLLBACK");
        return e;
      }
    }
    if (!run("COMMIT").ok())
      return fail("cannot commit the trials");
    return llvm::Error::success();
  }

  llvm::Expected<std::optional<BestSchedule>> best(const TuningKey &key) override {
    Result r = run("SELECT schedule, mean_ns, trials FROM kiln_best_schedules WHERE kernel = $1 "
                   "AND target = $2 AND compiler_version = $3",
                   {key.kernel, key.target, key.compilerVersion});
    if (!r.ok())
      return fail("cannot look up a kernel's best schedule");
    if (PQntuples(r.result) == 0)
      return std::nullopt;
    return BestSchedule{r.text(0, 0), std::stod(r.text(0, 1)), std::stoll(r.text(0, 2))};
  }

  llvm::Expected<std::vector<Trial>> trials(bool confirmedOnly) override {
    Result r = run(confirmedOnly
                       ? "SELECT kernel, target, compiler_version, schedule, status, time_ns, "
                         "confirmed, search, session, model, recorded_at FROM kiln_trials "
                         "WHERE confirmed ORDER BY id"
                       : "SELECT kernel, target, compiler_version, schedule, status, time_ns, "
                         "confirmed, search, session, model, recorded_at FROM kiln_trials "
                         "ORDER BY id");
    if (!r.ok())
      return fail("cannot read the trials");
    std::vector<Trial> result;
    for (int row = 0; row < PQntuples(r.result); ++row) {
      Trial t;
      t.key = {r.text(row, 0), r.text(row, 1), r.text(row, 2)};
      t.schedule = r.text(row, 3);
      t.status = r.text(row, 4);
      if (!r.null(row, 5))
        t.timeNs = std::stod(r.text(row, 5));
      t.confirmed = r.text(row, 6) == "t";
      t.search = r.text(row, 7);
      t.session = r.text(row, 8);
      t.model = r.text(row, 9);
      t.recordedAt = r.text(row, 10);
      result.push_back(std::move(t));
    }
    return result;
  }

  /// Checks (and for writing, creates) kiln's tables. Returns false without an error
  /// when reading a database that has none.
  llvm::Expected<bool> checkSchema(bool forWriting) {
    if (forWriting) {
      // One creator at a time: the others wait for the lock, then find the tables.
      if (!run("BEGIN").ok() || !run("SELECT pg_advisory_xact_lock(1802071150)").ok())
        return fail("cannot lock the schema");
    }
    Result exists = run("SELECT to_regclass('kiln_tuning_schema') IS NOT NULL, "
                        "to_regclass('kiln_trials') IS NOT NULL");
    if (!exists.ok())
      return fail("cannot read the catalog");
    bool hasSchema = exists.text(0, 0) == "t", hasTrials = exists.text(0, 1) == "t";
    auto finish = [&](llvm::Expected<bool> result) -> llvm::Expected<bool> {
      if (forWriting)
        run(result && *result ? "COMMIT" : "ROLLBACK");
      return result;
    };
    if (!hasSchema && hasTrials)
      return finish(error("the tuning database '" + path() +
                          "' has a kiln_trials table but no kiln_tuning_schema: not a kiln "
                          "tuning database; it was left as it is"));
    if (!hasSchema) {
      if (!forWriting)
        return false;
      std::string create = std::string(kSchema) +
                           "INSERT INTO kiln_tuning_schema VALUES (" +
                           std::to_string(kSchemaVersion) + ");";
      Result created = {PQexec(connection, create.c_str())};
      if (!created.ok())
        return finish(fail("cannot create kiln's tables"));
      return finish(true);
    }
    Result version = run("SELECT version FROM kiln_tuning_schema");
    if (!version.ok() || PQntuples(version.result) != 1)
      return finish(fail("cannot read the schema version"));
    if (version.text(0, 0) != std::to_string(kSchemaVersion))
      return finish(error("the tuning database '" + path() + "' has schema version " +
                          version.text(0, 0) + "; this kiln reads version " +
                          std::to_string(kSchemaVersion) + ". It was left as it is"));
    return finish(true);
  }

private:
  PGconn *connection;
};

} // namespace

llvm::Expected<std::unique_ptr<TuningDatabase>> openPostgres(const std::string &url,
                                                             bool forWriting) {
  PGconn *connection = PQconnectdb(url.c_str());
  if (PQstatus(connection) != CONNECTION_OK) {
    std::string why = PQerrorMessage(connection);
    PQfinish(connection);
    return error("cannot connect to the tuning database '" + redacted(url) + "': " + why);
  }
  PQsetNoticeProcessor(connection, [](void *, const char *) {}, nullptr);
  auto db = std::make_unique<PostgresTuningDatabase>(connection, url);
  llvm::Expected<bool> ready = db->checkSchema(forWriting);
  if (!ready)
    return ready.takeError();
  if (!*ready)
    return nullptr;
  return std::move(db);
}

} // namespace kiln::tuning
