// A program outside the Cairn tree, built against the installed package.
#include <cstdio>

#include "cairn/client.h"
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
  // The cluster client links too: nothing listens on port 1, so a call
  // gives up with Unavailable once its short deadline passes.
  cairn::ClientOptions options;
  options.timeout_ms = 200;
  auto client = cairn::Client::connect({"127.0.0.1:1"}, options);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  auto remote = (*client)->transact(R"([{:person/name "Ada"}])");
  if (remote.status().code() != cairn::StatusCode::kUnavailable) {
    std::fprintf(stderr, "client: expected Unavailable, got %s\n", remote.status().ToString().c_str());
    return 1;
  }
  std::printf("outside app: %s\n", rows->rows[0][0].as_string().c_str());
  return 0;
}
