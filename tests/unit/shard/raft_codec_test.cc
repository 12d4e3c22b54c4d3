// RaftCodec: round trips of every message type, batches, and refusal of
// malformed input (truncation at every byte, seeded random mutations).
#include "shard/raft_codec.h"

#include <cstdlib>
#include <random>

#include "gtest/gtest.h"

namespace cairn::shard {
namespace {

using raft::Message;
using raft::MessageType;

constexpr MessageType kAllTypes[] = {
    MessageType::kAppend,       MessageType::kAppendResp,  MessageType::kHeartbeat,  MessageType::kHeartbeatResp,
    MessageType::kVote,         MessageType::kVoteResp,    MessageType::kPreVote,    MessageType::kPreVoteResp,
    MessageType::kSnapshot,     MessageType::kSnapshotResp, MessageType::kTimeoutNow, MessageType::kReadIndex,
    MessageType::kReadIndexResp};

// A message of type `t` with every field set to something distinctive,
// including large values that need 10-byte varints.
Message Sample(MessageType t, uint64_t salt) {
  Message m;
  m.type = t;
  m.group = raft::GroupId(7 + salt);
  m.from = raft::NodeId(1);
  m.to = raft::NodeId(3);
  m.term = raft::Term(42 + salt);
  m.index = raft::LogIndex(1000 + salt);
  m.log_term = raft::Term(41);
  m.commit = raft::LogIndex(999);
  m.reject = salt % 2 == 1;
  m.reject_hint = raft::LogIndex(UINT64_MAX - salt);
  m.context = UINT64_MAX;
  m.quiesce = salt % 3 == 0;
  if (t == MessageType::kAppend) {
    for (uint64_t i = 0; i < 3; ++i) {
      raft::Entry e;
      e.term = raft::Term(41 + i);
      e.index = raft::LogIndex(1001 + i);
      e.type = static_cast<raft::EntryType>(i);
      e.data = std::string(i * 200, static_cast<char>('a' + i));
      e.data += std::string("\0\xff", 2);
      m.entries.push_back(std::move(e));
    }
  }
  if (t == MessageType::kSnapshot) {
    auto c = std::make_shared<raft::SnapshotChunk>();
    c->meta.index = raft::LogIndex(900);
    c->meta.term = raft::Term(40);
    c->meta.conf.voters = {raft::NodeId(1), raft::NodeId(2), raft::NodeId(3)};
    c->meta.conf.learners = {raft::NodeId(9)};
    c->offset_bytes = 65536;
    c->data = std::string(300, '\x80');
    c->total_bytes = 65536 + 300 + salt;
    c->done = salt == 0;
    m.snapshot = std::move(c);
  }
  return m;
}

void ExpectSame(const Message& a, const Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.term, b.term);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.log_term, b.log_term);
  EXPECT_EQ(a.commit, b.commit);
  EXPECT_EQ(a.entries, b.entries);
  EXPECT_EQ(a.reject, b.reject);
  EXPECT_EQ(a.reject_hint, b.reject_hint);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.quiesce, b.quiesce);
  ASSERT_EQ(a.snapshot != nullptr, b.snapshot != nullptr);
  if (a.snapshot) {
    EXPECT_EQ(a.snapshot->meta.index, b.snapshot->meta.index);
    EXPECT_EQ(a.snapshot->meta.term, b.snapshot->meta.term);
    EXPECT_EQ(a.snapshot->meta.conf, b.snapshot->meta.conf);
    EXPECT_EQ(a.snapshot->offset_bytes, b.snapshot->offset_bytes);
    EXPECT_EQ(a.snapshot->total_bytes, b.snapshot->total_bytes);
    EXPECT_EQ(a.snapshot->data, b.snapshot->data);
    EXPECT_EQ(a.snapshot->done, b.snapshot->done);
  }
}

TEST(RaftCodec, RoundTripsEveryMessageType) {
  for (MessageType t : kAllTypes) {
    for (uint64_t salt : {0, 1, 2}) {
      SCOPED_TRACE(raft::MessageTypeName(t));
      Message m = Sample(t, salt);
      Result<Message> back = DecodeMessage(EncodeMessage(m));
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      ExpectSame(m, *back);
    }
  }
}

TEST(RaftCodec, DefaultMessageIsSmall) {
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.group = raft::GroupId(5);
  hb.from = raft::NodeId(1);
  hb.to = raft::NodeId(2);
  hb.term = raft::Term(3);
  std::string bytes = EncodeMessage(hb);
  EXPECT_LE(bytes.size(), 14u);
  Result<Message> back = DecodeMessage(bytes);
  ASSERT_TRUE(back.ok());
  ExpectSame(hb, *back);
}

