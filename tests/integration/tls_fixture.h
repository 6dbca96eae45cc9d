// tests/integration/tls_fixture.h — HTTPS for broker tests. TestPki makes a throwaway CA and a
// server certificate (EC P-256, valid for a day) in memory when a test starts; only the CA's
// certificate is written, to a temp dir removed afterwards, since curl reads trust anchors from
// a file. No key is ever committed or written. TlsServer is FixtureServer's HTTPS twin: one
// loopback address, an ephemeral port, a thread per connection, one request each, and a handler
// that returns the raw response bytes. It counts accepted connections and completed handshakes,
// so a test can prove a refused certificate ended the connection before any request was sent.
// Thread-safety: TlsServer's public methods may be called from any thread.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/c_ptr.h"
#include "http_fixture.h"

namespace onemcp::testing {


// A certificate and its private key; both null when issuing failed.
struct KeyPair {
  CPtr<EVP_PKEY, EVP_PKEY_free> key;
  CPtr<X509, X509_free> cert;
};

// A certificate for the DNS names `dns` (a server certificate) signed by `issuer`, or with no
// names and no issuer a self-signed CA certificate; `cn` is its subject's common name.
inline KeyPair issue_cert(const std::string& cn, const std::vector<std::string>& dns,
                          const KeyPair* issuer) {
  static std::atomic<long> serial{1};
  KeyPair kp;
  kp.key.reset(EVP_EC_gen("P-256"));
  kp.cert.reset(X509_new());
  X509* x = kp.cert.get();
  if (!kp.key || !x) return {};
  X509_NAME* name = X509_get_subject_name(x);
  bool ok = X509_set_version(x, 2) == 1 &&
            ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(x), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x), 86400) != nullptr &&
            X509_set_pubkey(x, kp.key.get()) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                       0) == 1 &&
            X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert.get()) : name) == 1;
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer->cert.get() : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    ok = ok && e != nullptr && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
  };
  const bool ca = dns.empty();
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add(NID_subject_key_identifier, "hash");
  if (!ca) {
    std::string san;
    for (const auto& n : dns) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    add(NID_subject_alt_name, san);
    add(NID_ext_key_usage, "serverAuth");
    add(NID_authority_key_identifier, "keyid:always");
  }
  ok = ok && X509_sign(x, issuer ? issuer->key.get() : kp.key.get(), EVP_sha256()) > 0;
  if (!ok) return {};
  return kp;
}

inline std::string to_pem(X509* cert) {
  BIO* b = BIO_new(BIO_s_mem());
  if (!b) return {};
  std::string out;
  char* data = nullptr;
  if (PEM_write_bio_X509(b, cert) == 1) {
    long n = BIO_get_mem_data(b, &data);
    if (n > 0) out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(b);
  return out;
}

// A CA and a server certificate for `names`, issued by it. `ca_file` holds the CA's PEM.
class TestPki {
 public:
  explicit TestPki(const std::vector<std::string>& names) {
    ca = issue_cert("1mcp test CA", {}, nullptr);
    if (!ca.cert) return;
    server = issue_cert(names.empty() ? "" : names.front(), names, &ca);
    char tmpl[] = "/tmp/1mcp-tls-XXXXXX";
    if (!server.cert || !::mkdtemp(tmpl)) return;
    dir_ = tmpl;
    ca_pem = to_pem(ca.cert.get());
    ca_file = dir_ + "/ca.pem";
    std::ofstream(ca_file) << ca_pem;
  }
  ~TestPki() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  bool ok() const { return !ca_pem.empty() && std::filesystem::exists(ca_file); }

  KeyPair ca, server;
  std::string ca_pem, ca_file;

 private:
  std::string dir_;
};

class TlsServer {
 public:
  using Handler = std::function<std::string(const SeenRequest&)>;

  TlsServer(std::string ip, const KeyPair& identity, Handler handler)
      : ip_(std::move(ip)), handler_(std::move(handler)) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    if (!ctx_ || SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate(ctx_.get(), identity.cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx_.get(), identity.key.get()) != 1)
      return;
    fd_ = listen_on(ip_, port_);
    if (fd_ >= 0) acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TlsServer() {
    stop_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int c : conns_) ::shutdown(c, SHUT_RDWR);  // wakes a handshake or read under way
    }
    for (auto& t : workers_) t.join();
    if (fd_ >= 0) ::close(fd_);
  }

  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  bool ok() const { return acceptor_.joinable(); }
  uint16_t port() const { return port_; }
  int accepts() const { return accepts_; }
  int handshakes() const { return handshakes_; }
  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // "https://<host>:<port><path>" with this server's port.
  std::string url(std::string_view host, std::string_view path = "/") const {
    return "https://" + std::string(host) + ":" + std::to_string(port_) + std::string(path);
  }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      ++accepts_;
      std::lock_guard lock(mu_);
      conns_.push_back(c);
      workers_.emplace_back([this, c] { serve(c); });
    }
  }

  void serve(int c) {
    // A write to a peer that has gone raises SIGPIPE in the writing thread: blocked here, the
    // write fails with EPIPE instead of ending the test process.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    timeval tv{5, 0};  // a client that stalls mid-handshake cannot hold the thread for long
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    CPtr<SSL, SSL_free> ssl(SSL_new(ctx_.get()));
    if (ssl && SSL_set_fd(ssl.get(), c) == 1 && SSL_accept(ssl.get()) == 1) {
      ++handshakes_;
      SeenRequest req;
      auto read = [&](char* buf, size_t n) {
        return SSL_read(ssl.get(), buf, static_cast<int>(n));
      };
      if (read_http_request(read, req)) {
        {
          std::lock_guard lock(mu_);
          seen_.push_back(req);
        }
        const std::string out = handler_(req);
        if (out.empty() || SSL_write(ssl.get(), out.data(), static_cast<int>(out.size())) > 0)
          SSL_shutdown(ssl.get());
      }
    }
    ssl.reset();
    std::lock_guard lock(mu_);
    std::erase(conns_, c);
    ::close(c);
  }

  std::string ip_;
  Handler handler_;
  CPtr<SSL_CTX, SSL_CTX_free> ctx_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0}, handshakes_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> conns_;
  std::vector<SeenRequest> seen_;
};

}  // namespace onemcp::testing
