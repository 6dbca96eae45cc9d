#include "deps/imports.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace onemcp::deps {
namespace {

bool ident_start(unsigned char c) { return std::isalpha(c) || c == '_' || c == '$' || c >= 0x80; }
bool ident_char(unsigned char c) { return ident_start(c) || std::isdigit(c); }

struct Binding {
  std::string imported;  // the exported name ("default", "chunk", or any string)
  std::string local;
};

struct Declaration {
  bool type_only = false;       // TypeScript `import type ...`: erased
  bool equals_require = false;  // TypeScript `import x = require("m")`
  std::string default_name, namespace_name;
  bool has_braces = false;
  std::vector<Binding> named;  // type-only items already dropped
  std::string specifier;
};

// Tokens of one import declaration; positions are byte offsets into the code.
class Lexer {
 public:
  explicit Lexer(std::string_view code) : s_(code) {}

  size_t pos() const { return pos_; }
  void seek(size_t p) { pos_ = p; }

  // Skips whitespace and comments; returns the new position.
  size_t skip() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++pos_;
      } else if (s_.substr(pos_, 2) == "//") {
        size_t nl = s_.find('\n', pos_);
        pos_ = nl == std::string_view::npos ? s_.size() : nl;
      } else if (s_.substr(pos_, 2) == "/*") {
        size_t end = s_.find("*/", pos_ + 2);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
      } else if (s_.substr(pos_, 3) == "\xEF\xBB\xBF") {  // byte order mark
        pos_ += 3;
      } else {
        break;
      }
    }
    return pos_;
  }

  // Token readers skip leading trivia only when they match, so a declaration's end never
  // swallows the comments after it.
  bool punct(char c) {
    if (peek_punct(c)) {
      pos_ = skip() + 1;
      return true;
    }
    return false;
  }
  bool peek_punct(char c) {
    size_t save = pos_;
    bool match = skip() < s_.size() && s_[pos_] == c;
    pos_ = save;
    return match;
  }

  std::optional<std::string> ident() {
    size_t save = pos_;
    skip();
    if (pos_ >= s_.size() || !ident_start(static_cast<unsigned char>(s_[pos_]))) {
      pos_ = save;
      return std::nullopt;
    }
    size_t b = pos_;
    while (pos_ < s_.size() && ident_char(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    return std::string(s_.substr(b, pos_ - b));
  }
  std::optional<std::string> peek_ident() {
    size_t save = pos_;
    auto w = ident();
    pos_ = save;
    return w;
  }
  bool word(std::string_view w) {
    size_t save = pos_;
    auto got = ident();
    if (got && *got == w) return true;
    pos_ = save;
    return false;
  }

  // A string literal with only simple escapes (\\, \', \"); anything else is not a specifier.
  std::optional<std::string> string() {
    size_t save = pos_;
    auto s = read_string();
    if (!s) pos_ = save;
    return s;
  }
  bool peek_string() {
    size_t save = pos_;
    bool match = skip() < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'');
    pos_ = save;
    return match;
  }

 private:
  std::optional<std::string> read_string() {
    skip();
    if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) return std::nullopt;
    char q = s_[pos_];
    std::string out;
    for (size_t i = pos_ + 1; i < s_.size(); ++i) {
      char c = s_[i];
      if (c == q) {
        pos_ = i + 1;
        return out;
      }
      if (c == '\n' || c == '\r') return std::nullopt;
      if (c == '\\') {
        if (i + 1 >= s_.size() || (s_[i + 1] != '\\' && s_[i + 1] != '\'' && s_[i + 1] != '"'))
          return std::nullopt;
        c = s_[++i];
      }
      out += c;
    }
    return std::nullopt;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// One name in `{ ... }`: [type] (ident | string) [as ident]. False on a syntax error.
bool parse_item(Lexer& lx, Declaration& d) {
  bool type_item = false;
  if (lx.peek_ident() == "type") {
    size_t save = lx.pos();
    lx.ident();
    // `type` is a modifier when a name follows it (not `,`, `}` or `as`).
    if ((lx.peek_ident() && lx.peek_ident() != "as") || lx.peek_string()) {
      type_item = true;
    } else {
      lx.seek(save);
    }
  }
  Binding b;
  if (auto s = lx.string()) {
    b.imported = *s;
    if (!lx.word("as")) return false;
    auto local = lx.ident();
    if (!local) return false;
    b.local = *local;
  } else if (auto id = lx.ident()) {
    b.imported = *id;
    b.local = *id;
    if (lx.word("as")) {
      auto local = lx.ident();
      if (!local) return false;
      b.local = *local;
    }
  } else {
    return false;
  }
  if (!type_item) d.named.push_back(std::move(b));
  return true;
}

// After `import`: the rest of one declaration. False on a syntax error.
bool parse_declaration(Lexer& lx, Declaration& d) {
  if (auto s = lx.string()) {  // import "m"
    d.specifier = *s;
    return true;
  }
  if (lx.peek_ident() == "type") {
    size_t save = lx.pos();
    lx.ident();
    // `import type from "m"` and `import type, {...}` import a default named `type`.
    bool default_named_type = lx.peek_punct(',');
    if (!default_named_type && lx.peek_ident() == "from") {
      size_t after_type = lx.pos();
      lx.ident();
      default_named_type = lx.peek_string();
      lx.seek(after_type);
    }
    if (default_named_type) {
      lx.seek(save);
    } else {
      d.type_only = true;
    }
  }
  bool need_more = true;
  if (lx.peek_ident()) {
    d.default_name = *lx.ident();
    if (lx.punct('=')) {  // import x = require("m")
      if (!lx.word("require") || !lx.punct('(')) return false;
      auto s = lx.string();
      if (!s || !lx.punct(')')) return false;
      d.equals_require = true;
      d.specifier = *s;
      return true;
    }
    need_more = lx.punct(',');
  }
  if (need_more) {
    if (lx.punct('*')) {
      if (!lx.word("as")) return false;
      auto n = lx.ident();
      if (!n) return false;
      d.namespace_name = *n;
    } else if (lx.punct('{')) {
      d.has_braces = true;
      while (!lx.punct('}')) {
        if (!parse_item(lx, d)) return false;
        if (!lx.punct(',') && !lx.peek_punct('}')) return false;
      }
    } else {
      return false;
    }
  }
  if (!lx.word("from")) return false;
  auto s = lx.string();
  if (!s) return false;
  d.specifier = *s;
  return true;
}

// Import attributes (`with { type: "json" }`) carry nothing the layer needs: skipped.
bool skip_attributes(Lexer& lx) {
  size_t save = lx.pos();
  if (!lx.word("with") && !lx.word("assert")) return true;
  if (!lx.punct('{')) {
    lx.seek(save);  // `with` starts the next statement
    return true;
  }
  while (!lx.punct('}')) {
    if (!lx.ident() && !lx.string()) return false;
    if (!lx.punct(':') || !lx.string()) return false;
    lx.punct(',');
  }
  return true;
}

// A JSON string is a JS string literal; invalid UTF-8 becomes U+FFFD rather than an exception.
std::string js_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string convert(const Declaration& d) {
  if (d.type_only) return "";
  const std::string lookup = "__onemcp_import(" + js_string(d.specifier) + ")";
  if (d.equals_require)
    return "const " + d.default_name + " = require(" + js_string(d.specifier) + ");";
  std::vector<std::string> parts;
  if (!d.default_name.empty()) parts.push_back(d.default_name + " = " + lookup + ".default");
  if (!d.namespace_name.empty()) parts.push_back(d.namespace_name + " = " + lookup);
  if (!d.named.empty()) {
    std::string p = "{ ";
    for (size_t i = 0; i < d.named.size(); ++i) {
      const Binding& b = d.named[i];
      if (i) p += ", ";
      bool plain = !b.imported.empty() && ident_start(static_cast<unsigned char>(b.imported[0])) &&
                   b.imported.find_first_of(" -./@:\"'\\") == std::string::npos;
      if (b.imported == b.local && plain) {
        p += b.local;
      } else {
        p += (plain ? b.imported : js_string(b.imported)) + ": " + b.local;
      }
    }
    parts.push_back(p + " } = " + lookup);
  }
  if (parts.empty()) {
    // `import {} from "m"` runs the module; `import { type T } from "m"` is erased.
    return d.has_braces && d.default_name.empty() ? "" : lookup + ";";
  }
  std::string out = "const ";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out + ";";
}

size_t line_of(std::string_view code, size_t pos) {
  size_t line = 1;
  for (size_t i = 0; i < pos && i < code.size(); ++i) line += code[i] == '\n';
  return line;
}

std::string importable_list(const std::set<std::string>& modules) {
  std::string list;
  size_t n = 0;
  for (const auto& m : modules) {
    if (n++ == 20) {
      list += "..., ";
      break;
    }
    list += m + ", ";
  }
  return list + "fs, fs/promises";
}

}  // namespace

