// base/result.h — Result<T>: a value or a public error message. No exceptions cross modules.
// Thread-safety: a value type; no shared state.
#pragma once

#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace onemcp {

struct Error {
  std::string message;
  // The errno of a system call that failed on the server's own resources (a full disk, a
  // read-only cache directory), so a caller can tell them from bad input; 0 otherwise.
  int os_error = 0;
};

inline Error make_error(std::string message) { return Error{std::move(message), 0}; }
inline Error make_os_error(int os_error, std::string message) {
  return Error{std::move(message), os_error};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  void check() const {
    if (!ok()) std::abort();  // broken invariant: value() on an error
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace onemcp
