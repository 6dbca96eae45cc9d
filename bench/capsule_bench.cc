// capsule_bench — the cache-hit path: CapsuleStore::open (read, parse, id, Ed25519 signature,
// every layer's SHA-256, mtime touch) on capsules of a few sizes, plus its parts, in a temp dir;
// then what a run pays on the server (server::Capsules::get): a repeat served from memory, and
// new code with a known dependency layer (stored, signed, written).
// Usage: build/bench/capsule_bench [iterations, default 2000]. Prints a markdown table.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "capsule/store.h"
#include "server/capsules.h"

using namespace onemcp::capsule;

namespace {

struct Stats {
  double p50, p95, p99;
};

Stats measure(int n, const std::function<void()>& f) {
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 95 / 100], us[us.size() * 99 / 100]};
}

void row(const std::string& what, const Stats& s) {
  std::printf("| %-44s | %8.1f | %8.1f | %8.1f |\n", what.c_str(), s.p50, s.p95, s.p99);
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  char tmpl[] = "/tmp/1mcp-capsule-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) return 1;
  StoreOptions o;
  o.dir = std::string(tmpl) + "/cache";
  auto store = CapsuleStore::create(o, SigningKey::generate());
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  CapsuleStore& s = **store;

  std::printf("capsule open+verify, %d iterations each, times in microseconds\n\n", n);
  std::printf("| %-44s | %8s | %8s | %8s |\n", "operation", "p50", "p95", "p99");
  std::printf("|%s|---------:|---------:|---------:|\n", std::string(46, '-').c_str());
  for (size_t size : {size_t(1) << 10, size_t(4) << 10, size_t(64) << 10, size_t(1) << 20}) {
    Manifest m;
    m.language = "js";
    m.runtime = {"quickjs", "2021-03-27"};
    m.entry.argv = {"code.js"};
    m.layers = {{"code", "code", "code.js", "", 0}};
    m.policy = {{"limits", {{"timeoutMs", 60000}, {"memMb", 256}, {"stdoutBytes", 1048576}}}};
    auto c = s.put(m, {std::string(size, 'x')});
    if (!c) {
      std::fprintf(stderr, "%s\n", c.error().message.c_str());
      return 1;
    }
    std::string label = std::to_string(size >> 10) + " KiB code layer";
    row("open (" + label + ")", measure(n, [&] {
          if (!s.open(c->hash)) std::abort();
        }));
    int dir = ::open((o.dir + "/" + c->hash).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    row("  verify_capsule_dir, no mtime touch", measure(n, [&] {
          if (!verify_capsule_dir(dir, c->hash, s.public_key(), s.limits())) std::abort();
        }));
    ::close(dir);
    row("  parse_manifest + capsule_hash", measure(n, [&] {
          auto p = parse_manifest(c->manifest_json);
          if (!p || !capsule_hash(*p)) std::abort();
        }));
    std::string sig = *from_hex(c->manifest.signature.value);
    std::string msg = signed_message(c->hash);
    row("  Ed25519 verify", measure(n, [&] {
          if (!verify_signature(s.public_key(), msg, sig)) std::abort();
        }));
    row("  SHA-256 of the layer", measure(n, [&] { sha256(*c->layers[0]); }));
  }

  // A run's capsule: 200 bytes of code and a dependency layer whose hash the npm cache knows, in
  // a store as the server opens it (no fsync).
  StoreOptions ro = o;
  ro.dir = std::string(tmpl) + "/runs";
  ro.sync = false;
  auto run_store = CapsuleStore::create(ro, SigningKey::generate());
  if (!run_store) return 1;
  onemcp::server::Capsules caps(**run_store, {.memory_bytes = 256u << 20});
  for (size_t deps_size : {size_t(2) << 10, size_t(1) << 20}) {
    const std::string deps(deps_size, 'd');
    const std::string deps_sha = sha256_hex(deps);
    auto manifest = [&] {
      Manifest m;
      m.language = "js";
      m.runtime = {"quickjs", "2021-03-27"};
      m.entry = {{"a"}, {{"K", "v"}}, ""};
      m.layers = {{"code", "code", "code.js", "", 0}, {"deps", "deps", "deps.js", deps_sha, 0}};
      m.policy = {{"limits", {{"timeoutMs", 60000}, {"memMb", 256}, {"stdoutBytes", 1048576}}}};
      return m;
    };
    const std::string code(200, 'c');
    std::string label = std::to_string(deps_size >> 10) + " KiB deps";
    row("Capsules::get, repeat (memory, " + label + ")", measure(n, [&] {
          if (!caps.get(manifest(), {code, deps})) std::abort();
        }));
    int i = 0;
    row("Capsules::get, new code (put, " + label + ")", measure(std::min(n, 200), [&] {
          std::string fresh = code + std::to_string(i++);
          if (!caps.get(manifest(), {fresh, deps})) std::abort();
        }));
  }
  std::filesystem::remove_all(tmpl);
  return 0;
}
