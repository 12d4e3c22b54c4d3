// `cairn cluster up` and `cairn cluster down`: a local cluster of real
// `cairn serve --config` processes (docs/cli.md, the cluster contract).
// nlohmann stays in this file (and the other JSON-handling CLI files).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cairn/client.h"
#include "cli/commands.h"

namespace cairn::cli {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct NodePlan {
  int id = 0;
  std::string http;  // 127.0.0.1:PORT
  std::string peer;
  std::string dir;
  std::string log;
  std::string config;
  pid_t pid = -1;
};

bool PortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A port the kernel considers free right now (bound to 0, then released).
int EphemeralPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// `count` distinct free ports: probed upward from `base`, or ephemeral ones
// when base is 0.
Result<std::vector<int>> PickPorts(int base, int count) {
  std::vector<int> ports;
  auto taken = [&](int p) { return std::find(ports.begin(), ports.end(), p) != ports.end(); };
  if (base == 0) {
    for (int tries = 0; static_cast<int>(ports.size()) < count && tries < count * 20; ++tries) {
      int p = EphemeralPort();
      if (p > 0 && !taken(p)) ports.push_back(p);
    }
  } else {
    for (int p = base; static_cast<int>(ports.size()) < count && p <= 65535; ++p) {
      if (PortFree(p)) ports.push_back(p);
    }
  }
  if (static_cast<int>(ports.size()) < count) {
    return Status::Unavailable("could not find " + std::to_string(count) + " free ports" +
                               (base ? " from " + std::to_string(base) : std::string()));
  }
  return ports;
}

Status WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
  ::fchmod(fd, mode);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) {
      ::close(fd);
      return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return Status::IOError("cannot write " + path);
  return Status::OK();
}

Result<std::string> RandomSecret() {
  std::ifstream in("/dev/urandom", std::ios::binary);
  unsigned char bytes[32];
  if (!in.read(reinterpret_cast<char*>(bytes), sizeof bytes)) return Status::IOError("cannot read /dev/urandom");
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

std::string SelfBinary() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("cairn") : p.string();
}

// Starts `bin serve --config config` detached: its own session (so a ^C in
// the terminal that ran `cluster up` does not reach it), stdin from
// /dev/null, stdout and stderr appended to `log`.
Result<pid_t> StartNode(const std::string& bin, const NodePlan& node) {
  int log_fd = ::open(node.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::IOError("cannot open " + node.log + ": " + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Status::IOError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execl(bin.c_str(), bin.c_str(), "serve", "--config", node.config.c_str(), nullptr);
    std::fprintf(stderr, "cannot run %s: %s\n", bin.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

// Alive and not a zombie.
bool PidAlive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return true;
  return text[paren + 2] != 'Z';
}

// True if `pid` runs `serve --config <config>` (guards against a recycled
// PID in an old cluster.json).
bool IsOurNode(pid_t pid, const std::string& config) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), {});
  return cmdline.find(std::string("serve") + '\0' + "--config" + '\0' + config) != std::string::npos;
}

std::string LogTail(const std::string& path, size_t lines_max) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > lines_max) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += "    " + l + "\n";
  return out;
}

// SIGTERM every pid, wait up to wait_s, SIGKILL what is left; reaps our own
// children. Returns one line per node for the report.
std::vector<std::string> StopNodes(const std::vector<std::pair<int, pid_t>>& nodes, int wait_s) {
  std::vector<std::string> report(nodes.size());
  std::vector<bool> pending(nodes.size(), false);
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto [id, pid] = nodes[i];
    if (PidAlive(pid) && ::kill(pid, SIGTERM) == 0) {
      pending[i] = true;
    } else {
      report[i] = "node " + std::to_string(id) + " (pid " + std::to_string(pid) + "): not running";
    }
  }
  auto deadline = Clock::now() + std::chrono::seconds(wait_s);
  for (;;) {
    bool any = false;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!pending[i]) continue;
      ::waitpid(nodes[i].second, nullptr, WNOHANG);  // our child (cluster up failing): reap it
      if (!PidAlive(nodes[i].second)) {
        pending[i] = false;
        report[i] =
            "node " + std::to_string(nodes[i].first) + " (pid " + std::to_string(nodes[i].second) + "): stopped";
      } else {
        any = true;
      }
    }
    if (!any || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!pending[i]) continue;
    ::kill(nodes[i].second, SIGKILL);
    ::waitpid(nodes[i].second, nullptr, 0);
    report[i] = "node " + std::to_string(nodes[i].first) + " (pid " + std::to_string(nodes[i].second) +
                "): killed (SIGKILL) after " + std::to_string(wait_s) + " s";
  }
  return report;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "cairn cluster: %s\n", message.c_str());
  return 2;
}

}  // namespace

