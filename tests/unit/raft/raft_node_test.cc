// Behaviour of one RaftNode and of small hand-driven clusters. Each test names
// the rule it checks; the Raft paper section is given where there is one.
#include "raft/raft_node.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_cluster.h"

namespace cairn::raft {
namespace {

using testing::TestCluster;

Config TestConfig() {
  Config c;
  c.heartbeat_ticks = 2;
  c.election_ticks_min = 10;
  c.election_ticks_max = 20;
  return c;
}

Message Msg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.type = type;
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = Term(term);
  return m;
}

std::vector<Message> Drain(RaftNode& n, Ready* out = nullptr) {
  Ready rd = n.GetReady();
  std::vector<Message> msgs = rd.messages;
  n.Advance(rd);
  if (out) *out = rd;
  return msgs;
}

// Ages followers past the minimum election timeout so they stop honouring
// the current leader's stickiness.
void AgeFollowers(TestCluster& c, std::vector<uint64_t> ids) {
  for (uint64_t id : ids) {
    for (uint32_t i = 0; i < c.config(id).election_ticks_min; i++) {
      if (c.node(id).role() == Role::kFollower) c.node(id).Tick();
      // Reset so the node does not start its own election here.
    }
  }
}

TEST(RaftNode, ElectsLeaderAfterRandomizedTimeout) {
  TestCluster c({1, 2, 3}, TestConfig());
  // Nobody campaigns before the minimum election timeout.
  for (int i = 0; i < 9; i++) c.Tick(1);
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  for (int i = 0; i < 20 && c.node(1).role() == Role::kFollower; i++) c.Tick(1);
  EXPECT_EQ(c.node(1).role(), Role::kPreCandidate);
  EXPECT_EQ(c.node(1).term(), Term(1)) << "PreVote must not raise the term";
  c.Stabilize();
  EXPECT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).term(), Term(2));
  EXPECT_EQ(c.node(2).leader(), NodeId(1));
  EXPECT_EQ(c.node(3).leader(), NodeId(1));
}

TEST(RaftNode, NewLeaderCommitsANoopOfItsTerm) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  for (uint64_t id : {1, 2, 3}) {
    ASSERT_EQ(c.applied(id).size(), 1u) << id;
    EXPECT_EQ(c.applied(id)[0].type, EntryType::kNoop);
    EXPECT_EQ(c.applied(id)[0].term, Term(2));
    EXPECT_EQ(c.node(id).commit(), LogIndex(2));
  }
}

TEST(RaftNode, GrantsOneVotePerTerm) {
  Config cfg;
  cfg.id = NodeId(1);
  RaftNode n(cfg, RaftNode::Bootstrap(ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}}));
  Message v = Msg(MessageType::kVote, 2, 1, 5);
  v.index = LogIndex(1);
  v.log_term = Term(1);
  ASSERT_TRUE(n.Step(v).ok());
  Ready rd;
  auto msgs = Drain(n, &rd);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_FALSE(msgs[0].reject);
  // The vote is in the same Ready as the grant, so the host persists it first.
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, NodeId(2));
  EXPECT_EQ(rd.hard_state->term, Term(5));

  Message v3 = Msg(MessageType::kVote, 3, 1, 5);
  v3.index = LogIndex(1);
  v3.log_term = Term(1);
  ASSERT_TRUE(n.Step(v3).ok());
  msgs = Drain(n);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].reject);
  // A duplicate request from the same candidate is granted again.
  ASSERT_TRUE(n.Step(v).ok());
  msgs = Drain(n);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_FALSE(msgs[0].reject);
}

TEST(RaftNode, VoteSurvivesRestart) {
  TestCluster c({1, 2, 3}, TestConfig());
  Message v = Msg(MessageType::kVote, 2, 1, 5);
  v.index = LogIndex(1);
  v.log_term = Term(1);
  ASSERT_TRUE(c.node(1).Step(v).ok());
  c.Process(1);
  c.Restart(1);
  EXPECT_EQ(c.node(1).vote(), NodeId(2));
  EXPECT_EQ(c.node(1).term(), Term(5));
  Message v3 = Msg(MessageType::kVote, 3, 1, 5);
  v3.index = LogIndex(1);
  v3.log_term = Term(1);
  ASSERT_TRUE(c.node(1).Step(v3).ok());
  auto msgs = Drain(c.node(1));
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].reject);
}

