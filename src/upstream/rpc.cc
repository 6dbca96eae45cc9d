#include "upstream/rpc.h"

#include <algorithm>

#include "base/json_depth.h"

namespace onemcp::upstream {

using nlohmann::json;

std::shared_ptr<RpcCore::Call> RpcCore::begin(int64_t id, ProgressFn progress) {
  std::shared_ptr<Call> call(new Call(id));
  call->progress_ = std::move(progress);
  std::lock_guard lock(mu_);
  if (closed_) {
    call->done_ = true;
    call->error_ = close_reason_;
  } else {
    calls_[id] = call;
  }
  return call;
}

void RpcCore::end(const std::shared_ptr<Call>& call) {
  {
    std::lock_guard lock(mu_);
    auto it = calls_.find(call->id_);
    if (it != calls_.end() && it->second == call) calls_.erase(it);
  }
  std::lock_guard cb(call->cb_mu_);
  call->progress_ = nullptr;
}

bool RpcCore::done(const Call& call) const {
  std::lock_guard lock(mu_);
  return call.done_;
}

RpcCore::Wait RpcCore::wait(Call& call, Clock::time_point deadline,
                            const std::atomic<bool>* cancel) const {
  // The cancel flag comes with no notification: look at it every few milliseconds.
  constexpr auto kCancelPoll = std::chrono::milliseconds(10);
  std::unique_lock lock(mu_);
  for (;;) {
    if (call.done_) return Wait::kDone;
    if (cancel && cancel->load()) return Wait::kCancelled;
    const auto now = Clock::now();
    if (now >= deadline) return Wait::kTimeout;
    cv_.wait_until(lock, cancel ? std::min(deadline, now + kCancelPoll) : deadline);
  }
}

Result<json> RpcCore::outcome(const Call& call) const {
  std::lock_guard lock(mu_);
  if (call.result_) return *call.result_;
  return make_error(call.error_);
}

void RpcCore::on_text(std::string_view text) {
  if (text.size() > kMaxMessageBytes) {
    h_.refused("a message of " + std::to_string(text.size()) + " bytes (more than the " +
               std::to_string(kMaxMessageBytes) + " allowed)");
    return;
  }
  protocol::Parsed parsed = protocol::parse(text);
  if (parsed.batch) {
    h_.refused("a JSON-RPC batch (not part of MCP)");
    return;
  }
  const auto* refused = std::get_if<protocol::Refusal>(&parsed.items[0]);
  if (refused && refused->code == protocol::kParseError) {
    constexpr size_t kShown = 120;
    h_.refused("a line that is not JSON (or nested deeper than " + std::to_string(kMaxJsonDepth) +
               " levels): " + std::string(text.substr(0, kShown)) +
               (text.size() > kShown ? "..." : ""));
    return;
  }
  route(parsed.items[0]);
}

void RpcCore::on_message(const json& m) {
  if (m.is_array()) {
    h_.refused("a JSON-RPC batch (not part of MCP)");
    return;
  }
  route(protocol::classify(m));
}

void RpcCore::route(const protocol::Item& item) {
  if (const auto* refused = std::get_if<protocol::Refusal>(&item)) {
    h_.refused(refused->message);
    return;
  }
  const protocol::Message& m = std::get<protocol::Message>(item);
  if (m.is_request()) {
    // A request from the upstream: we offer no client capabilities, so only ping is answered.
    h_.reply(protocol::method_of(m.method) == protocol::Method::ping
                 ? protocol::response(m.id, json::object())
                 : protocol::error(m.id, kMethodNotFound, "Method not found: " + m.method));
    return;
  }
  if (m.is_notification()) {
    if (protocol::method_of(m.method) == protocol::Method::progress) {
      const auto token = m.params.find("progressToken");
      if (token == m.params.end() || !token->is_number_integer()) return;
      std::shared_ptr<Call> call;
      {
        std::lock_guard lock(mu_);
        auto it = calls_.find(token->get<int64_t>());
        if (it != calls_.end()) call = it->second;
      }
      if (!call) return;  // a late notification of a call that already ended
      std::lock_guard cb(call->cb_mu_);
      if (call->progress_) call->progress_(m.params);
      return;
    }
    h_.notification(m.method, m.params);
    return;
  }
  if (!m.id.is_number_integer()) {
    h_.refused("a response to id " + m.id.dump() + ", which was never sent");
    return;
  }
  if (m.kind == protocol::Message::Kind::error) {
    std::string msg = "unknown error";
    if (m.error.is_object()) {
      const auto em = m.error.find("message");
      if (em != m.error.end() && em->is_string()) msg = em->get<std::string>();
      const auto code = m.error.find("code");
      if (code != m.error.end() && code->is_number_integer()) {
        msg += " (JSON-RPC error " + std::to_string(code->get<int64_t>()) + ")";
      }
    }
    finish(m.id.get<int64_t>(), std::nullopt, std::move(msg));
  } else {
    finish(m.id.get<int64_t>(), m.result, "");
  }
}

void RpcCore::finish(int64_t id, std::optional<json> result, std::string error) {
  std::lock_guard lock(mu_);
  auto it = calls_.find(id);
  // A response nobody awaits is the normal fate of a call that timed out or was cancelled.
  if (it == calls_.end()) return;
  Call& c = *it->second;
  c.done_ = true;
  c.result_ = std::move(result);
  c.error_ = std::move(error);
  calls_.erase(it);
  cv_.notify_all();
}

void RpcCore::close(const std::string& why) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  close_reason_ = why;
  for (auto& [id, call] : calls_) {
    call->done_ = true;
    call->error_ = why;
  }
  calls_.clear();
  cv_.notify_all();
}

bool RpcCore::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

void LineSplitter::feed(std::string_view bytes,
                        const std::function<void(std::string_view)>& on_line,
                        const std::function<void(size_t)>& on_overflow) {
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    const std::string_view part = bytes.substr(0, nl);
    if (skipping_) {
      skipped_ += part.size();
    } else if (buf_.size() + part.size() > max_) {
      skipping_ = true;
      skipped_ = buf_.size() + part.size();
      buf_.clear();
      buf_.shrink_to_fit();
    } else {
      buf_.append(part);
    }
    if (nl == std::string_view::npos) return;
    bytes.remove_prefix(nl + 1);
    if (skipping_) {
      on_overflow(skipped_);
      skipping_ = false;
      skipped_ = 0;
      continue;
    }
    std::string_view line = buf_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) on_line(line);
    buf_.clear();
  }
}

std::string LineSplitter::take_rest() {
  std::string rest = skipping_ ? std::string() : std::move(buf_);
  buf_.clear();
  skipping_ = false;
  skipped_ = 0;
  return rest;
}

}  // namespace onemcp::upstream