TEST(RaftCodec, BatchOfManyGroupsRoundTrips) {
  std::vector<Message> msgs;
  for (uint64_t g = 0; g < 40; ++g) msgs.push_back(Sample(kAllTypes[g % 13], g));
  Result<std::vector<Message>> back = DecodeBatch(EncodeBatch(msgs));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) ExpectSame(msgs[i], (*back)[i]);

  Result<std::vector<Message>> empty = DecodeBatch(EncodeBatch({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(RaftCodec, RefusesEveryTruncation) {
  std::string msg = EncodeMessage(Sample(MessageType::kSnapshot, 1));
  for (size_t n = 0; n < msg.size(); ++n) {
    Result<Message> r = DecodeMessage(std::string_view(msg).substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix " << n;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  std::string batch = EncodeBatch({Sample(MessageType::kAppend, 0), Sample(MessageType::kVote, 1)});
  for (size_t n = 0; n < batch.size(); ++n) {
    Result<std::vector<Message>> r = DecodeBatch(std::string_view(batch).substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix " << n;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(RaftCodec, NamesWhatIsWrong) {
  std::string msg = EncodeMessage(Sample(MessageType::kVote, 0));
  std::string bad = msg;
  bad[0] = 9;
  EXPECT_NE(DecodeMessage(bad).status().message().find("unsupported version 9"), std::string::npos);
  bad = msg;
  bad[1] = 13;
  EXPECT_NE(DecodeMessage(bad).status().message().find("unknown message type 13"), std::string::npos);
  EXPECT_NE(DecodeMessage(msg + "x").status().message().find("1 trailing bytes"), std::string::npos);
  // A forged entry count cannot make the decoder allocate.
  Message m;
  std::string huge = EncodeMessage(m);
  huge.pop_back();  // the entry count (0)
  for (int i = 0; i < 9; ++i) huge.push_back('\xff');
  huge.push_back('\x01');
  Result<Message> r = DecodeMessage(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("entry count"), std::string::npos) << r.status().ToString();
  // An 11-byte varint.
  std::string longv = std::string(1, 1) + std::string(1, 0) + std::string(11, '\x80');
  EXPECT_FALSE(DecodeMessage(longv).ok());
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

// Random byte flips, insertions and deletions: decoding either succeeds (and
// then re-encodes to a decodable message) or returns InvalidArgument.
TEST(RaftCodec, SurvivesRandomMutations) {
  uint64_t seed = EnvOr("CAIRN_FUZZ_SEED", 20261122);
  uint64_t rounds = EnvOr("CAIRN_FUZZ_ROUNDS", 20000);
  SCOPED_TRACE("CAIRN_FUZZ_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::string> seeds;
  for (MessageType t : kAllTypes) seeds.push_back(EncodeMessage(Sample(t, 1)));
  std::vector<Message> all;
  for (MessageType t : kAllTypes) all.push_back(Sample(t, 2));
  std::string batch = EncodeBatch(all);
  uint64_t accepted = 0;
  for (uint64_t i = 0; i < rounds; ++i) {
    bool use_batch = i % 4 == 0;
    std::string b = use_batch ? batch : seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !b.empty(); ++k) {
      size_t at = rng() % b.size();
      switch (rng() % 4) {
        case 0: b[at] = static_cast<char>(rng()); break;
        case 1: b[at] ^= static_cast<char>(1u << (rng() % 8)); break;
        case 2: b.insert(b.begin() + at, static_cast<char>(rng())); break;
        default: b.erase(b.begin() + at); break;
      }
    }
    if (use_batch) {
      Result<std::vector<Message>> r = DecodeBatch(b);
      if (r.ok()) {
        ++accepted;
        ASSERT_TRUE(DecodeBatch(EncodeBatch(*r)).ok());
      } else {
        ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "round " << i;
      }
    } else {
      Result<Message> r = DecodeMessage(b);
      if (r.ok()) {
        ++accepted;
        Result<Message> again = DecodeMessage(EncodeMessage(*r));
        ASSERT_TRUE(again.ok());
        ExpectSame(*r, *again);
      } else {
        ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "round " << i;
      }
    }
  }
  // Some mutations (inside data bytes) are still valid messages.
  EXPECT_GT(accepted, 0u);
}

}  // namespace
}  // namespace cairn::shard