TEST(RaftNode, RejectsVoteForLessUpToDateLog) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  // Node 3 knows entries 1..2 at term 2; a candidate with last entry (1, 1) loses.
  Message v = Msg(MessageType::kVote, 2, 3, 9);
  v.index = LogIndex(5);
  v.log_term = Term(1);
  AgeFollowers(c, {3});
  ASSERT_TRUE(c.node(3).Step(v).ok());
  auto msgs = Drain(c.node(3));
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].reject);
  EXPECT_EQ(c.node(3).term(), Term(9)) << "a higher term is adopted even when the vote is refused";
}

TEST(RaftNode, RejectsAppendFromStaleTerm) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  Message a = Msg(MessageType::kAppend, 3, 2, 1);
  a.index = LogIndex(1);
  a.log_term = Term(1);
  a.entries.push_back(Entry{Term(1), LogIndex(2), EntryType::kNormal, "stale"});
  ASSERT_TRUE(c.node(2).Step(a).ok());
  auto msgs = Drain(c.node(2));
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, MessageType::kAppendResp);
  EXPECT_EQ(msgs[0].term, Term(2)) << "answer with our term so the stale leader steps down";
  EXPECT_EQ(c.node(2).log().last_index(), LogIndex(2));
}

TEST(RaftNode, RefusesMalformedAppendWithoutCrashing) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  Message a = Msg(MessageType::kAppend, 1, 2, 2);
  a.index = LogIndex(2);
  a.log_term = Term(2);
  a.entries.push_back(Entry{Term(2), LogIndex(5), EntryType::kNormal, "gap"});
  EXPECT_EQ(c.node(2).Step(a).code(), StatusCode::kInvalidArgument);
  a.entries[0] = Entry{Term(9), LogIndex(3), EntryType::kNormal, "future term"};
  EXPECT_EQ(c.node(2).Step(a).code(), StatusCode::kInvalidArgument);
  Message snap = Msg(MessageType::kSnapshot, 1, 2, 2);
  EXPECT_EQ(c.node(2).Step(snap).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(2).log().last_index(), LogIndex(2));
}

TEST(RaftNode, TermNeverDecreases) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  Message hb = Msg(MessageType::kHeartbeat, 3, 2, 7);
  ASSERT_TRUE(c.node(2).Step(hb).ok());
  EXPECT_EQ(c.node(2).term(), Term(7));
  Message old = Msg(MessageType::kHeartbeat, 1, 2, 2);
  ASSERT_TRUE(c.node(2).Step(old).ok());
  EXPECT_EQ(c.node(2).term(), Term(7));
  EXPECT_EQ(c.node(2).leader(), NodeId(3));
}

TEST(RaftNode, PreVoteKeepsPartitionedNodeFromDisruptingLeader) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 200; i++) {
    c.Tick(3);
    c.Stabilize();
  }
  EXPECT_EQ(c.node(3).term(), Term(2)) << "pre-campaigns never raise the term";
  c.Heal();
  for (int i = 0; i < 40; i++) {
    c.Tick(1);
    c.Tick(2);
    c.Tick(3);
    c.Stabilize();
  }
  EXPECT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).term(), Term(2));
  EXPECT_EQ(c.node(3).leader(), NodeId(1));
}

TEST(RaftNode, WithoutPreVoteRejoiningNodeDisruptsLeader) {
  Config cfg = TestConfig();
  cfg.pre_vote = false;
  cfg.check_quorum = false;
  TestCluster c({1, 2, 3}, cfg);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 60; i++) c.Tick(3);
  c.Stabilize();
  EXPECT_GT(c.node(3).term(), Term(2));
  c.Heal();
  for (int i = 0; i < 40; i++) c.Tick(3);  // node 3 campaigns again at its higher term
  c.Stabilize();
  EXPECT_NE(c.node(1).term(), Term(2)) << "this is the disruption PreVote exists to prevent";
}

TEST(RaftNode, PreVoteRequiresUpToDateLog) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  Message pv = Msg(MessageType::kPreVote, 3, 2, 3);
  pv.index = LogIndex(1);
  pv.log_term = Term(1);
  AgeFollowers(c, {2});
  ASSERT_TRUE(c.node(2).Step(pv).ok());
  auto msgs = Drain(c.node(2));
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].reject);
  EXPECT_EQ(c.node(2).term(), Term(2)) << "a PreVote never changes the voter's term";
}

