// `cairn serve` as a real process: reads the bound address from its first
// stdout line, talks HTTP to it, stops it with SIGTERM and checks that it
// exits cleanly and that the data survives a restart.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "http_client.h"

namespace cairn::server {
namespace {

using testing::Capture;
using testing::Conn;
using testing::Response;

#ifdef CAIRN_BIN

struct ServeProcess {
  pid_t pid = -1;
  int out_fd = -1;
  uint16_t port = 0;
  std::string first_line;
};

// Starts `cairn serve` and waits (up to 10 s) for its "listening on" line.
ServeProcess StartServe(const std::string& db_path) {
  ServeProcess p;
  int out[2];
  if (::pipe(out) != 0) return p;
  p.pid = ::fork();
  if (p.pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, STDERR_FILENO);
    ::execl(CAIRN_BIN, CAIRN_BIN, "serve", "--db", db_path.c_str(), "--http", "127.0.0.1:0", nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  p.out_fd = out[0];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (p.first_line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{p.out_fd, POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(p.out_fd, buf, sizeof buf);
    if (n <= 0) break;
    p.first_line.append(buf, static_cast<size_t>(n));
  }
  std::string port = Capture(p.first_line, "^listening on http://127\\.0\\.0\\.1:(\\d+)\n");
  if (!port.empty()) p.port = static_cast<uint16_t>(std::stoi(port));
  return p;
}

// SIGTERM, then the exit status (or -1 if it does not exit within 10 s).
int StopServe(ServeProcess& p) {
  ::kill(p.pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = ::waitpid(p.pid, &status, WNOHANG);
    if (r == p.pid) {
      ::close(p.out_fd);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(p.pid, SIGKILL);
  ::waitpid(p.pid, &status, 0);
  ::close(p.out_fd);
  return -1;
}

TEST(ServeProcess, ServesHttpAndStopsCleanlyOnSigterm) {
  char tmpl[] = "/tmp/cairn_serve_test_XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string db = dir + "/node.db";

  ServeProcess p = StartServe(db);
  ASSERT_GT(p.pid, 0);
  ASSERT_NE(p.port, 0) << "first stdout line: '" << p.first_line << "'";
  {
    Conn c(p.port);
    Response tx = c.Request("POST", "/v1/transact",
                            "[{:db/ident :city/name :db/valueType :db.type/string "
                            ":db/cardinality :db.cardinality/one}]",
                            {{"Content-Type", "application/edn"}});
    ASSERT_EQ(tx.status, 200) << tx.body;
    Response tx2 = c.Request("POST", "/v1/transact", "{\"tx-data\": \"[{:city/name \\\"Oslo\\\"}]\"}");
    ASSERT_EQ(tx2.status, 200) << tx2.body;
    // A bad request does not stop the node.
    EXPECT_EQ(c.Request("POST", "/v1/transact", "{oops").status, 400);
    EXPECT_EQ(c.Request("GET", "/health").status, 200);
  }
  // An idle keep-alive connection must not hold up shutdown.
  Conn idle(p.port);
  EXPECT_EQ(idle.Request("GET", "/health").status, 200);
  EXPECT_EQ(StopServe(p), 0);
  EXPECT_TRUE(idle.ClosedByPeer(2000));

  // The data survived: a new process over the same file serves it.
  ServeProcess again = StartServe(db);
  ASSERT_NE(again.port, 0) << again.first_line;
  {
    Conn c(again.port);
    Response q = c.Request("POST", "/v1/query", "[:find ?n . :where [_ :city/name ?n]]",
                           {{"Content-Type", "application/edn"}, {"Accept", "application/edn"}});
    EXPECT_EQ(q.status, 200);
    EXPECT_EQ(q.body, "\"Oslo\"\n");
  }
  EXPECT_EQ(StopServe(again), 0);
  std::filesystem::remove_all(dir);
}

TEST(ServeProcess, RefusesABadListenAddress) {
  char tmpl[] = "/tmp/cairn_serve_test_XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    ::execl(CAIRN_BIN, CAIRN_BIN, "serve", "--db", (dir + "/x.db").c_str(), "--http", "127.0.0.1:notaport", nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::filesystem::remove_all(dir);
}

#endif  // CAIRN_BIN

}  // namespace
}  // namespace cairn::server
