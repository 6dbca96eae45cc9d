#include "server/recent_runs.h"

namespace onemcp::server {

using nlohmann::json;

namespace {

// At most `max` bytes of valid UTF-8 `s`, cut before a character, never inside one.
std::string head(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

}  // namespace

json recent_run_entry(const std::string& tool, const json& arguments, const json& structured,
                      int64_t at, const RecentRunsLimits& limits) {
  json args = json::object();
  bool left_out = false;
  for (const char* key : {"code", "stdin"}) {
    auto it = arguments.find(key);
    if (it == arguments.end() || !it->is_string()) continue;
    if (it->get_ref<const std::string&>().size() <= limits.argument_bytes) {
      args[key] = *it;
    } else {
      left_out = true;
    }
  }
  // What carries no secret as such: argv, package names and ranges, the policy override (not
  // pip's wheel URLs, which may hold credentials).
  auto keep = [&](const char* key, const char* sub) {
    auto it = arguments.find(key);
    if (it == arguments.end()) return;
    json v = !sub ? *it : it->is_object() && it->contains(sub) ? json{{sub, (*it)[sub]}} : json();
    if (!v.is_null() && v.dump().size() <= limits.argument_bytes) args[key] = v;
  };
  keep("args", nullptr);
  keep("policy", nullptr);
  keep("npm", "dependencies");
  keep("pip", "requirements");
  json entry = {{"at", at}, {"tool", tool}, {"arguments", std::move(args)}};
  if (left_out) entry["argumentsLeftOut"] = true;
  // Environment values may be secrets: their names only.
  if (auto env = arguments.find("env"); env != arguments.end() && env->is_object()) {
    json names = json::array();
    for (const auto& [name, value] : env->items()) names.push_back(head(name, 256));
    entry["envNames"] = std::move(names);
  }
  if (arguments.contains("session")) entry["inSession"] = true;
  for (const char* key : {"outcome", "exitCode", "durationMs", "truncated", "capsule"}) {
    if (auto it = structured.find(key); it != structured.end()) entry[key] = *it;
  }
  bool cut = false;
  for (const char* key : {"stdout", "stderr", "value"}) {
    auto it = structured.find(key);
    if (it == structured.end() || !it->is_string()) continue;
    const auto& s = it->get_ref<const std::string&>();
    entry[key] = head(s, limits.output_bytes);
    cut = cut || s.size() > limits.output_bytes;
  }
  if (cut) entry["outputCut"] = true;
  return entry;
}

void RecentRuns::add(const std::string& principal, json entry) {
  const size_t size = entry.dump().size();
  if (size > limits_.bytes || limits_.runs == 0) return;
  std::lock_guard lk(mu_);
  auto it = by_principal_.find(principal);
  if (it == by_principal_.end()) {
    if (by_principal_.size() >= limits_.principals && !recent_.empty()) {
      by_principal_.erase(recent_.back());
      recent_.pop_back();
    }
    recent_.push_front(principal);
    it = by_principal_.emplace(principal, Kept{{}, 0, recent_.begin()}).first;
  } else {
    recent_.splice(recent_.begin(), recent_, it->second.recent);
  }
  Kept& k = it->second;
  k.runs.emplace_front(std::move(entry), size);
  k.bytes += size;
  while (k.runs.size() > limits_.runs || k.bytes > limits_.bytes) {
    k.bytes -= k.runs.back().second;
    k.runs.pop_back();
  }
}

json RecentRuns::list(const std::string& principal) const {
  json out = json::array();
  std::lock_guard lk(mu_);
  auto it = by_principal_.find(principal);
  if (it == by_principal_.end()) return out;
  for (const auto& [entry, size] : it->second.runs) out.push_back(entry);
  return out;
}

}  // namespace onemcp::server
