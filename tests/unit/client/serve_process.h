// A real `cairn serve --db FILE --http 127.0.0.1:PORT` process for the client
// tests: started with fork/exec, its bound port read from the first stdout
// line, stopped by PID (SIGTERM, SIGKILL after 10 s). Bounded in time.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace cairn::testing {

class ServeProcess {
 public:
  // port 0 lets the server pick one; see port().
  bool Start(const std::string& db_path, uint16_t port = 0) {
    std::string http = "127.0.0.1:" + std::to_string(port);
    return Exec({"serve", "--db", db_path, "--http", http});
  }
  // A cluster node: `cairn serve --config PATH` (the config's http port must
  // be given, not 0).
  bool StartNode(const std::string& config_path) { return Exec({"serve", "--config", config_path}); }

  bool Exec(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe(out) != 0) return false;
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(CAIRN_BIN));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      // If the test process dies (a crash, an abort), the server goes too.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      int devnull = ::open("/dev/null", O_WRONLY);
      if (devnull >= 0) ::dup2(devnull, STDERR_FILENO);
      ::execv(CAIRN_BIN, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_fd_ = out[0];
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{out_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    const std::string prefix = "listening on http://127.0.0.1:";
    if (line.rfind(prefix, 0) != 0) return false;
    port_ = static_cast<uint16_t>(std::stoi(line.substr(prefix.size())));
    return true;
  }

  // SIGTERM (or `sig`), then the exit code; -1 if it had to be killed.
  int Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    int rc = -1;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (rc == -1) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    ::close(out_fd_);
    pid_ = -1;
    return rc;
  }

  ~ServeProcess() {
    if (pid_ > 0) Stop(SIGKILL);
  }

  uint16_t port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  uint16_t port_ = 0;
};

// A loopback port nobody listens on (bound, then released).
inline uint16_t UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace cairn::testing
