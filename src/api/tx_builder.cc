// TxBuilder: builds EDN tx-data text equivalent to what a user would write.
#include <string>

#include "cairn/database.h"
#include "core/edn.h"

namespace cairn {

namespace {

std::string ValueText(const Value& v) { return WriteEdn(ValueToEdn(v)); }

std::string RefText(const TxBuilder::Ref& r) {
  switch (r.kind) {
    case TxBuilder::Ref::Kind::kId: return std::to_string(r.id.raw);
    case TxBuilder::Ref::Kind::kTempid: return WriteEdn(Edn::String(r.tempid));
    case TxBuilder::Ref::Kind::kLookup: return "[" + r.lookup_attr.ToString() + " " + ValueText(r.lookup_value) + "]";
  }
  return "nil";
}

std::string AttrText(std::string_view attr) {
  // Accept "user/name" and ":user/name".
  if (!attr.empty() && attr.front() == ':') attr.remove_prefix(1);
  return Keyword::Intern(attr).ToString();
}

}  // namespace

TxBuilder& TxBuilder::Add(Ref e, std::string_view attr, Value v) {
  forms_.push_back("[:db/add " + RefText(e) + " " + AttrText(attr) + " " + ValueText(v) + "]");
  return *this;
}

TxBuilder& TxBuilder::Add(Ref e, std::string_view attr, Ref target) {
  forms_.push_back("[:db/add " + RefText(e) + " " + AttrText(attr) + " " + RefText(target) + "]");
  return *this;
}

TxBuilder& TxBuilder::Retract(Ref e, std::string_view attr, Value v) {
  forms_.push_back("[:db/retract " + RefText(e) + " " + AttrText(attr) + " " + ValueText(v) + "]");
  return *this;
}

TxBuilder& TxBuilder::RetractEntity(Ref e) {
  forms_.push_back("[:db/retractEntity " + RefText(e) + "]");
  return *this;
}

TxBuilder& TxBuilder::Cas(Ref e, std::string_view attr, Value old_value, Value new_value) {
  forms_.push_back("[:db/cas " + RefText(e) + " " + AttrText(attr) + " " + ValueText(old_value) + " " +
                   ValueText(new_value) + "]");
  return *this;
}

std::string TxBuilder::ToEdn() const {
  std::string out = "[";
  for (size_t i = 0; i < forms_.size(); ++i) {
    if (i > 0) out += "\n ";
    out += forms_[i];
  }
  out += "]";
  return out;
}

}  // namespace cairn