TEST(RaftNode, CheckQuorumLeaderStepsDownWhenCutOff) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 2 * 10; i++) {
    c.Tick(1);
    c.Stabilize();
  }
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
}

TEST(RaftNode, FollowersIgnoreVotesWhileLeaderIsFresh) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  Message v = Msg(MessageType::kVote, 3, 2, 9);
  v.index = LogIndex(100);
  v.log_term = Term(100);
  ASSERT_TRUE(c.node(2).Step(v).ok());
  EXPECT_EQ(c.node(2).term(), Term(2)) << "sticky: heard from the leader recently";
  EXPECT_TRUE(c.node(2).pending_messages().empty());
  // A transfer campaign is allowed through.
  v.context = kCampaignTransfer;
  ASSERT_TRUE(c.node(2).Step(v).ok());
  EXPECT_EQ(c.node(2).term(), Term(9));
  EXPECT_EQ(c.node(2).vote(), NodeId(3));
}

// Raft §5.4.2: node 1 returns as leader of term 3 with an entry of term 2
// that now sits on a majority, but its own no-op does not. Counting replicas
// must not commit the term-2 entry. With the mutation switch it does, which
// is how the simulator's figure-8 hunt knows what to look for.
LogIndex CommitAfterOldEntryReachesMajority(bool mutate) {
  Config cfg = TestConfig();
  cfg.entries_per_msg_max = 1;
  cfg.mutations.commit_previous_term = mutate;
  TestCluster c({1, 2, 3}, cfg);
  c.Elect(1);
  c.Isolate(1);
  EXPECT_TRUE(c.node(1).Propose("x").ok());  // index 3, term 2, only on node 1
  c.Stabilize();
  c.Heal();
  c.Cut(1, 3);
  AgeFollowers(c, {2});
  c.node(1).Campaign();
  for (int i = 0; i < 20; i++) {
    const Progress* pr = c.node(1).progress(NodeId(2));
    if (c.node(1).role() == Role::kLeader && pr && pr->match() >= LogIndex(3)) break;
    c.Process(1);
    if (c.node(1).role() == Role::kLeader && pr && pr->match() >= LogIndex(3)) break;
    c.Deliver(1, 2, 1);
    c.Process(2);
    c.Deliver(2, 1, 1);
  }
  EXPECT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).term(), Term(3));
  EXPECT_EQ(c.node(1).progress(NodeId(2))->match(), LogIndex(3));
  EXPECT_EQ(c.node(1).log().TermAt(LogIndex(4)), Term(3));
  return c.node(1).commit();
}

TEST(RaftNode, DoesNotCommitPreviousTermEntryByCounting) {
  EXPECT_EQ(CommitAfterOldEntryReachesMajority(false), LogIndex(2));
}

TEST(RaftNode, MutationCommitPreviousTermIsObservable) {
  EXPECT_EQ(CommitAfterOldEntryReachesMajority(true), LogIndex(3));
}

TEST(RaftNode, FastBacktrackingSkipsWholeTerms) {
  Config cfg = TestConfig();
  TestCluster c({1, 2, 3}, cfg);
  c.Elect(1);
  // Node 3 misses 50 entries from term 2.
  c.Isolate(3);
  for (int i = 0; i < 50; i++) ASSERT_TRUE(c.node(1).Propose("e" + std::to_string(i)).ok());
  c.Stabilize();
  c.Heal();
  c.ClearSent();
  c.Tick(1, 2);
  c.Stabilize();
  int rejects = 0;
  for (const Message& m : c.sent()) {
    if (m.type == MessageType::kAppendResp && m.reject) rejects++;
  }
  EXPECT_LE(rejects, 2) << "one hint should find the match point";
  EXPECT_EQ(c.node(3).log().last_index(), c.node(1).log().last_index());
  EXPECT_EQ(c.node(3).commit(), c.node(1).commit());
}

