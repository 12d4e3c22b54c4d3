// Value -> JSON for `--format json`. nlohmann stays in this file.
#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace cairn::cli {

namespace {
nlohmann::json ToJson(const Value& v) {
  switch (v.type()) {
    case ValueType::kNil: return nullptr;
    case ValueType::kBool: return v.as_bool();
    case ValueType::kLong: return v.as_long();
    case ValueType::kDouble: return v.as_double();
    case ValueType::kInstant: return v.ToString();
    case ValueType::kString: return v.as_string();
    case ValueType::kKeyword: return v.as_keyword().ToString();
    case ValueType::kRef: return v.as_ref().raw;
    case ValueType::kUuid: return v.as_uuid().ToString();
    case ValueType::kBytes: return v.ToString();
    case ValueType::kTuple: {
      auto arr = nlohmann::json::array();
      for (const auto& x : v.as_tuple()) arr.push_back(ToJson(x));
      return arr;
    }
    case ValueType::kMap: {
      auto obj = nlohmann::json::object();
      for (const auto& [k, x] : v.as_map()) {
        std::string key = k.type() == ValueType::kKeyword ? std::string(k.as_keyword().str())
                          : k.type() == ValueType::kString ? k.as_string()
                                                           : k.ToString();
        obj[key] = ToJson(x);
      }
      return obj;
    }
  }
  return nullptr;
}
}  // namespace

std::string ValueToJson(const Value& v) { return ToJson(v).dump(); }

}  // namespace cairn::cli
