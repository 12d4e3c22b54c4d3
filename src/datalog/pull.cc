#include "datalog/pull.h"

#include <algorithm>
#include <map>

#include "datalog/parser.h"

namespace cairn::datalog {

namespace {

constexpr int64_t kDefaultLimit = 1000;

struct AttrSpec {
  Keyword attr;        // forward attribute (for reverse: the attribute pointing here)
  bool reverse = false;
  bool is_db_id = false;
  Value key;           // result key
  int64_t limit = kDefaultLimit;  // -1 = none
  bool has_default = false;
  Value default_value;
  const Edn* sub = nullptr;  // sub-pattern
  bool recursive = false;    // ... or depth
  int64_t depth = -1;        // -1 = unbounded
};

Status Err(const Edn& at, const std::string& what) {
  return Status::InvalidArgument(at.Where() + ": pull: " + what + " in " + WriteEdn(at));
}

class Puller {
 public:
  explicit Puller(const IndexSource& src) : src_(src) {}

  Result<Value> Entity(EntityId e, const Edn& pattern) {
    if (!pattern.is(Edn::Kind::kVector) && !pattern.is(Edn::Kind::kList))
      return Err(pattern, "a pattern is a vector");
    std::vector<std::pair<Value, Value>> out;
    std::vector<AttrSpec> specs;
    bool wildcard = false;
    for (const Edn& item : pattern.items) {
      if (item.IsSymbol("*") || (item.is(Edn::Kind::kString) && item.text == "*")) {
        wildcard = true;
        continue;
      }
      if (item.is(Edn::Kind::kMap)) {
        for (size_t i = 0; i + 1 < item.items.size(); i += 2) {
          CAIRN_ASSIGN_OR_RETURN(AttrSpec s, ParseSpec(item.items[i]));
          const Edn& v = item.items[i + 1];
          if (v.IsSymbol("...")) {
            s.recursive = true;
          } else if (v.is(Edn::Kind::kInt)) {
            s.recursive = true;
            s.depth = v.i;
          } else if (v.is(Edn::Kind::kVector)) {
            s.sub = &v;
          } else {
            return Err(v, "expected a pattern, ... or a depth");
          }
          specs.push_back(std::move(s));
        }
        continue;
      }
      CAIRN_ASSIGN_OR_RETURN(AttrSpec s, ParseSpec(item));
      specs.push_back(std::move(s));
    }
    std::vector<Keyword> explicit_attrs;
    for (const AttrSpec& s : specs)
      if (!s.reverse && !s.is_db_id) explicit_attrs.push_back(s.attr);
    if (wildcard) {
      // Every attribute of the entity, in attribute order.
      std::map<Keyword, std::vector<Value>> attrs;
      DatomPattern p;
      p.e = e;
      CAIRN_RETURN_IF_ERROR(src_.Scan(p, [&](const Datom& d) {
        attrs[d.a].push_back(d.v);
        return true;
      }));
      out.emplace_back(Value::Kw("db/id"), Value::Ref(e));
      for (auto& [a, vals] : attrs) {
        if (std::find(explicit_attrs.begin(), explicit_attrs.end(), a) != explicit_attrs.end()) continue;
        const Attribute* attr = src_.schema().Find(a);
        bool many = attr != nullptr && attr->is_many();
        bool ref = attr != nullptr && attr->is_ref();
        bool component = attr != nullptr && attr->is_component;
        std::vector<Value> conv;
        for (Value& v : vals) {
          if (ref && v.type() == ValueType::kRef) {
            if (component) {
              CAIRN_ASSIGN_OR_RETURN(Value sub, Recurse(v.as_ref(), pattern));
              conv.push_back(sub.is_nil() ? IdMap(v.as_ref()) : sub);
            } else {
              conv.push_back(IdMap(v.as_ref()));
            }
          } else {
            conv.push_back(std::move(v));
          }
        }
        if (many) {
          out.emplace_back(Value::Kw(a), Value::Tuple(std::move(conv)));
        } else if (!conv.empty()) {
          out.emplace_back(Value::Kw(a), std::move(conv[0]));
        }
      }
    }
    for (const AttrSpec& s : specs) {
      if (s.is_db_id) {
        if (!wildcard) out.emplace_back(s.key, Value::Ref(e));
        continue;
      }
      std::vector<Value> vals;
      DatomPattern p;
      p.a = s.attr;
      int64_t limit = s.limit;
      if (s.reverse) {
        p.v = Value::Ref(e);
      } else {
        p.e = e;
      }
      CAIRN_RETURN_IF_ERROR(src_.Scan(p, [&](const Datom& d) {
        if (limit >= 0 && static_cast<int64_t>(vals.size()) >= limit) return false;
        vals.push_back(s.reverse ? Value::Ref(d.e) : d.v);
        return true;
      }));
      const Attribute* attr = src_.schema().Find(s.attr);
      bool ref = s.reverse || (attr != nullptr && attr->is_ref());
      bool many = s.reverse ? !(attr != nullptr && attr->is_component) : (attr != nullptr && attr->is_many());
      if (vals.empty()) {
        if (s.has_default) out.emplace_back(s.key, s.default_value);
        continue;
      }
      std::vector<Value> conv;
      for (Value& v : vals) {
        if (ref && v.type() == ValueType::kRef) {
          EntityId target = v.as_ref();
          if (s.recursive) {
            int64_t& depth = depth_[s.attr.id() * 2 + (s.reverse ? 1 : 0)];
            bool on_path = std::find(path_.begin(), path_.end(), target) != path_.end();
            if (on_path || (s.depth >= 0 && depth >= s.depth)) {
              if (on_path) conv.push_back(IdMap(target));
              continue;
            }
            ++depth;
            auto sub = Recurse(target, pattern);
            --depth;
            if (!sub.ok()) return sub.status();
            conv.push_back(sub->is_nil() ? IdMap(target) : *sub);
          } else if (s.sub != nullptr) {
            CAIRN_ASSIGN_OR_RETURN(Value sub, Recurse(target, *s.sub));
            conv.push_back(sub.is_nil() ? IdMap(target) : sub);
          } else if (attr != nullptr && attr->is_component && !s.reverse) {
            CAIRN_ASSIGN_OR_RETURN(Value sub, Recurse(target, Star()));
            conv.push_back(sub.is_nil() ? IdMap(target) : sub);
          } else {
            conv.push_back(IdMap(target));
          }
        } else {
          conv.push_back(std::move(v));
        }
      }
      if (conv.empty()) continue;
      if (many) {
        out.emplace_back(s.key, Value::Tuple(std::move(conv)));
      } else {
        out.emplace_back(s.key, std::move(conv[0]));
      }
    }
    if (out.empty()) return Value();
    return Value::Map(std::move(out));
  }