int RunClusterUp(const ClusterUpArgs& args) {
  if (args.nodes < 1 || args.nodes > 64) return UsageError("--nodes must be in 1..64");
  if (args.shards < 1 || args.shards > 1024) return UsageError("--shards must be in 1..1024");
  if (args.replication < 1 || args.replication > args.nodes) {
    return UsageError("--replication must be in 1..--nodes (" + std::to_string(args.nodes) + ")");
  }
  if (args.partitions < 2 || args.partitions > 32768) return UsageError("--partitions must be in 2..32768");
  if (args.base_port < 0 || args.base_port > 65535) return UsageError("--base-port must be in 0..65535");
  std::error_code ec;
  fs::path dir = fs::absolute(args.dir, ec);
  if (ec || args.dir.empty()) return UsageError("--dir: bad directory '" + args.dir + "'");
  fs::path cluster_json = dir / "cluster.json";

  // Refuse to start a second cluster over a running one.
  if (fs::exists(cluster_json)) {
    try {
      Json old = Json::parse(std::ifstream(cluster_json));
      for (const auto& n : old.value("nodes", Json::array())) {
        pid_t pid = n.value("pid", 0);
        if (PidAlive(pid) && IsOurNode(pid, n.value("config", ""))) {
          std::fprintf(stderr,
                       "cairn cluster up: a cluster is already running in %s (node %d, pid %d); stop it "
                       "with `cairn cluster down --dir %s`\n",
                       dir.c_str(), n.value("id", 0), pid, dir.c_str());
          return 1;
        }
      }
    } catch (const std::exception&) {
      // An unreadable old cluster.json is replaced below.
    }
  }
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cairn cluster up: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }

  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "cairn cluster up: %s\n", message.c_str());
    return 1;
  };
  auto secret = RandomSecret();
  if (!secret.ok()) return fail(secret.status().ToString());
  std::string secret_file = (dir / "secret").string();
  if (Status s = WriteFile(secret_file, *secret + "\n", 0600); !s.ok()) return fail(s.ToString());

  auto ports = PickPorts(args.base_port, 2 * args.nodes);
  if (!ports.ok()) return fail(ports.status().ToString());
  std::vector<NodePlan> plan;
  for (int i = 1; i <= args.nodes; ++i) {
    NodePlan n;
    n.id = i;
    n.http = "127.0.0.1:" + std::to_string((*ports)[i - 1]);
    n.peer = "127.0.0.1:" + std::to_string((*ports)[args.nodes + i - 1]);
    n.dir = (dir / ("node" + std::to_string(i))).string();
    n.log = n.dir + "/node.log";
    n.config = n.dir + "/node.json";
    plan.push_back(n);
  }
  Json peers = Json::array();
  for (const NodePlan& n : plan) peers.push_back({{"id", n.id}, {"peer", n.peer}, {"http", n.http}});
  for (const NodePlan& n : plan) {
    fs::create_directories(n.dir, ec);
    if (ec) return fail("cannot create " + n.dir + ": " + ec.message());
    Json config = {{"node_id", n.id},
                   {"dir", n.dir},
                   {"http", n.http},
                   {"peer", n.peer},
                   {"cluster_secret_file", secret_file},
                   {"shards", args.shards},
                   {"replication", args.replication},
                   {"partitions", args.partitions},
                   {"nodes", peers}};
    if (Status s = WriteFile(n.config, config.dump(2) + "\n", 0644); !s.ok()) return fail(s.ToString());
  }

  std::string bin = args.cairn_bin.empty() ? SelfBinary() : args.cairn_bin;
  std::vector<std::pair<int, pid_t>> started;
  auto abort_up = [&](const std::string& why) {
    std::fprintf(stderr, "cairn cluster up: %s\nstopping the nodes started:\n", why.c_str());
    for (const std::string& line : StopNodes(started, 10)) std::fprintf(stderr, "  %s\n", line.c_str());
    return 1;
  };
  for (NodePlan& n : plan) {
    auto pid = StartNode(bin, n);
    if (!pid.ok()) return abort_up("cannot start node " + std::to_string(n.id) + ": " + pid.status().ToString());
    n.pid = *pid;
    started.emplace_back(n.id, n.pid);
  }
  std::fprintf(stderr,
               "started %d nodes (%s serve --config DIR/nodeI/node.json); waiting up to %d s for every "
               "/health to answer 200\n",
               args.nodes, bin.c_str(), args.wait_s);

  std::vector<std::unique_ptr<Client>> clients;
  for (const NodePlan& n : plan) {
    ClientOptions options;
    options.timeout_ms = 1'000;
    options.connect_timeout_ms = 500;
    auto c = Client::connect({n.http}, options);
    if (!c.ok()) return abort_up(c.status().ToString());
    clients.push_back(std::move(*c));
  }
  auto start = Clock::now();
  auto deadline = start + std::chrono::seconds(args.wait_s);
  std::vector<std::string> why(plan.size(), "not answering yet");
  auto last_print = start;
  for (;;) {
    int healthy = 0;
    for (size_t i = 0; i < plan.size(); ++i) {
      int status = 0;
      if (::waitpid(plan[i].pid, &status, WNOHANG) == plan[i].pid) {
        std::string how = WIFEXITED(status) ? "exited with code " + std::to_string(WEXITSTATUS(status))
                                            : "was killed by signal " + std::to_string(WTERMSIG(status));
        started.erase(
            std::remove_if(started.begin(), started.end(), [&](const auto& s) { return s.second == plan[i].pid; }),
            started.end());
        return abort_up("node " + std::to_string(plan[i].id) + " " + how + "; its log " + plan[i].log + " ends:\n" +
                        LogTail(plan[i].log, 15));
      }
      Status h = clients[i]->health();
      if (h.ok()) {
        ++healthy;
      } else {
        why[i] = h.message();
      }
    }
    auto now = Clock::now();
    if (healthy == args.nodes) break;
    if (now >= deadline) {
      std::string detail;
      for (size_t i = 0; i < plan.size(); ++i) {
        if (!clients[i]->health().ok()) {
          detail += "  node " + std::to_string(plan[i].id) + ": " + why[i] + " (log: " + plan[i].log + ")\n" +
                    LogTail(plan[i].log, 5);
        }
      }
      return abort_up("not every node became healthy within " + std::to_string(args.wait_s) + " s:\n" + detail);
    }
    if (now - last_print >= std::chrono::seconds(1)) {
      last_print = now;
      std::fprintf(stderr, "  %d/%d nodes healthy after %.0f s\n", healthy, args.nodes,
                   std::chrono::duration<double>(now - start).count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  Json nodes = Json::array();
  for (const NodePlan& n : plan) {
    nodes.push_back({{"id", n.id},
                     {"pid", n.pid},
                     {"http", n.http},
                     {"peer", n.peer},
                     {"dir", n.dir},
                     {"log", n.log},
                     {"config", n.config}});
  }
  Json cluster = {{"shards", args.shards},
                  {"replication", args.replication},
                  {"partitions", args.partitions},
                  {"secret_file", secret_file},
                  {"nodes", nodes}};
  if (Status s = WriteFile(cluster_json.string(), cluster.dump(2) + "\n", 0644); !s.ok()) {
    return abort_up(s.ToString());
  }
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("cluster up in %s: %d nodes, %d shards, replication %d (healthy after %.1f s)\n", dir.c_str(), args.nodes,
              args.shards, args.replication, took);
  std::string endpoints;
  for (const NodePlan& n : plan) {
    std::printf("  node %d  pid %d  http %s  peer %s  log %s\n", n.id, static_cast<int>(n.pid), n.http.c_str(),
                n.peer.c_str(), n.log.c_str());
    endpoints += (endpoints.empty() ? "" : ",") + n.http;
  }
  std::printf("endpoints: %s\n", endpoints.c_str());
  std::printf("cluster.json: %s\n", cluster_json.c_str());
  std::printf("try:  cairn status --connect %s\n", plan[0].http.c_str());
  std::printf("stop: cairn cluster down --dir %s\n", dir.c_str());
  return 0;
}

int RunClusterDown(const std::string& dir_arg, int wait_s) {
  std::error_code ec;
  fs::path dir = fs::absolute(dir_arg, ec);
  fs::path cluster_json = dir / "cluster.json";
  if (!fs::exists(cluster_json)) {
    std::printf("no cluster.json in %s: nothing to stop\n", dir.c_str());
    return 0;
  }
  Json cluster;
  try {
    cluster = Json::parse(std::ifstream(cluster_json));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cairn cluster down: cannot read %s: %s\n", cluster_json.c_str(), e.what());
    return 1;
  }
  std::vector<std::pair<int, pid_t>> nodes;
  std::vector<std::string> skipped;
  for (const auto& n : cluster.value("nodes", Json::array())) {
    int id = n.value("id", 0);
    pid_t pid = n.value("pid", 0);
    if (PidAlive(pid) && !IsOurNode(pid, n.value("config", ""))) {
      skipped.push_back("node " + std::to_string(id) + " (pid " + std::to_string(pid) +
                        "): not running (the pid now belongs to another process, left alone)");
      continue;
    }
    nodes.emplace_back(id, pid);
  }
  for (const std::string& line : StopNodes(nodes, wait_s)) std::printf("%s\n", line.c_str());
  for (const std::string& line : skipped) std::printf("%s\n", line.c_str());
  std::printf("cluster in %s is down (data kept; restart a node with `cairn serve --config %s/nodeI/node.json`)\n",
              dir.c_str(), dir.c_str());
  return 0;
}

}  // namespace cairn::cli