bool is_runtime_builtin(std::string_view specifier) {
  if (specifier.substr(0, 5) == "node:") specifier.remove_prefix(5);
  return specifier == "fs" || specifier == "fs/promises";
}

Result<std::string> rewrite_imports(std::string_view code, const std::set<std::string>& modules) {
  Lexer lx(code);
  std::string out;
  size_t copied = 0;
  for (;;) {
    size_t start = lx.skip();
    if (!lx.word("import")) break;
    // `import(...)` and `import.meta` are expressions: the declarations are over.
    if (lx.peek_punct('(') || lx.peek_punct('.')) break;
    Declaration d;
    if (!parse_declaration(lx, d) || !skip_attributes(lx)) {
      return make_error(
          "line " + std::to_string(line_of(code, start)) +
          ": cannot read this import declaration (supported: import x from \"pkg\", "
          "import * as x from \"pkg\", import { a, b as c } from \"pkg\", import \"pkg\")");
    }
    lx.punct(';');
    size_t end = lx.pos();
    if (!d.type_only && !modules.count(d.specifier) && !is_runtime_builtin(d.specifier)) {
      return make_error("line " + std::to_string(line_of(code, start)) + ": cannot import " +
                        js_string(d.specifier) +
                        ": only the npm dependencies of this call and Node's fs can be imported "
                        "(importable: " +
                        importable_list(modules) + ")");
    }
    out.append(code.substr(copied, start - copied));
    out += convert(d);
    for (size_t i = start; i < end; ++i) {
      if (code[i] == '\n') out += '\n';
    }
    copied = end;
  }
  out.append(code.substr(copied));
  return out;
}

}  // namespace onemcp::deps
