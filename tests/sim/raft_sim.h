// RaftSim: a deterministic simulation of Raft groups on simulated nodes, a
// simulated network and simulated disks, driven by one seed on one thread.
//
// Everything nondeterministic comes from one Random seeded by the run's
// seed: message delay, loss, duplication and reordering; symmetric and
// one-way partitions; crashes that lose whatever was not fsynced (and may
// keep a torn prefix of the last write); restarts; clock skew between nodes;
// membership changes; and a client workload of register reads, writes and
// compare-and-sets per key through proposals, ReadIndex and lease reads.
//
// After every step the invariants below are checked; at the end the client
// history of every key is checked for linearizability and, once faults have
// healed, liveness: a leader within a bound, pending proposals completed and
// replicas converged. The first violation ends the run and is reported with
// the seed, which replays it exactly.
//
// Thread-safety: none; one simulation per thread.
#pragma once

#include <cstdint>
#include <string>

#include "raft/config.h"

namespace cairn::sim {

struct SimOptions {
  uint64_t seed = 1;
  raft::Mutations mutations;
  // Simulated milliseconds of faults before the network heals.
  uint64_t fault_ms = 4000;
  // Test-only: the network stays dead after the heal, so the liveness check
  // must fail (proves that it can).
  bool network_dies_at_heal = false;
  // Print a trace of the run to stderr (for replaying one seed).
  bool verbose = false;
};

struct SimResult {
  bool ok = true;
  std::string violation;  // empty when ok
  std::string summary;    // shape of the run: nodes, groups, faults
  uint64_t events = 0;
  uint64_t ops_completed = 0;
  uint64_t commits = 0;
  uint64_t elections = 0;
  uint64_t crashes = 0;
  uint64_t conf_changes = 0;
  uint64_t transfers = 0;
  uint64_t snapshots_installed = 0;
  uint64_t lin_unknown = 0;  // keys whose check ran out of budget
};

SimResult RunRaftSim(const SimOptions& options);

}  // namespace cairn::sim