TEST(RaftNode, FastBacktrackingOverDivergentSuffix) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  // Node 1 (term 2) appends 30 entries nobody else gets.
  c.Isolate(1);
  for (int i = 0; i < 30; i++) ASSERT_TRUE(c.node(1).Propose("lost").ok());
  c.Stabilize();
  // Node 2 leads term 3+ with nodes 2,3 and appends 30 other entries.
  AgeFollowers(c, {2, 3});
  c.Elect(2);
  ASSERT_EQ(c.node(2).role(), Role::kLeader);
  for (int i = 0; i < 30; i++) ASSERT_TRUE(c.node(2).Propose("kept").ok());
  c.Stabilize();
  c.Heal();
  c.ClearSent();
  c.Tick(2, 2);
  c.Stabilize();
  int rejects = 0;
  for (const Message& m : c.sent()) {
    if (m.type == MessageType::kAppendResp && m.reject && m.from == NodeId(1)) rejects++;
  }
  EXPECT_LE(rejects, 3);
  ASSERT_EQ(c.node(1).log().last_index(), c.node(2).log().last_index());
  for (LogIndex i = LogIndex(2); i <= c.node(2).log().last_index(); i = i.Next()) {
    EXPECT_EQ(c.node(1).log().At(i), c.node(2).log().At(i));
  }
}

TEST(RaftNode, PipelineIsBoundedByInflightMessages) {
  Config cfg = TestConfig();
  cfg.inflight_msgs_max = 3;
  cfg.entries_per_msg_max = 2;
  TestCluster c({1, 2}, cfg);
  c.Elect(1);
  for (int i = 0; i < 40; i++) {
    ASSERT_TRUE(c.node(1).Propose("p").ok());
    c.Process(1);
  }
  // Node 2 has not answered anything: at most 3 appends are outstanding.
  size_t appends = 0;
  for (const Message& m : c.Mailbox(1, 2)) {
    if (m.type == MessageType::kAppend && !m.entries.empty()) {
      appends++;
      EXPECT_LE(m.entries.size(), 2u);
    }
  }
  EXPECT_EQ(appends, 3u);
  c.Stabilize();
  EXPECT_EQ(c.node(2).commit(), c.node(1).log().last_index());
}

TEST(RaftNode, BatchesProposalsIntoOneAppendPerReady) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  for (int i = 0; i < 100; i++) ASSERT_TRUE(c.node(1).Propose("b").ok());
  c.Process(1);
  ASSERT_EQ(c.Queued(1, 2), 1u);
  EXPECT_EQ(c.Mailbox(1, 2).front().entries.size(), 100u);
}

TEST(RaftNode, BoundsUncommittedTail) {
  Config cfg = TestConfig();
  cfg.uncommitted_bytes_max = 1000;
  TestCluster c({1, 2, 3}, cfg);
  c.Elect(1);
  c.Isolate(1);
  int accepted = 0;
  Status last;
  for (int i = 0; i < 100; i++) {
    auto r = c.node(1).Propose(std::string(76, 'x'));
    if (!r.ok()) {
      last = r.status();
      break;
    }
    accepted++;
  }
  EXPECT_EQ(last.code(), StatusCode::kUnavailable);
  EXPECT_GE(accepted, 9);
  EXPECT_LE(accepted, 11);
  c.Heal();
  c.Stabilize();
  EXPECT_TRUE(c.node(1).Propose("again").ok()) << "the bound frees as entries commit";
}

TEST(RaftNode, ProposalsOnFollowerReturnNotLeader) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  auto r = c.node(2).Propose("x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotLeader);
  EXPECT_NE(r.status().message().find("leader=1"), std::string::npos);
}

TEST(RaftNode, ReadIndexNeedsQuorumConfirmation) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.node(1).ReadIndex(7).ok());
  c.Stabilize();
  EXPECT_TRUE(c.reads(1).empty()) << "a partitioned leader must not answer";
  c.Heal();
  c.Tick(1, 2);
  c.Stabilize();
  ASSERT_EQ(c.reads(1).size(), 1u);
  EXPECT_EQ(c.reads(1)[0].request_id, 7u);
  EXPECT_EQ(c.reads(1)[0].index, LogIndex(2));
}

