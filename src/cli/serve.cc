// `cairn serve`: an embedded database behind the HTTP API.
#include "cli/serve.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include "cluster/node.h"
#include "server/backend.h"
#include "server/http_server.h"

namespace cairn::cli {

namespace {
// "HOST:PORT" or "[v6]:PORT".
bool SplitHostPort(const std::string& text, std::string* host, uint16_t* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return false;
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned long p = 0;
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    p = p * 10 + static_cast<unsigned long>(text[i] - '0');
    if (p > 65535) return false;
  }
  *host = h.empty() ? "127.0.0.1" : h;
  *port = static_cast<uint16_t>(p);
  return true;
}
}  // namespace

namespace {

// Blocks the stop signals in every thread (the server's threads inherit the
// mask) so that only sigwait receives them; ignores SIGPIPE.
sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client closing early must not kill the node.
  std::signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

std::string HostForUrl(const std::string& address) {
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}

int WaitForStop(sigset_t stop_signals) {
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("serve: stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  return sig;
}

int RunClusterServe(const ServeArgs& args, server::HttpServerOptions options) {
  Result<cluster::ClusterConfig> config = cluster::ClusterConfig::Load(args.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "cairn: %s\n", config.status().message().c_str());
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  options.address = config->http_host;
  options.port = config->http_port;
  sigset_t stop_signals = BlockStopSignals();

  cluster::NodeOptions node_options;
  node_options.config = *config;
  // An HTTP request may wait for a leader election and a few retries, but
  // answers (504) before the HTTP server's own request timeout.
  if (args.request_timeout_ms > 0) {
    node_options.coordinator.request_timeout_ms =
        std::clamp(args.request_timeout_ms - 1000, 100, node_options.coordinator.request_timeout_ms);
  }
  Result<std::unique_ptr<cluster::Node>> node = cluster::Node::Start(node_options);
  if (!node.ok()) {
    std::fprintf(stderr, "cairn: cannot start node %u: %s\n", config->node_id, node.status().ToString().c_str());
    return 1;
  }
  server::ClusterBackend backend(node->get());
  server::HttpServer http(&backend, options);
  if (Status s = http.Start(); !s.ok()) {
    std::fprintf(stderr, "cairn: %s\n", s.ToString().c_str());
    (*node)->Stop();
    return 1;
  }
  std::printf("listening on http://%s:%u\n", HostForUrl(options.address).c_str(), static_cast<unsigned>(http.port()));
  std::fflush(stdout);
  spdlog::info("serve: cluster node {} started dir={} http={}:{} peer={}:{} groups={}", config->node_id, config->dir,
               HostForUrl(options.address), http.port(), config->peer_host, (*node)->peer_port(),
               (*node)->host().groups().size());
  WaitForStop(stop_signals);
  // The node first: requests blocked in the coordinator fail at once, so
  // the HTTP server's workers finish quickly.
  (*node)->Stop();
  http.Stop();
  node->reset();
  spdlog::info("serve: stopped");
  return 0;
}

}  // namespace

int RunServe(const ServeArgs& args) {
  server::HttpServerOptions options;
  options.body_bytes_max = args.body_bytes_max;
  options.header_timeout_ms = args.header_timeout_ms;
  options.body_timeout_ms = args.body_timeout_ms;
  options.request_timeout_ms = args.request_timeout_ms;
  options.connections_max = args.connections_max;
  options.worker_threads = args.worker_threads > 0 ? args.worker_threads : (args.config_path.empty() ? 4 : 64);
  if (args.db_path.empty() == args.config_path.empty()) {
    std::fprintf(stderr, "cairn: serve needs exactly one of --db FILE (embedded) or --config node.json (cluster)\n");
    return 2;
  }
  if (!args.config_path.empty()) return RunClusterServe(args, options);

  if (!SplitHostPort(args.http, &options.address, &options.port)) {
    std::fprintf(stderr, "cairn: --http expects HOST:PORT, got '%s'\n", args.http.c_str());
    return 2;
  }
  sigset_t stop_signals = BlockStopSignals();

  Options db_options;
  db_options.sync = args.sync;
  auto backend = server::EmbeddedBackend::Open(args.db_path, db_options);
  if (!backend.ok()) {
    std::fprintf(stderr, "cairn: cannot open %s: %s\n", args.db_path.c_str(), backend.status().ToString().c_str());
    return 1;
  }
  server::HttpServer http(backend->get(), options);
  if (Status s = http.Start(); !s.ok()) {
    std::fprintf(stderr, "cairn: %s\n", s.ToString().c_str());
    return 1;
  }
  std::string host = HostForUrl(options.address);
  std::printf("listening on http://%s:%u\n", host.c_str(), static_cast<unsigned>(http.port()));
  std::fflush(stdout);
  spdlog::info("serve: started db={} http={}:{}", args.db_path, host, http.port());

  WaitForStop(stop_signals);
  http.Stop();
  backend->reset();
  spdlog::info("serve: stopped");
  return 0;
}

}  // namespace cairn::cli
