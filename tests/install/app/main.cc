// A program outside the Cairn tree, built against the installed package.
#include <cstdio>

#include "cairn/database.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto db = cairn::Database::open(argv[1]);
  if (!db.ok()) {
    std::fprintf(stderr, "open: %s\n", db.status().ToString().c_str());
    return 1;
  }
  auto tx = (*db)->transact(R"([{:db/id "p" :person/name "Ada"}])");
  if (!tx.ok()) {
    std::fprintf(stderr, "transact: %s\n", tx.status().ToString().c_str());
    return 1;
  }
  auto rows = (*db)->db().q("[:find ?n . :where [_ :person/name ?n]]");
  if (!rows.ok() || rows->rows.empty()) {
    std::fprintf(stderr, "q: %s\n", rows.status().ToString().c_str());
    return 1;
  }
  std::printf("outside app: %s\n", rows->rows[0][0].as_string().c_str());
  return 0;
}
