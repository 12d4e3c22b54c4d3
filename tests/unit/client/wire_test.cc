// The client's body codec: request bodies, response parsing, error mapping.
#include "client/wire.h"

#include <gtest/gtest.h>

namespace cairn::client {
namespace {

TEST(ClientWire, JsonStringEscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01 é"), "\"a\\\"b\\\\c\\n\\u0001 é\"");
}

TEST(ClientWire, QueryBodyCarriesArgsAndTimeView) {
  QueryParams p;
  p.as_of = TxTime{42};
  p.history = true;
  EXPECT_EQ(QueryBody("[:find ?x :in $ ?n]", {"\"Ann\""}, p),
            "{\"query\": \"[:find ?x :in $ ?n]\", \"args\": [\"\\\"Ann\\\"\"], \"as-of\": 42, \"history\": true}");
}

TEST(ClientWire, ParsesEveryResultShape) {
  auto rel = ParseQueryResult("[:find ?a ?b :where [?e :x ?a] [?e :y ?b]]", "#{[1 \"x\"] [2 :k/w]}\n");
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  EXPECT_EQ(rel->shape, QueryResult::Shape::kRelation);
  EXPECT_EQ(rel->columns, (std::vector<std::string>{"?a", "?b"}));
  ASSERT_EQ(rel->rows.size(), 2u);
  EXPECT_EQ(rel->rows[1][1], Value::Kw("k/w"));

  auto coll = ParseQueryResult("[:find [?a ...] :where [_ :x ?a]]", "[1 2 3]");
  ASSERT_TRUE(coll.ok());
  EXPECT_EQ(coll->shape, QueryResult::Shape::kCollection);
  EXPECT_EQ(coll->rows.size(), 3u);

  auto scalar = ParseQueryResult("[:find ?a . :where [_ :x ?a]]", "nil");
  ASSERT_TRUE(scalar.ok());
  EXPECT_TRUE(scalar->rows.empty());
  EXPECT_EQ(scalar->ToEdn(), "nil");

  auto tuple =
      ParseQueryResult("[:find [?a ?b] :where [?e :x ?a] [?e :y ?b]]", "[1 #inst \"2020-01-01T00:00:00.000Z\"]");
  ASSERT_TRUE(tuple.ok());
  EXPECT_EQ(tuple->rows.at(0).at(1).type(), ValueType::kInstant);

  auto keys = ParseQueryResult("[:find ?a ?b :keys x y :where [?e :x ?a] [?e :y ?b]]", "({:y 2, :x 1})");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->key_kind, QueryResult::KeyKind::kKeys);
  EXPECT_EQ(keys->rows.at(0), (std::vector<Value>{Value::Long(1), Value::Long(2)}));
  EXPECT_EQ(keys->ToEdn(), "({:x 1, :y 2})");
}

TEST(ClientWire, RelationWithRepeatedRowsParses) {
  // :with keeps equal projected rows, which is not a valid EDN set.
  auto r = ParseQueryResult("[:find ?a :with ?e :where [?e :x ?a]]", "#{[1] [1]}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows.size(), 2u);
}

TEST(ClientWire, MalformedResponsesAreInvalidArgumentNotCrashes) {
  EXPECT_EQ(ParseQueryResult("[:find ?a :where [_ :x ?a]]", "<html>").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseQueryResult("[:find ?a :where [_ :x ?a]]", "[1 2]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTxReport("{:tempids {}}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTxReport("{:t 5 :tx-data [[1 2 3]]}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDatoms("{:datoms 7}").status().code(), StatusCode::kInvalidArgument);
}

TEST(ClientWire, ParsesTxReportWithDuplicateFlag) {
  auto r = ParseTxReport(
      "{:t 9 :tempids {\"a\" 281474976710657} :tx-data [[281474976710657 :u/n \"A\" 9 true]] "
      ":duplicate true}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->t.raw, 9u);
  EXPECT_EQ(r->tempids.at("a").raw, 281474976710657u);
  ASSERT_EQ(r->datoms.size(), 1u);
  EXPECT_EQ(r->datoms[0].a, Keyword::Intern("u/n"));
  EXPECT_TRUE(r->duplicate);
}

TEST(ClientWire, TransactionEntityIdsAboveInt64ParseAsRefs) {
  // Bit 63 marks a transaction entity; EDN readers refuse such integers.
  auto r = ParseTxReport(
      "{:t 7 :tempids {} :tx-data [[9341030598635094016 :db/txInstant "
      "#inst \"2026-11-22T05:59:35.603Z\" 7 true] [5 :a/b \"9341030598635094016\" 7 true]]}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->datoms.at(0).e.raw, 9341030598635094016u);
  EXPECT_TRUE(r->datoms.at(0).e.is_tx());
  EXPECT_EQ(r->datoms.at(1).v, Value::String("9341030598635094016"));  // strings untouched
  auto q = ParseQueryResult("[:find ?tx ?n :where [_ :a/b ?n ?tx]]", "#{[9341030598635094016 12]}");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->rows.at(0).at(0), Value::Ref(EntityId{9341030598635094016u}));
  EXPECT_EQ(q->ToEdn(), "#{[9341030598635094016 12]}");
}

TEST(ClientWire, ErrorCodesMapToStatusCodes) {
  EXPECT_EQ(ErrorFromResponse(400, "{:error {:code \"invalid_argument\" :message \"1:2: bad\"}}").message(),
            "1:2: bad");
  EXPECT_EQ(ErrorFromResponse(400, "{:error {:code \"cross_shard\" :message \"m\"}}").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorFromResponse(409, "{:error {:code \"conflict\" :message \"m\"}}").code(), StatusCode::kConflict);
  EXPECT_EQ(ErrorFromResponse(404, "{:error {:code \"not_found\" :message \"m\"}}").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrorFromResponse(503, "not edn {").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrorFromResponse(504, "").code(), StatusCode::kTimeout);
  EXPECT_EQ(ErrorFromResponse(500, "{:error {:code \"io_error\" :message \"disk\"}}").code(), StatusCode::kIOError);
}

}  // namespace
}  // namespace cairn::client
