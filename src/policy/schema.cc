#include "policy/schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <vector>

namespace onemcp::policy {

using nlohmann::json;

namespace {

// Our schemas nest a handful of levels; a deeper walk means a $ref cycle.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxShown = 60;  // bytes of an offending value quoted in a message

struct Ctx {
  const json& root;
  std::vector<std::string> errors;
  size_t total = 0;

  void add(const std::string& path, const std::string& problem) {
    ++total;
    if (errors.size() < kMaxErrors)
      errors.push_back((path.empty() ? "(root)" : path) + ": " + problem);
  }
};

// ---- values and numbers --------------------------------------------------------------------

std::string dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// "(got ...)": short, and never the whole of a large value.
std::string got(const json& v) {
  if (v.is_object()) return " (got an object)";
  if (v.is_array()) return " (got an array)";
  std::string s = dump(v);
  if (s.size() > kMaxShown) {
    size_t cut = kMaxShown;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
    s = s.substr(0, cut) + "…";
  }
  return " (got " + s + ")";
}

bool finite_number(const json& v) {
  return v.is_number() && (!v.is_number_float() || std::isfinite(v.get<double>()));
}

// An integer must also be representable, so that no later conversion can wrap around.
bool integral(const json& v) {
  if (v.is_number_integer()) return true;  // int64 or uint64
  if (!v.is_number_float()) return false;
  double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d && d >= -9223372036854775808.0 &&
         d < 18446744073709551616.0;
}

// long double holds every int64/uint64 exactly on the targets we build for.
// Integral but beyond int64/uint64 (e.g. 1e300): worth saying why it is not "an integer".
bool too_big_integer(const json& v) {
  if (!v.is_number_float()) return false;
  double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d && !integral(v);
}

long double num(const json& v) {
  if (v.is_number_unsigned()) return static_cast<long double>(v.get<uint64_t>());
  if (v.is_number_integer()) return static_cast<long double>(v.get<int64_t>());
  return v.get<double>();
}

bool type_matches(const std::string& t, const json& v) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return finite_number(v);
  if (t == "integer") return integral(v);
  return false;
}

std::string type_noun(const std::string& t) {
  if (t == "null") return "null";
  if (t == "boolean") return "true or false";
  if (t == "object") return "an object";
  if (t == "array") return "an array";
  if (t == "string") return "a string";
  if (t == "integer") return "an integer";
  return "a number";
}

std::vector<std::string> types_of(const json& s) {
  std::vector<std::string> out;
  auto it = s.find("type");
  if (it == s.end()) return out;
  if (it->is_string()) out.push_back(it->get<std::string>());
  if (it->is_array()) {
    for (const auto& t : *it) {
      if (t.is_string()) out.push_back(t.get<std::string>());
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// "an integer from 1 to 600000", "an integer ≥ 0", "a number > 0".
std::string numeric_expectation(const json& s) {
  auto types = types_of(s);
  bool integer = std::find(types.begin(), types.end(), "integer") != types.end();
  std::string noun = integer ? "an integer" : "a number";
  auto min = s.find("minimum"), max = s.find("maximum");
  auto xmin = s.find("exclusiveMinimum"), xmax = s.find("exclusiveMaximum");
  bool has_min = min != s.end() && min->is_number(), has_max = max != s.end() && max->is_number();
  bool has_xmin = xmin != s.end() && xmin->is_number();
  bool has_xmax = xmax != s.end() && xmax->is_number();
  if (has_min && has_max && !has_xmin && !has_xmax) {
    return noun + " from " + dump(*min) + " to " + dump(*max);
  }
  std::vector<std::string> bounds;
  if (has_min) bounds.push_back("≥ " + dump(*min));
  if (has_xmin) bounds.push_back("> " + dump(*xmin));
  if (has_max) bounds.push_back("≤ " + dump(*max));
  if (has_xmax) bounds.push_back("< " + dump(*xmax));
  return bounds.empty() ? noun : noun + " " + join(bounds, " and ");
}

bool numeric_type(const std::vector<std::string>& types) {
  return types.size() == 1 && (types[0] == "integer" || types[0] == "number");
}

// "1 item", "3 items".
std::string how_many(const json& n, const std::string& noun) {
  return dump(n) + " " + noun + (num(n) == 1 ? "" : "s");
}

size_t code_points(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Compiled patterns are kept: the same few patterns are checked on every call.
const std::regex* compiled(const std::string& pattern) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<std::regex>> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(pattern);
  if (it != cache.end()) return it->second.get();
  if (cache.size() >= 256) return nullptr;  // only our own schemas reach here; stay bounded anyway
  auto re = std::make_unique<std::regex>(pattern, std::regex::ECMAScript);
  return cache.emplace(pattern, std::move(re)).first->second.get();
}

// ---- the walk ------------------------------------------------------------------------------

void check(const json& s, const json& v, const std::string& path, Ctx& ctx, int depth);

bool passes(const json& s, const json& v, const std::string& path, Ctx& ctx, int depth,
            std::string* first_error = nullptr) {
  Ctx sub{ctx.root, {}, 0};
  check(s, v, path, sub, depth);
  if (first_error && !sub.errors.empty()) *first_error = sub.errors.front();
  return sub.total == 0;
}

void check_number(const json& s, const json& v, const std::string& path, Ctx& ctx) {
  if (!finite_number(v)) {
    ctx.add(path, "must be a finite number");
    return;
  }
  long double x = num(v);
  auto bound = [&](const char* k) -> const json* {
    auto it = s.find(k);
    return it != s.end() && it->is_number() ? &*it : nullptr;
  };
  bool bad = false;
  if (auto b = bound("minimum")) bad |= x < num(*b);
  if (auto b = bound("maximum")) bad |= x > num(*b);
  if (auto b = bound("exclusiveMinimum")) bad |= x <= num(*b);
  if (auto b = bound("exclusiveMaximum")) bad |= x >= num(*b);
  if (bad) ctx.add(path, "must be " + numeric_expectation(s) + got(v));
}

void check_string(const json& s, const json& v, const std::string& path, Ctx& ctx) {
  const auto& str = v.get_ref<const std::string&>();
  size_t n = code_points(str);
  if (auto it = s.find("minLength"); it != s.end() && it->is_number() && n < num(*it)) {
    ctx.add(path, num(*it) == 1 ? "must not be empty"
                                : "must be at least " + dump(*it) + " characters long" + got(v));
  }
  if (auto it = s.find("maxLength"); it != s.end() && it->is_number() && n > num(*it)) {
    ctx.add(path,
            "must be at most " + dump(*it) + " characters long (got " + std::to_string(n) + ")");
    return;  // never run a pattern over an overlong string
  }
  if (auto it = s.find("pattern"); it != s.end() && it->is_string()) {
    const auto& pattern = it->get_ref<const std::string&>();
    try {
      const std::regex* re = compiled(pattern);
      if (!re) {
        ctx.add(path, "cannot be checked: too many distinct patterns");
      } else if (!std::regex_search(str, *re)) {
        ctx.add(path, "must match the pattern " + pattern + got(v));
      }
    } catch (const std::exception&) {
      ctx.add(path, "cannot be checked against the pattern " + pattern);
    }
  }
}

void check_array(const json& s, const json& v, const std::string& path, Ctx& ctx, int depth) {
  if (auto it = s.find("minItems"); it != s.end() && it->is_number() && v.size() < num(*it)) {
    ctx.add(path, "must have at least " + how_many(*it, "item"));
  }
  if (auto it = s.find("maxItems"); it != s.end() && it->is_number() && v.size() > num(*it)) {
    ctx.add(path, "must have at most " + how_many(*it, "item") + " (got " +
                      std::to_string(v.size()) + ")");
    return;  // an oversized array is not worth walking
  }
  if (s.value("uniqueItems", false)) {
    // Sorted, not pairwise: a call's arrays are untrusted and may be long.
    std::vector<size_t> order(v.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<std::pair<size_t, size_t>> dups;  // (later, first)
    size_t group = 0;  // stable sort: a group of equal items starts with the lowest index
    for (size_t k = 1; k < order.size(); ++k) {
      if (v[order[k]] == v[order[group]]) {
        dups.emplace_back(order[k], order[group]);
      } else {
        group = k;
      }
    }
    std::sort(dups.begin(), dups.end());
    for (auto [later, first] : dups) {
      ctx.add(join_path(path, later), "duplicate of " + join_path(path, first) + got(v[later]));
    }
  }
  if (auto it = s.find("items"); it != s.end()) {
    for (size_t i = 0; i < v.size(); ++i) check(*it, v[i], join_path(path, i), ctx, depth + 1);
  }
}

void check_object(const json& s, const json& v, const std::string& path, Ctx& ctx, int depth) {
  if (auto it = s.find("required"); it != s.end() && it->is_array()) {
    for (const auto& k : *it) {
      if (k.is_string() && !v.contains(k.get<std::string>())) {
        ctx.add(join_path(path, k.get<std::string>()), "required");
      }
    }
  }
  auto props = s.find("properties");
  bool has_props = props != s.end() && props->is_object();
  auto extra = s.find("additionalProperties");
  auto names = s.find("propertyNames");
  for (const auto& [key, value] : v.items()) {
    std::string p = join_path(path, key);
    if (names != s.end()) {
      std::string why;
      if (!passes(*names, json(key), p, ctx, depth + 1, &why)) {
        // "<p>: <problem>" → "<p>: invalid field name: <problem>"
        ctx.add(p, "invalid field name: " + why.substr(std::min(why.size(), p.size() + 2)));
      }
    }
    if (has_props && props->contains(key)) {
      check((*props)[key], value, p, ctx, depth + 1);
    } else if (extra != s.end()) {
      if (extra->is_boolean() && !extra->get<bool>()) {
        std::string problem = "unknown field";
        if (has_props) {
          std::string best;
          size_t best_d = 3;  // suggest only near misses
          for (const auto& [known, _] : props->items()) {
            size_t d = edit_distance(key, known);
            if (d < best_d) best_d = d, best = known;
          }
          if (!best.empty()) problem += " (did you mean \"" + best + "\"?)";
        }
        ctx.add(p, problem);
      } else {
        check(*extra, value, p, ctx, depth + 1);
      }
    }
  }
  if (auto it = s.find("minProperties"); it != s.end() && it->is_number() && v.size() < num(*it)) {
    ctx.add(path, "must have at least " + how_many(*it, "field"));
  }
  if (auto it = s.find("maxProperties"); it != s.end() && it->is_number() && v.size() > num(*it)) {
    ctx.add(path, "must have at most " + how_many(*it, "field") + " (got " +
                      std::to_string(v.size()) + ")");
  }
}

void check(const json& s, const json& v, const std::string& path, Ctx& ctx, int depth) {
  if (s.is_boolean()) {
    if (!s.get<bool>()) ctx.add(path, "not allowed");
    return;
  }
  if (!s.is_object()) {
    ctx.add(path, "cannot be checked: the schema is malformed");
    return;
  }
  if (depth > kMaxDepth) {
    ctx.add(path, "cannot be checked: the schema nests too deeply");
    return;
  }

  if (auto it = s.find("$ref"); it != s.end()) {
    const json* target = nullptr;
    if (it->is_string()) {
      const auto& ref = it->get_ref<const std::string&>();
      if (ref == "#") {
        target = &ctx.root;
      } else if (ref.rfind("#/", 0) == 0) {
        try {
          json::json_pointer ptr(ref.substr(1));
          if (ctx.root.contains(ptr)) target = &ctx.root.at(ptr);
        } catch (const json::exception&) {
        }
      }
    }
    if (!target) {
      ctx.add(path, "cannot be checked: unresolvable $ref " + dump(*it));
      return;
    }
    check(*target, v, path, ctx, depth + 1);
  }

  // A value of the wrong type gets one message; its other keywords would only add noise.
  auto types = types_of(s);
  if (!types.empty() &&
      std::none_of(types.begin(), types.end(), [&](const auto& t) { return type_matches(t, v); })) {
    std::string expected;
    if (numeric_type(types)) {
      expected = numeric_expectation(s);
    } else {
      std::vector<std::string> nouns;
      for (const auto& t : types) nouns.push_back(type_noun(t));
      expected = join(nouns, " or ");
    }
    std::string shown = got(v);
    bool wants_integer = std::find(types.begin(), types.end(), "integer") != types.end();
    if (wants_integer && too_big_integer(v)) shown.insert(shown.size() - 1, ", out of range");
    ctx.add(path, "must be " + expected + shown);
    return;
  }

  if (auto it = s.find("const"); it != s.end() && *it != v) {
    ctx.add(path, "must be " + dump(*it) + got(v));
    return;
  }
  if (auto it = s.find("enum");
      it != s.end() && it->is_array() && std::find(it->begin(), it->end(), v) == it->end()) {
    std::vector<std::string> options;
    for (const auto& o : *it) options.push_back(dump(o));
    ctx.add(path,
            (options.size() == 1 ? "must be " : "must be one of ") + join(options, ", ") + got(v));
    return;
  }

  if (v.is_number()) check_number(s, v, path, ctx);
  if (v.is_string()) check_string(s, v, path, ctx);
  if (v.is_array()) check_array(s, v, path, ctx, depth);
  if (v.is_object()) check_object(s, v, path, ctx, depth);

  if (auto it = s.find("allOf"); it != s.end() && it->is_array()) {
    for (const auto& sub : *it) check(sub, v, path, ctx, depth + 1);
  }
  if (auto it = s.find("anyOf"); it != s.end() && it->is_array()) {
    std::vector<std::string> why;
    bool any = false;
    for (const auto& sub : *it) {
      std::string first;
      if (passes(sub, v, path, ctx, depth + 1, &first)) {
        any = true;
        break;
      }
      why.push_back(first);
    }
    if (!any) ctx.add(path, "must match one of the allowed forms (" + join(why, " | ") + ")");
  }
  if (auto it = s.find("oneOf"); it != s.end() && it->is_array()) {
    std::vector<std::string> why;
    size_t matches = 0;
    for (const auto& sub : *it) {
      std::string first;
      if (passes(sub, v, path, ctx, depth + 1, &first)) {
        ++matches;
      } else {
        why.push_back(first);
      }
    }
    if (matches == 0)
      ctx.add(path, "must match one of the allowed forms (" + join(why, " | ") + ")");
    if (matches > 1) ctx.add(path, "is ambiguous: it matches more than one of the allowed forms");
  }
  if (auto it = s.find("not"); it != s.end() && passes(*it, v, path, ctx, depth + 1)) {
    // The schema's description says why ("only for transport \"http\"").
    auto d = s.find("description");
    ctx.add(path, d != s.end() && d->is_string() ? "not allowed (" + d->get<std::string>() + ")"
                                                 : std::string("not allowed"));
  }
  if (auto it = s.find("if"); it != s.end()) {
    const char* branch = passes(*it, v, path, ctx, depth + 1) ? "then" : "else";
    if (auto b = s.find(branch); b != s.end()) check(*b, v, path, ctx, depth + 1);
  }
}

bool identifier(std::string_view key) {
  if (key.empty() ||
      !(std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_' || key[0] == '$')) {
    return false;
  }
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '-';
  });
}

}  // namespace

std::string join_path(std::string_view parent, std::string_view key) {
  if (identifier(key))
    return parent.empty() ? std::string(key) : std::string(parent) + "." + std::string(key);
  return std::string(parent) + "[" + dump(json(std::string(key))) + "]";
}

std::string join_path(std::string_view parent, size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

bool is_supported_keyword(std::string_view k) {
  static constexpr std::string_view kKeywords[] = {"type",
                                                   "properties",
                                                   "required",
                                                   "additionalProperties",
                                                   "items",
                                                   "enum",
                                                   "const",
                                                   "minimum",
                                                   "maximum",
                                                   "exclusiveMinimum",
                                                   "exclusiveMaximum",
                                                   "minLength",
                                                   "maxLength",
                                                   "minItems",
                                                   "maxItems",
                                                   "uniqueItems",
                                                   "pattern",
                                                   "propertyNames",
                                                   "minProperties",
                                                   "maxProperties",
                                                   "allOf",
                                                   "anyOf",
                                                   "oneOf",
                                                   "not",
                                                   "if",
                                                   "then",
                                                   "else",
                                                   "$ref",
                                                   "$defs",
                                                   "$schema",
                                                   "$id",
                                                   "$comment",
                                                   "title",
                                                   "description",
                                                   "default",
                                                   "examples",
                                                   "x-mcp-header"};
  return std::find(std::begin(kKeywords), std::end(kKeywords), k) != std::end(kKeywords);
}

Status validate(const json& schema, const json& instance, std::string_view root_path) {
  Ctx ctx{schema, {}, 0};
  try {
    check(schema, instance, std::string(root_path), ctx, 0);
  } catch (const std::exception& e) {  // nothing above should throw; never let it escape
    return make_error(std::string(root_path.empty() ? "(root)" : root_path) +
                      ": cannot be checked (" + e.what() + ")");
  }
  if (ctx.total == 0) return {};
  std::string msg = join(ctx.errors, "; ");
  if (ctx.total > ctx.errors.size()) {
    msg += "; and " + std::to_string(ctx.total - ctx.errors.size()) + " more";
  }
  return make_error(std::move(msg));
}

}  // namespace onemcp::policy