  Result<Value> Recurse(EntityId e, const Edn& pattern) {
    if (path_.size() > 100) return Status::InvalidArgument("pull: recursion deeper than 100");
    path_.push_back(e);
    auto r = Entity(e, pattern);
    path_.pop_back();
    return r;
  }

 private:
  static Value IdMap(EntityId e) { return Value::Map({{Value::Kw("db/id"), Value::Ref(e)}}); }
  static const Edn& Star() {
    static const Edn* star = new Edn(Edn::Vector({Edn::Symbol("*")}));
    return *star;
  }

  Result<AttrSpec> ParseSpec(const Edn& item) {
    AttrSpec s;
    auto set_attr = [&](const Edn& k) -> Status {
      if (!k.is(Edn::Kind::kKeyword)) return Err(k, "expected an attribute keyword");
      Keyword kw = Keyword::Intern(k.text);
      s.key = Value::Kw(kw);
      if (k.text == "db/id") {
        s.is_db_id = true;
        return Status::OK();
      }
      std::string_view name = kw.name();
      if (!name.empty() && name[0] == '_') {
        s.reverse = true;
        std::string fwd = kw.ns().empty() ? std::string(name.substr(1))
                                          : std::string(kw.ns()) + "/" + std::string(name.substr(1));
        s.attr = Keyword::Intern(fwd);
      } else {
        s.attr = kw;
      }
      return Status::OK();
    };
    auto opt = [&](const Edn& k, const Edn& v) -> Status {
      if (k.IsKeyword("limit")) {
        if (v.is(Edn::Kind::kNil)) {
          s.limit = -1;
        } else if (v.is(Edn::Kind::kInt) && v.i >= 0) {
          s.limit = v.i;
        } else {
          return Err(v, ":limit takes a non-negative integer or nil");
        }
      } else if (k.IsKeyword("default")) {
        CAIRN_ASSIGN_OR_RETURN(s.default_value, ConstantToValue(v));
        s.has_default = true;
      } else if (k.IsKeyword("as")) {
        CAIRN_ASSIGN_OR_RETURN(s.key, ConstantToValue(v));
      } else {
        return Err(k, "unknown attribute option");
      }
      return Status::OK();
    };
    if (item.is(Edn::Kind::kKeyword)) {
      CAIRN_RETURN_IF_ERROR(set_attr(item));
      return s;
    }
    if (item.is(Edn::Kind::kVector) && !item.items.empty() && item.items.size() % 2 == 1) {
      CAIRN_RETURN_IF_ERROR(set_attr(item.items[0]));
      for (size_t i = 1; i + 1 < item.items.size(); i += 2) CAIRN_RETURN_IF_ERROR(opt(item.items[i], item.items[i + 1]));
      return s;
    }
    if (item.is(Edn::Kind::kList) && item.items.size() == 3 && item.items[0].is(Edn::Kind::kSymbol)) {
      CAIRN_RETURN_IF_ERROR(set_attr(item.items[1]));
      const std::string& fn = item.items[0].text;
      if (fn == "limit" || fn == "default") {
        CAIRN_RETURN_IF_ERROR(opt(Edn::KeywordNode(fn), item.items[2]));
        return s;
      }
    }
    return Err(item, "malformed attribute spec");
  }

  const IndexSource& src_;
  std::vector<EntityId> path_;
  std::map<uint64_t, int64_t> depth_;
};

}  // namespace

Result<Value> Pull(const IndexSource& src, const Edn& pattern, EntityId e) {
  Puller p(src);
  return p.Recurse(e, pattern);
}

}  // namespace cairn::datalog
