// The tuning database: schema, best-per-key lookups, what it refuses to open, and
// writers running at once.
#include "compiler/Tuning/TuningDatabase.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace kiln::tuning;

namespace {

class TuningDatabaseTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-tuning-test", directory));
  }
  void TearDown() override { llvm::sys::fs::remove_directories(directory); }
  std::string path(llvm::StringRef name) const {
    llvm::SmallString<256> p(directory);
    llvm::sys::path::append(p, name);
    return std::string(p);
  }
  static std::string bytes(const std::string &file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void sql(const std::string &file, const char *statement) {
    sqlite3 *db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, statement, nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  static std::unique_ptr<TuningDatabase> open(const std::string &file) {
    auto db = TuningDatabase::openForWriting(file);
    EXPECT_TRUE(static_cast<bool>(db)) << (db ? "" : llvm::toString(db.takeError()));
    return db ? std::move(*db) : nullptr;
  }
  static std::string openError(const std::string &file) {
    auto db = TuningDatabase::openForWriting(file);
    return db ? "" : llvm::toString(db.takeError());
  }

  llvm::SmallString<128> directory;
};

const TuningKey kKey{"^bb0(%arg0: tensor<1x64xf32>): ...", "x86-64-linux-avx2", "kiln 0.1.0"};

Trial trial(const TuningKey &key, const std::string &schedule, std::optional<double> ns,
            bool confirmed, const std::string &status = "ok") {
  Trial t;
  t.key = key;
  t.schedule = schedule;
  t.status = status;
  t.timeNs = ns;
  t.confirmed = confirmed;
  t.search = confirmed ? "confirm" : "ga";
  t.session = "test";
  return t;
}

TEST_F(TuningDatabaseTest, best_is_the_lowest_confirmed_mean_of_the_key) {
  std::string file = path("nested/dir/tuning.sqlite");
  auto db = open(file);
  ASSERT_TRUE(db);
  ASSERT_FALSE(static_cast<bool>(db->record({
      trial(kKey, "vector_width=8", 100, true),
      trial(kKey, "vector_width=8", 120, true), // mean 110
      trial(kKey, "vector_width=16", 105, true),
      trial(kKey, "vector_width=16", 125, true), // mean 115
      trial(kKey, "vector_width=32", 50, false), // fast once, never confirmed
      trial(kKey, "vector_width=4", std::nullopt, true, "crashed"),
      trial({kKey.kernel, "arm-64-linux", kKey.compilerVersion}, "vector_width=4", 10, true),
      trial({kKey.kernel, kKey.target, "kiln 0.0.9"}, "vector_width=4", 10, true),
  })));
  auto best = db->best(kKey);
  ASSERT_TRUE(static_cast<bool>(best)) << llvm::toString(best.takeError());
  ASSERT_TRUE(best->has_value());
  EXPECT_EQ((*best)->schedule, "vector_width=8");
  EXPECT_DOUBLE_EQ((*best)->meanNs, 110);
  EXPECT_EQ((*best)->trials, 2);
  auto other = db->best({"another kernel", kKey.target, kKey.compilerVersion});
  ASSERT_TRUE(static_cast<bool>(other));
  EXPECT_FALSE(other->has_value());
  auto all = db->trials();
  ASSERT_TRUE(static_cast<bool>(all));
  EXPECT_EQ(all->size(), 8u);
}

TEST_F(TuningDatabaseTest, equal_means_pick_the_same_schedule_every_time) {
  auto db = open(path("tuning.sqlite"));
  ASSERT_TRUE(db);
  ASSERT_FALSE(static_cast<bool>(db->record(trial(kKey, "vector_width=8", 100, true))));
  ASSERT_FALSE(static_cast<bool>(db->record(trial(kKey, "vector_width=16", 100, true))));
  auto best = db->best(kKey);
  ASSERT_TRUE(best && best->has_value());
  EXPECT_EQ((*best)->schedule, "vector_width=16"); // the smaller text
}

TEST_F(TuningDatabaseTest, rejects_an_ok_trial_without_a_time) {
  auto db = open(path("tuning.sqlite"));
  ASSERT_TRUE(db);
  llvm::Error e = db->record(trial(kKey, "vector_width=8", std::nullopt, true));
  EXPECT_TRUE(static_cast<bool>(e));
  llvm::consumeError(std::move(e));
}

TEST_F(TuningDatabaseTest, missing_file_for_reading_is_no_database_and_creates_nothing) {
  std::string file = path("absent.sqlite");
  auto db = TuningDatabase::openForReading(file);
  ASSERT_TRUE(static_cast<bool>(db));
  EXPECT_EQ(db->get(), nullptr);
  EXPECT_FALSE(llvm::sys::fs::exists(file));
}

TEST_F(TuningDatabaseTest, uses_write_ahead_logging) {
  std::string file = path("tuning.sqlite");
  ASSERT_TRUE(open(file));
  sqlite3 *db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt *stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char *>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(TuningDatabaseTest, rejects_a_file_that_is_not_sqlite_and_leaves_it_alone) {
  std::string file = path("notes.sqlite");
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < 300; ++i)
      out << "these are someone's notes, not a database\n";
  }
  std::string before = bytes(file);
  std::string error = openError(file);
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("is not a SQLite database"), std::string::npos) << error;
  auto reading = TuningDatabase::openForReading(file);
  ASSERT_FALSE(static_cast<bool>(reading));
  llvm::consumeError(reading.takeError());
  EXPECT_EQ(bytes(file), before);
}

