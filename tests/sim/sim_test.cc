// Runs the Raft simulation over many seeds, proves the mutation switches are
// caught, and checks the linearizability checker itself.
//
// CAIRN_SIM_SEEDS (default 2000) sets how many seeds the four shards share;
// CAIRN_SIM_SEED=N replays one seed (a trace with CAIRN_SIM_VERBOSE=1, a
// broken rule with CAIRN_SIM_MUTATION=<switch>).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "linearizability.h"
#include "raft_sim.h"

namespace cairn::sim {
namespace {

constexpr uint64_t kDefaultSeeds = 2000;
constexpr int kShards = 4;

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// Returns an empty string if the seed passes, else a report naming the seed.
std::string RunSeed(uint64_t seed, const raft::Mutations& mutations, bool verbose) {
  SimOptions opt;
  opt.seed = seed;
  opt.mutations = mutations;
  opt.verbose = verbose;
  SimResult r = RunRaftSim(opt);
  if (verbose) {
    std::fprintf(stderr, "seed %llu: %s\n  events=%llu commits=%llu ops=%llu elections=%llu crashes=%llu "
                 "conf_changes=%llu transfers=%llu snapshots=%llu lin_unknown=%llu\n",
                 static_cast<unsigned long long>(seed), r.summary.c_str(),
                 static_cast<unsigned long long>(r.events), static_cast<unsigned long long>(r.commits),
                 static_cast<unsigned long long>(r.ops_completed),
                 static_cast<unsigned long long>(r.elections),
                 static_cast<unsigned long long>(r.crashes),
                 static_cast<unsigned long long>(r.conf_changes),
                 static_cast<unsigned long long>(r.transfers),
                 static_cast<unsigned long long>(r.snapshots_installed),
                 static_cast<unsigned long long>(r.lin_unknown));
  }
  if (r.ok) return "";
  return "seed " + std::to_string(seed) + " failed: " + r.violation + "\n  (" + r.summary +
         ")\n  replay: CAIRN_SIM_SEED=" + std::to_string(seed) +
         " ctest -R raft_sim   (trace: CAIRN_SIM_SEED=" + std::to_string(seed) +
         " CAIRN_SIM_VERBOSE=1 tests/sim/cairn_sim_raft --gtest_filter='*RaftSimSeeds*/0')";
}

// CAIRN_SIM_MUTATION=<switch> replays a seed with one rule broken, as the
// mutation tests run it.
raft::Mutations MutationsFromEnv() {
  raft::Mutations m;
  const char* v = std::getenv("CAIRN_SIM_MUTATION");
  const std::string name = v ? v : "";
  m.skip_persist_vote = name == "skip_persist_vote";
  m.commit_previous_term = name == "commit_previous_term";
  m.read_without_read_index = name == "read_without_read_index";
  m.prevote_skips_log_check = name == "prevote_skips_log_check";
  m.compact_past_snapshot = name == "compact_past_snapshot";
  return m;
}

class RaftSimSeeds : public ::testing::TestWithParam<int> {};

TEST_P(RaftSimSeeds, EverySeedKeepsInvariantsLinearizabilityAndLiveness) {
  const uint64_t one = EnvU64("CAIRN_SIM_SEED", 0);
  const bool verbose = EnvU64("CAIRN_SIM_VERBOSE", 0) != 0;
  if (one != 0) {
    if (GetParam() != 0) GTEST_SKIP() << "replaying one seed in shard 0";
    std::string failure = RunSeed(one, MutationsFromEnv(), verbose);
    EXPECT_TRUE(failure.empty()) << failure;
    return;
  }
  const uint64_t seeds = EnvU64("CAIRN_SIM_SEEDS", kDefaultSeeds);
  uint64_t ran = 0;
  SimResult total;
  for (uint64_t seed = 1 + GetParam(); seed <= seeds; seed += kShards) {
    SimOptions opt;
    opt.seed = seed;
    SimResult r = RunRaftSim(opt);
    ran++;
    total.events += r.events;
    total.commits += r.commits;
    total.ops_completed += r.ops_completed;
    total.elections += r.elections;
    total.crashes += r.crashes;
    total.conf_changes += r.conf_changes;
    total.transfers += r.transfers;
    total.snapshots_installed += r.snapshots_installed;
    total.lin_unknown += r.lin_unknown;
    if (!r.ok) {
      std::string failure = RunSeed(seed, {}, false);
      std::fprintf(stderr, "%s\n", failure.c_str());
      FAIL() << failure;
    }
  }
  std::printf("shard %d: %llu seeds passed: events=%llu commits=%llu client_ops=%llu elections=%llu "
              "crashes=%llu conf_changes=%llu transfers=%llu snapshot_installs=%llu "
              "keys_unchecked=%llu\n",
              GetParam(), static_cast<unsigned long long>(ran),
              static_cast<unsigned long long>(total.events),
              static_cast<unsigned long long>(total.commits),
              static_cast<unsigned long long>(total.ops_completed),
              static_cast<unsigned long long>(total.elections),
              static_cast<unsigned long long>(total.crashes),
              static_cast<unsigned long long>(total.conf_changes),
              static_cast<unsigned long long>(total.transfers),
              static_cast<unsigned long long>(total.snapshots_installed),
              static_cast<unsigned long long>(total.lin_unknown));
  // The checker must actually check: almost every key's history is decided.
  EXPECT_EQ(total.lin_unknown, 0u);
}

INSTANTIATE_TEST_SUITE_P(Shards, RaftSimSeeds, ::testing::Range(0, kShards));

// Each switch breaks one rule. The simulation must notice within the CI seed
// budget, or it could not be trusted to notice a real bug of that kind.
struct MutationCase {
  const char* name;
  raft::Mutations mutations;
};

class RaftSimMutations : public ::testing::TestWithParam<MutationCase> {};

TEST_P(RaftSimMutations, SimulationReportsAViolation) {
  const uint64_t budget = EnvU64("CAIRN_SIM_SEEDS", kDefaultSeeds);
  std::string first;
  uint64_t seed = 1;
  for (; seed <= budget && first.empty(); seed++) first = RunSeed(seed, GetParam().mutations, false);
  ASSERT_FALSE(first.empty()) << GetParam().name << " survived " << budget << " seeds";
  first += "  (with CAIRN_SIM_MUTATION=" + std::string(GetParam().name) + ")";
  std::printf("%s caught after %llu seeds: %s\n", GetParam().name,
              static_cast<unsigned long long>(seed - 1), first.c_str());
}

raft::Mutations M(void (*set)(raft::Mutations*)) {
  raft::Mutations m;
  set(&m);
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Switches, RaftSimMutations,
    ::testing::Values(
        MutationCase{"skip_persist_vote", M([](raft::Mutations* m) { m->skip_persist_vote = true; })},
        MutationCase{"commit_previous_term", M([](raft::Mutations* m) { m->commit_previous_term = true; })},
        MutationCase{"read_without_read_index",
                     M([](raft::Mutations* m) { m->read_without_read_index = true; })},
        MutationCase{"prevote_skips_log_check",
                     M([](raft::Mutations* m) { m->prevote_skips_log_check = true; })},
        MutationCase{"compact_past_snapshot",
                     M([](raft::Mutations* m) { m->compact_past_snapshot = true; })}),
    [](const ::testing::TestParamInfo<MutationCase>& info) { return std::string(info.param.name); });

TEST(RaftSim, SameSeedReplaysExactly) {
  SimOptions opt;
  opt.seed = 77;
  SimResult a = RunRaftSim(opt);
  SimResult b = RunRaftSim(opt);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.commits, b.commits);
  EXPECT_EQ(a.ops_completed, b.ops_completed);
  EXPECT_EQ(a.summary, b.summary);
  EXPECT_GT(a.commits, 0u);
  EXPECT_GT(a.ops_completed, 0u);
}

TEST(RaftSim, LivenessCheckFailsWhenTheNetworkNeverHeals) {
  for (uint64_t seed = 1; seed <= 5; seed++) {
    SimOptions opt;
    opt.seed = seed;
    opt.network_dies_at_heal = true;
    SimResult r = RunRaftSim(opt);
    ASSERT_FALSE(r.ok) << seed;
    EXPECT_NE(r.violation.find("liveness"), std::string::npos) << r.violation;
  }
}

// --- the checker itself

RegisterOp Op(RegisterOp::Kind k, int64_t v, int64_t result, uint64_t inv, uint64_t ret) {
  RegisterOp op;
  op.kind = k;
  op.value = v;
  op.result = result;
  op.invoke = inv;
  op.ret = ret;
  return op;
}
using K = RegisterOp::Kind;

TEST(Linearizability, AcceptsConcurrentWriteSeenByOverlappingRead) {
  std::vector<RegisterOp> h = {Op(K::kWrite, 1, 0, 1, 4), Op(K::kRead, 0, 1, 2, 3)};
  EXPECT_EQ(CheckRegister(h, 0, 1000, nullptr), LinearizableResult::kYes);
}

TEST(Linearizability, RejectsStaleReadAfterCompletedWrite) {
  std::vector<RegisterOp> h = {Op(K::kWrite, 1, 0, 1, 2), Op(K::kRead, 0, 0, 3, 4)};
  std::string why;
  EXPECT_EQ(CheckRegister(h, 0, 1000, &why), LinearizableResult::kNo);
  EXPECT_NE(why.find("read()->0"), std::string::npos);
}

TEST(Linearizability, PendingWriteMayTakeEffectLater) {
  RegisterOp pending = Op(K::kWrite, 7, 0, 1, RegisterOp::kPending);
  std::vector<RegisterOp> h = {pending, Op(K::kRead, 0, 0, 2, 3), Op(K::kRead, 0, 7, 4, 5)};
  EXPECT_EQ(CheckRegister(h, 0, 1000, nullptr), LinearizableResult::kYes);
  // ...but not un-happen once observed.
  h.push_back(Op(K::kRead, 0, 0, 6, 7));
  EXPECT_EQ(CheckRegister(h, 0, 1000, nullptr), LinearizableResult::kNo);
}

TEST(Linearizability, CasOutcomeMustMatchState) {
  RegisterOp cas = Op(K::kCas, 5, 1, 3, 4);
  cas.expected = 1;
  std::vector<RegisterOp> ok = {Op(K::kWrite, 1, 0, 1, 2), cas, Op(K::kRead, 0, 5, 5, 6)};
  EXPECT_EQ(CheckRegister(ok, 0, 1000, nullptr), LinearizableResult::kYes);
  cas.result = 0;  // claims it failed although the register held 1
  std::vector<RegisterOp> bad = {Op(K::kWrite, 1, 0, 1, 2), cas};
  EXPECT_EQ(CheckRegister(bad, 0, 1000, nullptr), LinearizableResult::kNo);
}

}  // namespace
}  // namespace cairn::sim
