// crash_writer DB_PATH FIRST_NUMBER
//
// Transacts numbered transactions FIRST_NUMBER, FIRST_NUMBER+1, ... forever.
// Transaction n writes kDatomsPerTx datoms over two entities (all must be
// present or none). After transact() returns OK it prints "n t" and flushes
// stdout: a printed number is an acknowledged, durable transaction. The
// crash test kills this process with SIGKILL at random moments.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cairn/database.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DB_PATH FIRST_NUMBER\n", argv[0]);
    return 2;
  }
  auto db = cairn::Database::open(argv[1]);
  if (!db.ok()) {
    std::fprintf(stderr, "open: %s\n", db.status().ToString().c_str());
    return 1;
  }
  for (long n = std::strtol(argv[2], nullptr, 10);; ++n) {
    std::string s = std::to_string(n);
    // 6 datoms + :db/txInstant: 4 on the first entity, 2 on the second.
    std::string tx = "[{:db/id \"a\" :crash/n " + s + " :crash/part 0 :crash/square " + std::to_string(n * n) +
                     " :crash/text \"number " + s + " " + std::string(static_cast<size_t>(n % 200), 'x') +
                     "\"}"
                     " {:db/id \"b\" :crash/n " + s + " :crash/part 1}]";
    auto r = (*db)->transact(tx);
    if (!r.ok()) {
      std::fprintf(stderr, "transact %ld: %s\n", n, r.status().ToString().c_str());
      return 1;
    }
    std::printf("%ld %llu\n", n, static_cast<unsigned long long>(r->t.raw));
    std::fflush(stdout);
  }
}