TEST(RaftNode, PendingReadIsDroppedWhenLeadershipChanges) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.node(1).ReadIndex(5).ok());
  c.Stabilize();
  // The majority moves on without node 1 and commits a write.
  AgeFollowers(c, {2, 3});
  c.Elect(2);
  ASSERT_EQ(c.node(2).role(), Role::kLeader);
  ASSERT_TRUE(c.node(2).Propose("newer").ok());
  c.Stabilize();
  // Node 1 learns the new term; its unconfirmed read must never be answered
  // with its stale index.
  c.Heal();
  c.Tick(2, 2);
  c.Stabilize();
  c.Tick(1, 2);
  c.Stabilize();
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_TRUE(c.reads(1).empty());
  // Even when node 1 leads again, the old request stays dead: it was bound to
  // the term in which it arrived.
  AgeFollowers(c, {1, 2, 3});
  c.Elect(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  c.Tick(1, 2);
  c.Stabilize();
  EXPECT_TRUE(c.reads(1).empty());
}

TEST(RaftNode, ReadIndexWaitsForLeaderToCommitInItsTerm) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.node(1).Campaign();
  // Drive the election without letting the no-op commit.
  for (int i = 0; i < 4; i++) {
    c.Process(1);
    c.Deliver(1, 2);
    c.Deliver(1, 3);
    c.Process(2);
    c.Process(3);
    if (c.node(1).role() == Role::kLeader) break;
    c.Deliver(2, 1);
    c.Deliver(3, 1);
  }
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  ASSERT_LT(c.node(1).commit(), LogIndex(2));
  ASSERT_TRUE(c.node(1).ReadIndex(9).ok());
  c.Process(1);
  EXPECT_TRUE(c.reads(1).empty());
  c.Stabilize();
  c.Tick(1, 2);
  c.Stabilize();
  ASSERT_EQ(c.reads(1).size(), 1u);
  EXPECT_EQ(c.reads(1)[0].index, LogIndex(2));
}

TEST(RaftNode, FollowerReadIndexIsForwardedToLeader) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  ASSERT_TRUE(c.node(1).Propose("w").ok());
  c.Stabilize();
  ASSERT_TRUE(c.node(2).ReadIndex(11).ok());
  c.Stabilize();
  ASSERT_EQ(c.reads(2).size(), 1u);
  EXPECT_EQ(c.reads(2)[0].request_id, 11u);
  EXPECT_EQ(c.reads(2)[0].index, LogIndex(3));
}

TEST(RaftNode, LeaseReadIsLocalWhileQuorumRecentlyAcked) {
  Config cfg = TestConfig();
  cfg.lease_reads = true;
  TestCluster c({1, 2, 3}, cfg);
  AgeFollowers(c, {1, 2, 3});
  c.Elect(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  c.Tick(1, 2);  // a heartbeat round
  c.Stabilize();
  EXPECT_TRUE(c.node(1).LeaseValid());
  c.ClearSent();
  ASSERT_TRUE(c.node(1).ReadIndex(1).ok());
  c.Process(1);
  ASSERT_EQ(c.reads(1).size(), 1u) << "served without a round trip";
  // Cut off, the lease runs out before followers may elect someone else.
  c.Isolate(1);
  c.Tick(1, 10);
  c.Stabilize();
  EXPECT_FALSE(c.node(1).LeaseValid());
}

TEST(RaftNode, RestartedNodeHonoursForgottenLeaseBeforeVoting) {
  Config cfg = TestConfig();
  cfg.lease_reads = true;
  TestCluster c({1, 2, 3}, cfg);
  AgeFollowers(c, {1, 2, 3});
  c.Elect(1);
  c.Restart(2);  // it may have acknowledged node 1's lease just before
  Message v = Msg(MessageType::kVote, 3, 2, 9);
  v.index = LogIndex(100);
  v.log_term = Term(100);
  ASSERT_TRUE(c.node(2).Step(v).ok());
  EXPECT_EQ(c.node(2).term(), Term(2)) << "ignored: a lease may still be running";
  for (uint32_t i = 0; i < cfg.election_ticks_min; i++) c.node(2).Tick();
  ASSERT_TRUE(c.node(2).Step(v).ok());
  EXPECT_EQ(c.node(2).vote(), NodeId(3));
}

TEST(RaftNode, TransferRevokesLease) {
  Config cfg = TestConfig();
  cfg.lease_reads = true;
  TestCluster c({1, 2, 3}, cfg);
  AgeFollowers(c, {1, 2, 3});
  c.Elect(1);
  c.Tick(1, 2);
  c.Stabilize();
  ASSERT_TRUE(c.node(1).LeaseValid());
  c.Cut(1, 2);
  ASSERT_TRUE(c.node(1).TransferLeadership(NodeId(2)).ok());
  EXPECT_FALSE(c.node(1).LeaseValid());
}

TEST(RaftNode, TransferLeadershipHandsOverWithTimeoutNow) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  c.Stabilize();
  ASSERT_TRUE(c.node(1).TransferLeadership(NodeId(3)).ok());
  EXPECT_EQ(c.node(1).Propose("b").status().code(), StatusCode::kUnavailable);
  c.Stabilize();
  EXPECT_EQ(c.node(3).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_EQ(c.node(1).leader(), NodeId(3));
}

TEST(RaftNode, TransferToLaggingTargetCatchesItUpFirst) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; i++) ASSERT_TRUE(c.node(1).Propose("a").ok());
  c.Stabilize();
  c.Heal();
  ASSERT_TRUE(c.node(1).TransferLeadership(NodeId(3)).ok());
  c.Tick(1, 2);
  c.Stabilize();
  EXPECT_EQ(c.node(3).role(), Role::kLeader);
  EXPECT_EQ(c.node(3).log().last_index(), LogIndex(8));  // 7 entries + its own no-op
}

