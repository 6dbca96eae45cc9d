// base/c_ptr.h — ownership of a C library's object that a function of that library frees:
// CPtr<EVP_PKEY, EVP_PKEY_free>, CPtr<CURL, curl_easy_cleanup>. Null is never passed to it.
// Thread-safety: as std::unique_ptr.
#pragma once

#include <memory>

namespace onemcp {

template <auto Free>
struct FreeWith {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <class T, auto Free>
using CPtr = std::unique_ptr<T, FreeWith<Free>>;

}  // namespace onemcp
