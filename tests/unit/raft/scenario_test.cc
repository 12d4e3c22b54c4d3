// Data-driven Raft scenarios: every file in testdata/*.txt is a transcript of
// inputs and the effects they must have, run by one interpreter over a
// TestCluster. A failing line reports file:line.
//
// Commands (one per line; '#' starts a comment):
//   config key=value ...        before `cluster`: pre_vote, check_quorum,
//                                entries_per_msg_max, inflight_msgs_max,
//                                lease_reads, mutation=<switch>
//   cluster 1 2 3               founding voters
//   empty 4                     a node that will join later
//   campaign N | tick N [k] | propose N data | propose-fails N code
//   conf N add-voter|add-learner|remove M
//   transfer N M | read N id | compact N index
//   process N                   one Ready cycle (persist, then queue messages)
//   deliver FROM TO [k]         step up to k queued messages (default all)
//   drop FROM TO                discard queued messages (TO may be *)
//   stabilize                   process and deliver until quiet
//   cut A B | isolate N | heal | crash N | restart N
//   expect N key=value ...      role, term, lead, vote, commit, last, applied
//   expect-log N t t t          terms of entries from the log's base to last
//   expect-applied N d d        data of applied entries ('-' for a no-op)
//   expect-read N id index      a read state was released
//   expect-queued F T msg ...   messages waiting from F to T, each written as
//                               Type[:index][+entries][!] (index for appends
//                               and their responses, ! for a rejection)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "raft/raft_node.h"
#include "test_cluster.h"

namespace cairn::raft {
namespace {

using testing::TestCluster;

std::vector<std::string> Split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

class ScenarioRunner {
 public:
  explicit ScenarioRunner(std::string file) : file_(std::move(file)) {
    config_.heartbeat_ticks = 2;
    config_.election_ticks_min = 10;
    config_.election_ticks_max = 20;
  }