TEST(RaftNode, CompactionNeverPassesApplied) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  EXPECT_EQ(c.node(1).Compact(LogIndex(99), std::make_shared<const std::string>("s")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(c.node(1).Compact(LogIndex(2), std::make_shared<const std::string>("s")).ok());
  EXPECT_EQ(c.node(1).snapshot().meta.index, LogIndex(2));
}

TEST(RaftNode, LaggingFollowerInstallsChunkedSnapshot) {
  Config cfg = TestConfig();
  cfg.snapshot_chunk_bytes = 10;
  cfg.compaction_retain_entries = 0;
  TestCluster c({1, 2, 3}, cfg);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 20; i++) ASSERT_TRUE(c.node(1).Propose("v").ok());
  c.Stabilize();
  const LogIndex applied = c.node(1).applied();
  auto image = std::make_shared<const std::string>(std::string(95, 's'));
  ASSERT_TRUE(c.node(1).Compact(applied, image).ok());
  c.Process(1);
  EXPECT_EQ(c.disk(1).entries.size(), 0u) << "storage told to drop compacted entries";
  c.Heal();
  c.ClearSent();
  for (int i = 0; i < 5; i++) {
    c.Tick(1, 2);
    c.Stabilize();
  }
  int chunks = 0;
  for (const Message& m : c.sent()) chunks += m.type == MessageType::kSnapshot;
  EXPECT_GE(chunks, 10);
  EXPECT_EQ(c.snapshot_installs(3), 1);
  ASSERT_TRUE(c.disk(3).snapshot.has_value());
  EXPECT_EQ(*c.disk(3).snapshot->data, *image);
  EXPECT_EQ(c.node(3).commit(), c.node(1).commit());
  ASSERT_TRUE(c.node(1).Propose("after").ok());
  c.Stabilize();
  EXPECT_EQ(c.node(3).applied(), c.node(1).applied());
}

// A follower catching up is handed the committed log in Readies of at most
// apply_entries_per_ready_max entries and apply_bytes_per_ready_max bytes,
// so no host round applies for long.
TEST(RaftNode, CommittedEntriesComeInBoundedReadies) {
  for (bool by_bytes : {false, true}) {
    SCOPED_TRACE(by_bytes ? "bytes" : "entries");
    Config cfg = TestConfig();
    cfg.apply_entries_per_ready_max = by_bytes ? 1000 : 5;
    cfg.apply_bytes_per_ready_max = by_bytes ? 200 : 1 << 20;
    TestCluster c({1, 2, 3}, cfg);
    c.Elect(1);
    c.Isolate(3);
    for (int i = 0; i < 40; i++) ASSERT_TRUE(c.node(1).Propose(std::string(50, 'x')).ok());
    c.Stabilize();
    c.Heal();
    c.Tick(1, 2);
    c.Stabilize();
    EXPECT_EQ(c.node(3).applied(), c.node(1).applied());
    EXPECT_EQ(c.applied(3).size(), c.applied(1).size());
    const auto [entries, bytes] = c.largest_apply(3);
    EXPECT_GT(entries, 1u) << "the catch-up should still apply in batches";
    if (by_bytes) {
      EXPECT_LE(bytes, 200u);
    } else {
      EXPECT_LE(entries, 5u);
    }
  }
}

