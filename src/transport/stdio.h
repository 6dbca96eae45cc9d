// transport/stdio.h — newline-delimited message transport over two file descriptors.
// Thread-safety: serve_stdio blocks its calling thread; the WriteLine it hands out may be called
// from any thread, at any time (also after serve_stdio returned: then it is a no-op once the
// output broke, otherwise it still writes).
#pragma once

#include "server/http_api.h"

namespace onemcp::transport {

// Reads newline-delimited messages from in_fd until EOF and calls handler.handle_line for each
// without waiting for earlier messages' work. Every write goes to out_fd as one whole line plus
// '\n' under a lock, so lines never interleave; a line must not itself contain '\n'. Empty lines
// are ignored and a trailing '\r' is stripped. A line longer than handler.max_line_bytes() is
// discarded up to its newline, then handler.line_too_long() is called. A write failing with
// EPIPE (or any other error) silently stops all further writes. Returns after EOF once every
// message's `done` has been called: 0, or 1 on a read error.
// Nothing but these lines may ever be written to out_fd; logs go to stderr.
int serve_stdio(server::LineHandler& handler, int in_fd = 0, int out_fd = 1);

}  // namespace onemcp::transport