  void Run() {
    std::ifstream in(file_);
    ASSERT_TRUE(in.good()) << file_;
    std::string line;
    while (std::getline(in, line)) {
      line_no_++;
      const auto hash = line.find('#');
      if (hash != std::string::npos) line.resize(hash);
      auto w = Split(line);
      if (w.empty()) continue;
      Execute(w);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

 private:
  std::string Where() const { return file_ + ":" + std::to_string(line_no_); }
  uint64_t U(const std::string& s) { return std::stoull(s); }

  void Execute(const std::vector<std::string>& w) {
    const std::string& cmd = w[0];
    if (cmd == "config") {
      for (size_t i = 1; i < w.size(); i++) SetConfig(w[i]);
    } else if (cmd == "cluster") {
      std::vector<uint64_t> ids;
      for (size_t i = 1; i < w.size(); i++) ids.push_back(U(w[i]));
      c_ = std::make_unique<TestCluster>(ids, config_);
    } else if (cmd == "empty") {
      c_->AddEmptyNode(U(w[1]));
    } else if (cmd == "campaign") {
      c_->node(U(w[1])).Campaign();
    } else if (cmd == "tick") {
      c_->Tick(U(w[1]), w.size() > 2 ? static_cast<int>(U(w[2])) : 1);
    } else if (cmd == "propose") {
      auto r = c_->node(U(w[1])).Propose(w[2]);
      EXPECT_TRUE(r.ok()) << Where() << ": " << r.status().ToString();
    } else if (cmd == "propose-fails") {
      auto r = c_->node(U(w[1])).Propose("x");
      ASSERT_FALSE(r.ok()) << Where();
      EXPECT_EQ(std::string(StatusCodeName(r.status().code())), w[2]) << Where();
    } else if (cmd == "conf") {
      ConfChange cc;
      cc.type = w[2] == "add-voter"     ? ConfChange::Type::kAddVoter
                : w[2] == "add-learner" ? ConfChange::Type::kAddLearner
                                        : ConfChange::Type::kRemoveNode;
      cc.node = NodeId(U(w[3]));
      auto r = c_->node(U(w[1])).ProposeConfChange(cc);
      EXPECT_TRUE(r.ok()) << Where() << ": " << r.status().ToString();
    } else if (cmd == "transfer") {
      EXPECT_TRUE(c_->node(U(w[1])).TransferLeadership(NodeId(U(w[2]))).ok()) << Where();
    } else if (cmd == "read") {
      EXPECT_TRUE(c_->node(U(w[1])).ReadIndex(U(w[2])).ok()) << Where();
    } else if (cmd == "compact") {
      EXPECT_TRUE(c_->node(U(w[1]))
                      .Compact(LogIndex(U(w[2])), std::make_shared<const std::string>("image"))
                      .ok())
          << Where();
    } else if (cmd == "process") {
      c_->Process(U(w[1]));
    } else if (cmd == "deliver") {
      c_->Deliver(U(w[1]), U(w[2]), w.size() > 3 ? static_cast<int>(U(w[3])) : 1 << 30);
    } else if (cmd == "drop") {
      for (uint64_t to : c_->ids()) {
        if (w[2] == "*" || U(w[2]) == to) c_->Drop(U(w[1]), to);
      }
    } else if (cmd == "stabilize") {
      c_->Stabilize();
    } else if (cmd == "cut") {
      c_->Cut(U(w[1]), U(w[2]));
    } else if (cmd == "isolate") {
      c_->Isolate(U(w[1]));
    } else if (cmd == "heal") {
      c_->Heal();
    } else if (cmd == "crash") {
      c_->Crash(U(w[1]));
    } else if (cmd == "restart") {
      c_->Restart(U(w[1]));
    } else if (cmd == "expect") {
      ExpectState(w);
    } else if (cmd == "expect-log") {
      RaftNode& n = c_->node(U(w[1]));
      std::string got;
      // From the base (the snapshot's last entry; index 1 after bootstrap).
      for (LogIndex i = n.log().base_index(); i <= n.log().last_index(); i = i.Next()) {
        if (i.IsZero()) continue;
        got += (got.empty() ? "" : " ") + std::to_string(n.log().TermAt(i).value());
      }
      std::string want;
      for (size_t i = 2; i < w.size(); i++) want += (i > 2 ? " " : "") + w[i];
      EXPECT_EQ(got, want) << Where() << ": log terms of node " << w[1];
    } else if (cmd == "expect-applied") {
      std::string got;
      for (const Entry& e : c_->applied(U(w[1]))) {
        got += (got.empty() ? "" : " ") + (e.type == EntryType::kNoop ? std::string("-") : e.data);
      }
      std::string want;
      for (size_t i = 2; i < w.size(); i++) want += (i > 2 ? " " : "") + w[i];
      EXPECT_EQ(got, want) << Where() << ": applied entries of node " << w[1];
    } else if (cmd == "expect-read") {
      bool found = false;
      for (const ReadState& r : c_->reads(U(w[1]))) {
        if (r.request_id == U(w[2])) {
          found = true;
          EXPECT_EQ(r.index, LogIndex(U(w[3]))) << Where();
        }
      }
      EXPECT_TRUE(found) << Where() << ": no read state " << w[2];
    } else if (cmd == "expect-queued") {
      // Effects: the messages waiting from -> to, as Type[:index][+entries][!reject].
      std::string got;
      for (const Message& m : c_->Mailbox(U(w[1]), U(w[2]))) {
        std::string one = MessageTypeName(m.type);
        if (m.type == MessageType::kAppend || m.type == MessageType::kAppendResp) {
          one += ":" + std::to_string(m.index.value());
        }
        if (!m.entries.empty()) one += "+" + std::to_string(m.entries.size());
        if (m.reject) one += "!";
        got += (got.empty() ? "" : " ") + one;
      }
      std::string want;
      for (size_t i = 3; i < w.size(); i++) want += (i > 3 ? " " : "") + w[i];
      EXPECT_EQ(got, want) << Where() << ": messages queued " << w[1] << "->" << w[2];
    } else if (cmd == "expect-no-read") {
      for (const ReadState& r : c_->reads(U(w[1]))) {
        EXPECT_NE(r.request_id, U(w[2])) << Where() << ": read released too early";
      }
    } else {
      FAIL() << Where() << ": unknown command " << cmd;
    }
  }

  void SetConfig(const std::string& kv) {
    const auto eq = kv.find('=');
    const std::string k = kv.substr(0, eq);
    const std::string v = kv.substr(eq + 1);
    if (k == "pre_vote") config_.pre_vote = v == "true";
    else if (k == "check_quorum") config_.check_quorum = v == "true";
    else if (k == "lease_reads") config_.lease_reads = v == "true";
    else if (k == "entries_per_msg_max") config_.entries_per_msg_max = static_cast<uint32_t>(U(v));
    else if (k == "inflight_msgs_max") config_.inflight_msgs_max = static_cast<uint32_t>(U(v));
    else if (k == "mutation" && v == "commit_previous_term") config_.mutations.commit_previous_term = true;
    else ADD_FAILURE() << Where() << ": unknown config " << kv;
  }

  void ExpectState(const std::vector<std::string>& w) {
    RaftNode& n = c_->node(U(w[1]));
    for (size_t i = 2; i < w.size(); i++) {
      const auto eq = w[i].find('=');
      const std::string k = w[i].substr(0, eq);
      const std::string v = w[i].substr(eq + 1);
      std::string got;
      if (k == "role") got = RoleName(n.role());
      else if (k == "term") got = std::to_string(n.term().value());
      else if (k == "lead") got = std::to_string(n.leader().value());
      else if (k == "vote") got = std::to_string(n.vote().value());
      else if (k == "commit") got = std::to_string(n.commit().value());
      else if (k == "last") got = std::to_string(n.log().last_index().value());
      else if (k == "applied") got = std::to_string(n.applied().value());
      else {
        ADD_FAILURE() << Where() << ": unknown key " << k;
        continue;
      }
      EXPECT_EQ(got, v) << Where() << ": " << k << " of node " << w[1];
    }
  }

  std::string file_;
  int line_no_ = 0;
  Config config_;
  std::unique_ptr<TestCluster> c_;
};

std::vector<std::string> ScenarioFiles() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(CAIRN_TEST_DATA_DIR)) {
    if (e.path().extension() == ".txt") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class RaftScenario : public ::testing::TestWithParam<std::string> {};

TEST_P(RaftScenario, TranscriptHolds) { ScenarioRunner(GetParam()).Run(); }

INSTANTIATE_TEST_SUITE_P(Testdata, RaftScenario, ::testing::ValuesIn(ScenarioFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = std::filesystem::path(info.param).stem().string();
                           for (char& ch : name) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(RaftScenario, TestdataIsPresent) { EXPECT_GE(ScenarioFiles().size(), 5u); }

}  // namespace
}  // namespace cairn::raft