// With the host's chunk callbacks (Config::read_snapshot_chunk and
// write_snapshot_chunk) neither side holds the snapshot's bytes: the leader
// reads each chunk when it sends it, the follower hands each one to the host
// in order, and its Ready carries no data. A chunk the host cannot store is
// not acknowledged; the leader sends it again after a heartbeat.
TEST(RaftNode, SnapshotStreamsThroughTheHostsChunkCallbacks) {
  const std::string image = [] {
    std::string s;
    for (int i = 0; i < 95; ++i) s += static_cast<char>('a' + i % 26);
    return s;
  }();
  std::vector<uint64_t> read_offsets;
  std::string received;  // what the follower's host stored, in order
  std::vector<uint64_t> written_offsets;
  int failures_left = 2;
  Config cfg = TestConfig();
  cfg.snapshot_chunk_bytes = 10;
  cfg.compaction_retain_entries = 0;
  cfg.read_snapshot_chunk = [&](const SnapshotMeta&, uint64_t offset, uint64_t max_len,
                                std::string* out) -> std::optional<uint64_t> {
    read_offsets.push_back(offset);
    *out = image.substr(std::min<uint64_t>(offset, image.size()), max_len);
    return image.size();
  };
  cfg.write_snapshot_chunk = [&](const SnapshotMeta&, uint64_t offset, std::string_view data) {
    if (offset == 30 && failures_left > 0) {
      --failures_left;
      return false;
    }
    if (offset == 0) received.clear();
    EXPECT_EQ(offset, received.size()) << "chunks out of order";
    received.append(data);
    written_offsets.push_back(offset);
    return true;
  };
  TestCluster c({1, 2, 3}, cfg);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 20; i++) ASSERT_TRUE(c.node(1).Propose("v").ok());
  c.Stabilize();
  ASSERT_TRUE(c.node(1).Compact(c.node(1).applied(), nullptr).ok());
  c.Process(1);
  c.Heal();
  for (int i = 0; i < 10 && c.snapshot_installs(3) == 0; i++) {
    c.Tick(1, 2);
    c.Stabilize();
  }
  EXPECT_EQ(c.snapshot_installs(3), 1);
  EXPECT_EQ(failures_left, 0);
  EXPECT_EQ(received, image);
  EXPECT_EQ(std::count(written_offsets.begin(), written_offsets.end(), 30u), 1);
  EXPECT_GE(std::count(read_offsets.begin(), read_offsets.end(), 30u), 3) << "the refused chunk was not sent again";
  ASSERT_TRUE(c.disk(3).snapshot.has_value());
  EXPECT_EQ(c.disk(3).snapshot->data, nullptr) << "the Ready carried the bytes the host already holds";
  EXPECT_EQ(c.node(1).snapshot().data, nullptr);
  EXPECT_EQ(c.node(3).commit(), c.node(1).commit());
}

TEST(RaftNode, LearnerCatchesUpWithoutVoting) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.AddEmptyNode(4);
  c.Elect(1);
  for (int i = 0; i < 5; i++) ASSERT_TRUE(c.node(1).Propose("x").ok());
  c.Stabilize();
  ASSERT_TRUE(c.node(1).ProposeConfChange({ConfChange::Type::kAddLearner, NodeId(4)}).ok());
  c.Stabilize();
  c.Tick(1, 2);
  c.Stabilize();
  EXPECT_TRUE(c.node(4).conf().IsLearner(NodeId(4)));
  EXPECT_EQ(c.node(4).commit(), c.node(1).commit());
  // A learner never campaigns, and quorum is still 2 of {1,2,3}.
  for (int i = 0; i < 100; i++) c.Tick(4);
  EXPECT_EQ(c.node(4).role(), Role::kFollower);
  c.Isolate(2);
  c.Isolate(3);
  c.Heal();
  c.Cut(1, 2);
  c.Cut(1, 3);
  ASSERT_TRUE(c.node(1).Propose("needs-voters").ok());
  c.Stabilize();
  EXPECT_LT(c.node(1).commit(), c.node(1).log().last_index()) << "a learner's ack is no vote";
}

