// runtimes/js/arena.h — a QuickJS heap at a fixed address, so that a run can hand it on.
//
// One run of an npm dependency set ("make") builds a fresh interpreter inside an arena backed by
// a memfd the supervisor gave it, evaluates the prelude and the set's layer there, and exits; the
// supervisor then seals the memfd. Every later run of that set ("use") maps it copy-on-write at
// the same address and carries on with the interpreter it finds, instead of parsing and
// evaluating the layer again. Both are forks of one zygote, so code addresses (host functions,
// the allocator below) are the same in each.
//
// The allocator keeps all of its state inside the arena (segregated free lists and a bump
// pointer), so a mapped copy is a complete heap. Thread-safety: single-threaded, like QuickJS.
#pragma once

#include <quickjs.h>

#include <cstddef>
#include <cstdint>

#include "base/result.h"

namespace onemcp::js::arena {

inline constexpr uintptr_t kBase = 0x5e0000000000;  // clear of glibc, the stacks and ASan's shadow
inline constexpr size_t kSpan = 64ull << 30;         // above the largest memory limit (16 GiB)
inline constexpr size_t kRootCount = 8;              // words the interpreter keeps its roots in

// Zygote: reserves [kBase, kBase + kSpan) (no access, no memory) so nothing else lands there.
Status reserve();

// "make": maps `fd` (a memfd of `capacity` bytes, sparse) shared at kBase and starts an empty
// heap in it.
Status create(int fd, size_t capacity);

// "make", done: unmaps the arena (the heap is gone from this process).
void release();

// "use": maps all of `fd` copy-on-write at kBase, the rest of the span as fresh memory, and
// checks that it holds a heap made by create().
Status adopt(int fd);

// Bytes from kBase up to the end of the heap's last block, page-aligned (the snapshot's size).
size_t used();

// Allocation functions for JS_NewRuntime2 (they do QuickJS's own accounting and limit check).
const JSMallocFunctions* functions();

// kRootCount words in the arena's header, for the pointers that lead into the heap.
uint64_t* roots();

// For tests: a heap in any writable range of `bytes` (not the fixed address).
void init_at(void* base, size_t bytes);

}  // namespace onemcp::js::arena