TEST_F(TuningDatabaseTest, rejects_another_applications_sqlite_database_and_leaves_it_alone) {
  std::string file = path("other.sqlite");
  sql(file, "CREATE TABLE songs(title TEXT); INSERT INTO songs VALUES ('x');");
  std::string before = bytes(file);
  std::string error = openError(file);
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("another application"), std::string::npos) << error;
  EXPECT_EQ(bytes(file), before);
}

TEST_F(TuningDatabaseTest, rejects_a_schema_version_it_does_not_know) {
  std::string file = path("newer.sqlite");
  ASSERT_TRUE(open(file));
  sql(file, "PRAGMA user_version = 2");
  std::string before = bytes(file);
  std::string error = openError(file);
  EXPECT_NE(error.find("schema version 2"), std::string::npos) << error;
  EXPECT_EQ(bytes(file), before);
}

TEST_F(TuningDatabaseTest, threads_writing_at_once_lose_no_trial) {
  std::string file = path("tuning.sqlite");
  ASSERT_TRUE(open(file));
  auto writer = [&](int id) {
    auto db = TuningDatabase::openForWriting(file);
    ASSERT_TRUE(static_cast<bool>(db)) << llvm::toString(db.takeError());
    for (int i = 0; i < 150; ++i) {
      llvm::Error e = (*db)->record(
          trial(kKey, "vector_width=8 writer=" + std::to_string(id), 100 + i, false));
      ASSERT_FALSE(static_cast<bool>(e)) << llvm::toString(std::move(e));
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  a.join();
  b.join();
  auto all = open(file)->trials();
  ASSERT_TRUE(static_cast<bool>(all));
  EXPECT_EQ(all->size(), 300u);
}

TEST_F(TuningDatabaseTest, processes_creating_and_writing_one_file_at_once_lose_no_trial) {
  // Both start before the file exists: one creates the schema, the other finds it.
  std::string file = path("shared/tuning.sqlite");
  pid_t children[2];
  for (pid_t &child : children) {
    child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto db = TuningDatabase::openForWriting(file);
      // The child's error goes to stderr: the parent's failure says only "status".
      if (!db) {
        std::fprintf(stderr, "child %d: %s\n", int(getpid()),
                     llvm::toString(db.takeError()).c_str());
        _exit(2);
      }
      for (int i = 0; i < 100; ++i)
        if (llvm::Error e = (*db)->record(trial(kKey, "vector_width=8", 100 + i, true))) {
          std::fprintf(stderr, "child %d, trial %d: %s\n", int(getpid()), i,
                       llvm::toString(std::move(e)).c_str());
          _exit(3);
        }
      _exit(0);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  auto all = open(file)->trials();
  ASSERT_TRUE(static_cast<bool>(all));
  EXPECT_EQ(all->size(), 200u);
}

TEST_F(TuningDatabaseTest, exported_schedules_import_into_another_database) {
  auto source = open(path("a.sqlite"));
  ASSERT_TRUE(source);
  ASSERT_FALSE(static_cast<bool>(source->record({trial(kKey, "vector_width=8", 90, true),
                                                  trial(kKey, "vector_width=16", 80, false),
                                                  trial(kKey, "vector_width=4", 95, true)})));
  std::string lines = path("schedules.jsonl");
  ASSERT_FALSE(static_cast<bool>(source->exportJsonLines(lines)));
  auto target = open(path("b.sqlite"));
  ASSERT_TRUE(target);
  auto count = target->importJsonLines(lines);
  ASSERT_TRUE(static_cast<bool>(count)) << llvm::toString(count.takeError());
  EXPECT_EQ(*count, 2u); // only confirmed trials ship
  auto best = target->best(kKey);
  ASSERT_TRUE(best && best->has_value());
  EXPECT_EQ((*best)->schedule, "vector_width=8");
  EXPECT_DOUBLE_EQ((*best)->meanNs, 90);
}

TEST_F(TuningDatabaseTest, a_malformed_import_names_its_line_and_records_nothing) {
  std::string lines = path("bad.jsonl");
  {
    std::ofstream out(lines);
    out << R"({"kernel":"k","target":"t","compiler_version":"v","schedule":"s","status":"ok","time_ns":5})"
        << "\n"
        << R"({"kernel":"k","target":"t"})" << "\n";
  }
  auto db = open(path("tuning.sqlite"));
  ASSERT_TRUE(db);
  auto count = db->importJsonLines(lines);
  ASSERT_FALSE(static_cast<bool>(count));
  std::string error = llvm::toString(count.takeError());
  EXPECT_NE(error.find(lines + ":2:"), std::string::npos) << error;
  auto all = db->trials();
  ASSERT_TRUE(static_cast<bool>(all));
  EXPECT_TRUE(all->empty());
}

} // namespace