TEST(RaftNode, AddsAndRemovesVotersOneAtATime) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.AddEmptyNode(4);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).ProposeConfChange({ConfChange::Type::kAddVoter, NodeId(4)}).ok());
  EXPECT_EQ(c.node(1).ProposeConfChange({ConfChange::Type::kRemoveNode, NodeId(2)}).status().code(),
            StatusCode::kUnavailable)
      << "one change at a time";
  c.Stabilize();
  c.Tick(1, 2);
  c.Stabilize();
  EXPECT_EQ(c.node(1).conf().voters.size(), 4u);
  EXPECT_TRUE(c.node(4).conf().IsVoter(NodeId(4)));
  ASSERT_TRUE(c.node(1).ProposeConfChange({ConfChange::Type::kRemoveNode, NodeId(2)}).ok());
  c.Stabilize();
  EXPECT_EQ(c.node(1).conf().voters, (std::vector<NodeId>{NodeId(1), NodeId(3), NodeId(4)}));
  // With {1,3,4}, node 2 is not needed for commits.
  c.Isolate(2);
  ASSERT_TRUE(c.node(1).Propose("z").ok());
  c.Stabilize();
  EXPECT_EQ(c.node(1).commit(), c.node(1).log().last_index());
}

TEST(RaftNode, RemovingTheLeaderHandsLeadershipOver) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  ASSERT_TRUE(c.node(1).ProposeConfChange({ConfChange::Type::kRemoveNode, NodeId(1)}).ok());
  c.Stabilize();
  EXPECT_NE(c.node(1).role(), Role::kLeader);
  uint64_t lead = c.Leader();
  EXPECT_TRUE(lead == 2 || lead == 3);
  ASSERT_TRUE(c.node(lead).Propose("after").ok());
  c.Stabilize();
  EXPECT_EQ(c.node(2).commit(), c.node(lead).log().last_index());
  EXPECT_EQ(c.node(3).commit(), c.node(lead).log().last_index());
}

TEST(RaftNode, ConfChangeRejectedBeforeLeaderCommitsInItsTerm) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.node(1).Campaign();
  for (int i = 0; i < 4 && c.node(1).role() != Role::kLeader; i++) {
    c.Process(1);
    c.Deliver(1, 2);
    c.Deliver(1, 3);
    c.Process(2);
    c.Process(3);
    c.Deliver(2, 1);
    c.Deliver(3, 1);
  }
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).ProposeConfChange({ConfChange::Type::kAddLearner, NodeId(4)}).status().code(),
            StatusCode::kUnavailable);
}

TEST(RaftNode, IdleGroupQuiescesAndWakesOnProposal) {
  Config cfg = TestConfig();
  cfg.quiesce_after_idle_rounds = 2;
  TestCluster c({1, 2, 3}, cfg);
  c.Elect(1);
  for (int i = 0; i < 10; i++) {
    for (uint64_t id : {1, 2, 3}) c.Tick(id);
    c.Stabilize();
  }
  EXPECT_TRUE(c.node(1).quiesced());
  EXPECT_TRUE(c.node(2).quiesced());
  c.ClearSent();
  for (int i = 0; i < 100; i++) {
    for (uint64_t id : {1, 2, 3}) c.Tick(id);
    c.Stabilize();
  }
  EXPECT_TRUE(c.sent().empty()) << "a quiesced group sends nothing";
  EXPECT_EQ(c.node(1).role(), Role::kLeader);
  ASSERT_TRUE(c.node(1).Propose("wake").ok());
  c.Stabilize();
  EXPECT_FALSE(c.node(2).quiesced());
  EXPECT_EQ(c.node(2).commit(), c.node(1).log().last_index());
}

TEST(RaftNode, RestartRestoresLogAndReappliesCommitted) {
  TestCluster c({1, 2, 3}, TestConfig());
  c.Elect(1);
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  ASSERT_TRUE(c.node(1).Propose("b").ok());
  c.Stabilize();
  c.Restart(2);
  EXPECT_EQ(c.node(2).log().last_index(), LogIndex(4));
  EXPECT_EQ(c.node(2).term(), Term(2));
  c.Process(2);
  ASSERT_EQ(c.applied(2).size(), 3u);
  EXPECT_EQ(c.applied(2)[2].data, "b");
}

}  // namespace
}  // namespace cairn::raft
