#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace onemcp::metrics {
namespace {

// A broken invariant of the caller's (a metric declared wrong): never input from a client.
[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "metrics: %s\n", why.c_str());
  std::abort();
}

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

void labels_text(std::string& out, const std::vector<std::string>& names, const LabelValues& values,
                 const std::string* le = nullptr) {
  if (names.empty() && !le) return;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    out += escape_label_value(i < values.size() ? values[i] : std::string());
    out += '"';
  }
  if (le) {
    if (!names.empty()) out += ',';
    out += "le=\"" + *le + "\"";
  }
  out += '}';
}

void sample_line(std::string& out, const std::string& name, const std::vector<std::string>& names,
                 const LabelValues& values, double v, const std::string* le = nullptr) {
  out += name;
  labels_text(out, names, values, le);
  out += ' ';
  out += format_value(v);
  out += '\n';
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

Registry::Family* Registry::find(std::string_view name) {
  for (auto& f : families_)
    if (f.name == name) return &f;
  return nullptr;
}

const Registry::Family* Registry::find(std::string_view name) const {
  for (const auto& f : families_)
    if (f.name == name) return &f;
  return nullptr;
}

void Registry::counter(std::string name, std::string help, std::vector<std::string> labels) {
  gauge(std::move(name), std::move(help), std::move(labels), nullptr, "counter");
}

void Registry::histogram(std::string name, std::string help, std::vector<std::string> labels,
                         std::vector<double> buckets) {
  if (!std::is_sorted(buckets.begin(), buckets.end()) ||
      std::adjacent_find(buckets.begin(), buckets.end()) != buckets.end()) {
    die(name + ": buckets must increase");
  }
  for (const auto& l : labels)
    if (l == "le") die(name + ": a histogram cannot have a label named le");
  gauge(std::move(name), std::move(help), std::move(labels), nullptr, "histogram");
  std::lock_guard lk(mu_);
  families_.back().buckets = std::move(buckets);
}

void Registry::gauge(std::string name, std::string help, std::vector<std::string> labels,
                     std::function<std::vector<Sample>()> read, std::string type) {
  if (!valid_name(name)) die("invalid metric name '" + name + "'");
  for (const auto& l : labels)
    if (!valid_name(l) || l.find(':') != std::string::npos || l.starts_with("__")) {
      die(name + ": invalid label name '" + l + "'");
    }
  std::lock_guard lk(mu_);
  if (find(name)) die(name + " declared twice");
  Family f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = std::move(type);
  f.labels = std::move(labels);
  f.read = std::move(read);
  families_.push_back(std::move(f));
}

void Registry::add(std::string_view name, const LabelValues& labels, double v) {
  std::lock_guard lk(mu_);
  Family* f = find(name);
  if (!f || f->type != "counter" || f->read) die(std::string(name) + " is not a counter");
  if (labels.size() != f->labels.size()) die(std::string(name) + ": wrong number of labels");
  if (!(v >= 0)) return;  // a counter never goes down (nor takes NaN)
  f->counters[labels] += v;
}

void Registry::observe(std::string_view name, const LabelValues& labels, double v) {
  std::lock_guard lk(mu_);
  Family* f = find(name);
  if (!f || f->type != "histogram") die(std::string(name) + " is not a histogram");
  if (labels.size() != f->labels.size()) die(std::string(name) + ": wrong number of labels");
  Histogram& h = f->histograms[labels];
  if (h.counts.empty()) h.counts.assign(f->buckets.size() + 1, 0);
  // The first bucket whose upper bound holds v (le is inclusive); else +Inf.
  const size_t i = std::lower_bound(f->buckets.begin(), f->buckets.end(), v) - f->buckets.begin();
  ++h.counts[i];
  h.sum += v;
  ++h.count;
}

double Registry::value(std::string_view name, const LabelValues& labels) const {
  std::lock_guard lk(mu_);
  const Family* f = find(name);
  if (!f) return 0;
  if (auto it = f->counters.find(labels); it != f->counters.end()) return it->second;
  if (auto it = f->histograms.find(labels); it != f->histograms.end())
    return double(it->second.count);
  return 0;
}

std::string Registry::render() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    if (f.read) {
      auto samples = f.read();
      std::sort(samples.begin(), samples.end(),
                [](const Sample& a, const Sample& b) { return a.labels < b.labels; });
      for (const Sample& s : samples) sample_line(out, f.name, f.labels, s.labels, s.value);
    } else if (f.type == "counter") {
      for (const auto& [labels, v] : f.counters) sample_line(out, f.name, f.labels, labels, v);
    } else {
      for (const auto& [labels, h] : f.histograms) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= f.buckets.size(); ++i) {
          cumulative += h.counts[i];
          const std::string le = i < f.buckets.size() ? format_value(f.buckets[i]) : "+Inf";
          sample_line(out, f.name + "_bucket", f.labels, labels, double(cumulative), &le);
        }
        sample_line(out, f.name + "_sum", f.labels, labels, h.sum);
        sample_line(out, f.name + "_count", f.labels, labels, double(h.count));
      }
    }
  }
  return out;
}

}  // namespace onemcp::metrics
