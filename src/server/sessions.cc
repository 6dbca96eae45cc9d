#include "server/sessions.h"

#include <algorithm>
#include <vector>

#include "base/log.h"
#include "base/random.h"
#include "base/sha256.h"

namespace onemcp::server {

bool is_replica_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string replica_of(std::string_view handle) {
  const size_t dot = handle.find('.');
  if (!handle.starts_with("ses_") || dot == std::string_view::npos) return "";
  const std::string_view name = handle.substr(4, dot - 4);
  return is_replica_name(name) ? std::string(name) : "";
}

std::string Session::log_name() const { return sha256_hex(handle_).substr(0, 12); }

bool Session::begin_call(sandbox::CancelToken* cancel) {
  std::lock_guard lk(mu_);
  if (ended_) return false;
  calls_.insert(cancel);
  last_used_ = std::chrono::steady_clock::now();
  return true;
}

void Session::end_call(sandbox::CancelToken* cancel) {
  std::lock_guard lk(mu_);
  calls_.erase(cancel);
  last_used_ = std::chrono::steady_clock::now();
}

bool Session::ended() const {
  std::lock_guard lk(mu_);
  return ended_;
}

void Session::end() {
  std::lock_guard lk(mu_);
  ended_ = true;
  for (auto* c : calls_) c->cancel();
}

Sessions::Sessions(const policy::SessionsConfig& config, std::string replica)
    : config_(config), replica_(std::move(replica)) {
  sweeper_ = std::thread([this] { sweep(); });
}

Sessions::~Sessions() {
  std::map<std::string, std::shared_ptr<Session>> all;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    all.swap(by_handle_);
  }
  cv_.notify_all();
  sweeper_.join();
  for (auto& [handle, s] : all) s->end();
  // The interpreters and workspaces go with the last references (here, or when a call ends).
}

Result<std::shared_ptr<Session>> Sessions::create(const std::string& principal) {
  std::lock_guard lk(mu_);
  if (by_handle_.size() >= config_.max_total) {
    return make_error("the server has " + std::to_string(config_.max_total) +
                      " sessions open, its limit (sessions.maxTotal); close one with "
                      "session_close, or wait until one expires");
  }
  size_t mine = 0;
  for (const auto& [h, s] : by_handle_) mine += s->principal() == principal;
  if (mine >= config_.max_per_principal) {
    return make_error("this client has " + std::to_string(mine) +
                      " sessions open, its limit (sessions.maxPerPrincipal); close one with "
                      "session_close, or wait until one expires");
  }
  auto ws = sandbox::Workspace::create(config_.workspace_bytes, config_.workspace_inodes);
  if (!ws) return ws.error();
  const std::string prefix = replica_.empty() ? "ses_" : "ses_" + replica_ + ".";
  auto s = std::make_shared<Session>(prefix + random_hex(32), principal, std::move(*ws));
  by_handle_[s->handle()] = s;
  log::info("session " + s->log_name() + " created for " + principal);
  return s;
}

Result<std::shared_ptr<Session>> Sessions::find(const std::string& handle,
                                                const std::string& principal) {
  std::lock_guard lk(mu_);
  auto it = by_handle_.find(handle);
  if (it == by_handle_.end()) {
    // A handle another replica made: its state lives there only (README, "Scale-out").
    const std::string made_by = replica_of(handle);
    if (!made_by.empty() && made_by != replica_) {
      return make_error(
          "unknown session: replica '" + made_by + "' made it and this is " +
          (replica_.empty() ? "a server without a replica name" : "replica '" + replica_ + "'") +
          "; a session lives only in the replica that made it, so either '" + made_by +
          "' has stopped (and the session with it) or the load balancer does not "
          "route by the Mcp-Param-Session header; create one with session_create");
    }
  }
  if (it == by_handle_.end() || it->second->principal() != principal || it->second->ended()) {
    return make_error(
        "unknown session: it never existed, expired, was closed, or belongs to "
        "another client; create one with session_create");
  }
  {
    std::lock_guard slk(it->second->mu_);
    it->second->last_used_ = std::chrono::steady_clock::now();
  }
  return it->second;
}

Status Sessions::close(const std::string& handle, const std::string& principal) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard lk(mu_);
    auto it = by_handle_.find(handle);
    if (it == by_handle_.end() || it->second->principal() != principal) {
      return make_error(
          "unknown session: it never existed, expired, was closed, or belongs to "
          "another client");
    }
    s = std::move(it->second);
    by_handle_.erase(it);
  }
  s->end();
  log::info("session " + s->log_name() + " closed");
  return {};
}

std::chrono::system_clock::time_point Sessions::expires(const Session& s) const {
  std::lock_guard lk(s.mu_);
  const auto idle = std::chrono::steady_clock::now() - s.last_used_;
  return std::chrono::system_clock::now() -
         std::chrono::duration_cast<std::chrono::system_clock::duration>(idle) +
         std::chrono::milliseconds(config_.idle_ms);
}

size_t Sessions::open() const {
  std::lock_guard lk(mu_);
  return by_handle_.size();
}

void Sessions::sweep() {
  const auto idle = std::chrono::milliseconds(config_.idle_ms);
  const auto every = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000), idle / 4);
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, every, [&] { return stopping_; });
    if (stopping_) return;
    std::vector<std::shared_ptr<Session>> expired;
    const auto now = std::chrono::steady_clock::now();
    for (auto it = by_handle_.begin(); it != by_handle_.end();) {
      Session& s = *it->second;
      bool idle_out;
      {
        std::lock_guard slk(s.mu_);
        idle_out = s.calls_.empty() && now - s.last_used_ >= idle;
      }
      if (idle_out) {
        expired.push_back(std::move(it->second));
        it = by_handle_.erase(it);
      } else {
        ++it;
      }
    }
    lk.unlock();
    for (auto& s : expired) {
      s->end();
      log::info("session " + s->log_name() + " expired after " + std::to_string(config_.idle_ms) +
                " ms without a call");
    }
    expired.clear();  // its interpreters end here, outside the lock
    lk.lock();
  }
}

}  // namespace onemcp::server
