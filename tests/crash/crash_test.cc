// Crash safety: a real writer process is killed with SIGKILL at random
// moments (seeded; CAIRN_CRASH_SEED overrides); after each kill the database
// is reopened and must hold every acknowledged transaction, completely, and
// no partial one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "cairn/database.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;

constexpr int kRounds = 20;
constexpr int kDatomsPerNumber = 6;  // see crash_writer.cc

struct Round {
  std::map<long, uint64_t> acknowledged;  // number -> t
  bool exited_early = false;
};

// Runs the writer until `kill_after`, then SIGKILLs it and collects what it printed.
Round RunWriter(const std::string& db_path, long first, std::chrono::milliseconds kill_after) {
  int pipe_fds[2];
  EXPECT_EQ(pipe(pipe_fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::string n = std::to_string(first);
    execl(CAIRN_CRASH_WRITER, CAIRN_CRASH_WRITER, db_path.c_str(), n.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipe_fds[1]);
  std::this_thread::sleep_for(kill_after);
  Round round;
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid) {
    round.exited_early = true;
  } else {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  // Only complete lines count: a line cut by the kill was never acknowledged.
  size_t start = 0;
  while (true) {
    size_t nl = out.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = out.substr(start, nl - start);
    start = nl + 1;
    long num = 0;
    unsigned long long t = 0;
    if (std::sscanf(line.c_str(), "%ld %llu", &num, &t) == 2) round.acknowledged[num] = t;
  }
  return round;
}

TEST(CrashSafety, KilledWriterLosesNoAcknowledgedTransactionAndLeavesNoneHalfApplied) {
  uint64_t seed = 20261122;
  if (const char* s = std::getenv("CAIRN_CRASH_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("CAIRN_CRASH_SEED=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);

  fs::path dir = fs::temp_directory_path() / ("cairn_crash_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string path = (dir / "crash.db").string();

  std::map<long, uint64_t> all_acknowledged;
  long next = 0;
  int kills = 0;
  auto started = std::chrono::steady_clock::now();
  for (int round = 0; round < kRounds; ++round) {
    // Early rounds include very short lifetimes (killed during open or the
    // first commit), later ones long enough for many commits.
    auto kill_after = std::chrono::milliseconds(5 + rng() % 400);
    Round r = RunWriter(path, next, kill_after);
    ASSERT_FALSE(r.exited_early) << "writer exited by itself in round " << round << " (seed " << seed << ")";
    ++kills;
    for (const auto& [num, t] : r.acknowledged) all_acknowledged[num] = t;

    // Reopen and check.
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok()) << "round " << round << " (seed " << seed << "): " << db.status().ToString();
    auto datoms = (*db)->db().datoms(IndexType::kAevt, {});
    ASSERT_TRUE(datoms.ok()) << datoms.status().ToString();
    std::map<long, int> per_number;  // number -> datoms seen for it (excluding txInstant)
    std::map<EntityId, long> entity_number;
    for (const Datom& d : *datoms)
      if (d.a.str() == "crash/n") entity_number[d.e] = d.v.as_long();
    for (const Datom& d : *datoms) {
      if (d.a.ns() != "crash") continue;
      auto it = entity_number.find(d.e);
      ASSERT_NE(it, entity_number.end()) << "datom without its entity's number: " << d.ToString();
      ++per_number[it->second];
    }
    for (const auto& [num, t] : all_acknowledged) {
      ASSERT_EQ(per_number.count(num), 1u) << "acknowledged transaction " << num << " (t " << t << ") lost in round "
                                           << round << " (seed " << seed << ")";
    }
    long max_present = -1;
    for (const auto& [num, count] : per_number) {
      ASSERT_EQ(count, kDatomsPerNumber) << "transaction " << num << " half-applied in round " << round << " (seed "
                                         << seed << ")";
      max_present = std::max(max_present, num);
    }
    // Numbers are contiguous: no gap (a later tx present while an earlier one is missing).
    ASSERT_EQ(static_cast<long>(per_number.size()), max_present + 1) << "gap in transactions (seed " << seed << ")";
    // Acknowledged t values are the stored ones.
    auto hist = (*db)->db().datoms(IndexType::kAevt, {Value::Kw("crash/square")});
    ASSERT_TRUE(hist.ok());
    for (const Datom& d : *hist) {
      long num = entity_number[d.e];
      auto ack = all_acknowledged.find(num);
      if (ack != all_acknowledged.end()) {
        EXPECT_EQ(d.tx.raw, ack->second) << "number " << num;
      }
    }
    next = max_present + 1;
  }
  auto elapsed = std::chrono::steady_clock::now() - started;
  std::printf("%d kills, %zu acknowledged transactions, %ld present, %.1f s\n", kills, all_acknowledged.size(), next,
              std::chrono::duration<double>(elapsed).count());
  EXPECT_GT(all_acknowledged.size(), 20u) << "writer made too little progress to prove anything";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cairn
