// Integration tests of fetch in the JavaScript worker, with the test playing the supervisor's
// broker (see js_broker_run.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/base64.h"
#include "ipc/wire.h"
#include "js_broker_run.h"
#include "sandbox/executor.h"

namespace onemcp {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using jstest::FetchRun;
using jstest::Peer;
using jstest::run_js;
using jstest::serve;

json ok_answer(const json& req, const std::string& body, int status = 200,
               json headers = json::array({{"content-type", "text/plain"}})) {
  return {{"id", req["id"]},         {"ok", true},
          {"status", status},        {"statusText", status == 200 ? "OK" : "Not Found"},
          {"headers", headers},      {"body", base64_encode(body)},
          {"url", req["url"]},       {"redirected", false}};
}

json error_answer(const json& req, const std::string& error) {
  return {{"id", req["id"]}, {"ok", false}, {"error", error}};
}

TEST(JsFetch, GetText) {
  std::vector<json> seen;
  FetchRun r = run_js(R"(
    const res = await fetch('https://api.example.test/v1/items?q=a b');
    console.log(res.status, res.ok, res.statusText, res.url, res.redirected, res.type, res.bodyUsed);
    console.log(await res.text(), res.bodyUsed);
  )",
                      [&](Peer& peer) {
                        while (auto req = peer.next()) {
                          seen.push_back(*req);
                          peer.send(ok_answer(*req, "hello, world"));
                        }
                      });
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "200 true OK https://api.example.test/v1/items?q=a%20b false basic false\n"
            "hello, world true\n");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0]["op"], "fetch");
  EXPECT_EQ(seen[0]["method"], "GET");
  EXPECT_EQ(seen[0]["url"], "https://api.example.test/v1/items?q=a%20b");
  EXPECT_TRUE(seen[0]["id"].is_number_unsigned());
  EXPECT_FALSE(seen[0].contains("body"));
  EXPECT_EQ(seen[0]["headers"], json::parse(R"([["accept","*/*"],["user-agent","1mcp-fetch"]])"));
}

TEST(JsFetch, JsonAndHeaders) {
  std::vector<json> seen;
  FetchRun r = run_js(R"(
    const res = await fetch('https://api.example.test/', {
      headers: [['X-Trace', 'one'], ['x-trace', 'two'], ['Authorization', 'Bearer t'], ['Accept', 'application/json']],
    });
    console.log(res.headers.get('Content-Type'), res.headers.get('X-MULTI'), res.headers.has('x-none'));
    console.log(JSON.stringify([...res.headers]));
    const data = await res.json();
    console.log(data.items.length, data.name);
    try { res.headers.set('x', 'y'); } catch (e) { console.log(e.name, e.message); }
  )",
                      [&](Peer& peer) {
                        while (auto req = peer.next()) {
                          seen.push_back(*req);
                          peer.send(ok_answer(*req, R"({"items":[1,2,3],"name":"ünï"})", 200,
                                              json::parse(R"([["content-type","application/json"],
                                                  ["x-multi","a"],["x-multi","b"],
                                                  ["set-cookie","s=1"],["set-cookie","t=2"]])")));
                        }
                      });
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "application/json a, b false\n"
            R"([["content-type","application/json"],["set-cookie","s=1"],["set-cookie","t=2"],["x-multi","a, b"]])"
            "\n3 ünï\nTypeError immutable\n");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0]["headers"], json::parse(R"([["x-trace","one"],["x-trace","two"],
      ["authorization","Bearer t"],["accept","application/json"],["user-agent","1mcp-fetch"]])"));
}

TEST(JsFetch, ArrayBufferIsByteExact) {
  std::string body;
  for (int i = 0; i < 512; ++i) body += char(i & 0xff);
  body += std::string("\x00\xff\x00", 3);
  FetchRun r = run_js(R"(
    const res = await fetch('https://bin.example.test/blob');
    const bytes = new Uint8Array(await res.arrayBuffer());
    let good = bytes.length === 515;
    for (let i = 0; i < 512; i++) if (bytes[i] !== (i & 255)) good = false;
    console.log(bytes.length, good, bytes[512], bytes[513], bytes[514]);
  )",
                      serve([&](const json& req) {
                        return ok_answer(req, body, 200, json::parse(R"([["content-type","application/octet-stream"]])"));
                      }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "515 true 0 255 0\n");
}

TEST(JsFetch, PostBodiesAreSentAsBase64) {
  std::vector<json> seen;
  FetchRun r = run_js(R"(
    const u = 'https://post.example.test/submit';
    await fetch(u, { method: 'post', body: 'héllo' });
    await fetch(u, { method: 'PUT', body: new Uint8Array([0, 255, 1, 2]), headers: { 'Content-Type': 'application/x-bin' } });
    await fetch(u, { method: 'POST', body: new URLSearchParams({ a: '1 2', b: 'x&y' }) });
    await fetch(new Request(u, { method: 'PATCH', body: new Uint8Array([9, 8, 7]).buffer }));
    await fetch(u, { method: 'POST', body: JSON.stringify({ k: [1] }), headers: { 'content-type': 'application/json' } });
    console.log('sent');
  )",
                      [&](Peer& peer) {
                        while (auto req = peer.next()) {
                          seen.push_back(*req);
                          peer.send(ok_answer(*req, ""));
                        }
                      });
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "sent\n");
  ASSERT_EQ(seen.size(), 5u);
  auto header = [](const json& req, const std::string& name) -> std::string {
    for (const auto& h : req["headers"])
      if (h[0] == name) return h[1];
    return "<none>";
  };
  EXPECT_EQ(seen[0]["method"], "POST");
  EXPECT_EQ(seen[0]["body"], base64_encode("h\xc3\xa9llo"));
  EXPECT_EQ(header(seen[0], "content-type"), "text/plain;charset=UTF-8");
  EXPECT_EQ(seen[1]["method"], "PUT");
  EXPECT_EQ(seen[1]["body"], "AP8BAg==");
  EXPECT_EQ(header(seen[1], "content-type"), "application/x-bin");
  EXPECT_EQ(base64_decode(seen[2]["body"].get<std::string>()).value_or("?"), "a=1+2&b=x%26y");
  EXPECT_EQ(header(seen[2], "content-type"), "application/x-www-form-urlencoded;charset=UTF-8");
  EXPECT_EQ(seen[3]["method"], "PATCH");
  EXPECT_EQ(seen[3]["body"], "CQgH");
  EXPECT_EQ(header(seen[3], "content-type"), "<none>");
  EXPECT_EQ(base64_decode(seen[4]["body"].get<std::string>()).value_or("?"), R"({"k":[1]})");
}

TEST(JsFetch, StatusAndRedirectFieldsComeFromTheBroker) {
  FetchRun r = run_js(R"(
    const a = await fetch('https://a.example.test/missing');
    console.log(a.status, a.ok, a.statusText, await a.text());
    const b = await fetch('https://a.example.test/old');
    console.log(b.status, b.url, b.redirected);
    const c = await fetch('https://a.example.test/empty');
    console.log(c.status, c.body, await c.text());
    await fetch('https://a.example.test/old', { redirect: 'error' }).catch((e) => console.log(e.message));
  )",
                      serve([](const json& req) {
                        std::string url = req["url"];
                        if (url.ends_with("/missing")) return ok_answer(req, "nope", 404);
                        if (url.ends_with("/empty")) return ok_answer(req, "", 204);
                        json a = ok_answer(req, "moved here");
                        a["url"] = "https://b.example.test/new";
                        a["redirected"] = true;
                        return a;
                      }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "404 false Not Found nope\n"
            "200 https://b.example.test/new true\n"
            "204 null \n"
            "fetch failed: unexpected redirect\n");
}

TEST(JsFetch, BrokerErrorIsTypeErrorWithTheMessageVerbatim) {
  const std::string why = "blocked by network policy (deniedDomains: *.evil.test): https://x.evil.test/";
  FetchRun r = run_js(R"(
    try {
      await fetch('https://x.evil.test/');
    } catch (e) {
      console.log(e instanceof TypeError, e.name, e.message);
    }
    await fetch('https://x.evil.test/');
  )",
                      serve([&](const json& req) { return error_answer(req, why); }));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "true TypeError fetch failed: " + why + "\n");
  EXPECT_EQ(r.report.error_kind, "exception");
  EXPECT_EQ(r.report.error_message, "TypeError: fetch failed: " + why);
  EXPECT_NE(r.err.find("fetch failed: " + why), std::string::npos) << r.err;
}

TEST(JsFetch, ConcurrentFetchesAnsweredInReverseOrder) {
  FetchRun r = run_js(R"(
    const order = [];
    const get = (p) => fetch('https://c.example.test/' + p).then((r) => r.text()).then((t) => { order.push(t); return t; });
    const all = await Promise.all([get('one'), get('two'), get('three')]);
    console.log(all.join(','), '|', order.join(','));
  )",
                      [](Peer& peer) {
                        std::vector<json> reqs;
                        for (int i = 0; i < 3; ++i) {
                          auto req = peer.next();
                          if (!req) return;
                          reqs.push_back(*req);
                        }
                        for (auto it = reqs.rbegin(); it != reqs.rend(); ++it) {
                          std::string url = (*it)["url"];
                          peer.send(ok_answer(*it, url.substr(url.rfind('/') + 1)));
                          std::this_thread::sleep_for(std::chrono::milliseconds(20));
                        }
                        while (peer.next()) {
                        }
                      });
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "one,two,three | three,two,one\n");
}

TEST(JsFetch, TimersFireWhileAFetchIsPending) {
  FetchRun r = run_js(R"(
    const t0 = Date.now();
    let ticks = 0;
    const iv = setInterval(() => { ticks++; }, 20);
    setTimeout(() => console.log('timer'), 50);
    const text = await (await fetch('https://slow.example.test/')).text();
    clearInterval(iv);
    console.log(text, ticks >= 5, Date.now() - t0 >= 250);
  )",
                      serve([](const json& req) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(300));
                        return ok_answer(req, "late");
                      }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "timer\nlate true true\n");
}

TEST(JsFetch, UnansweredFetchStopsAtTheDeadline) {
  FetchRun r = run_js("await fetch('https://hang.example.test/'); console.log('never')",
                      [](Peer& peer) {
                        while (peer.next()) {
                        }
                      },
                      500);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.report.error_kind, "timeout");
  EXPECT_LT(r.ms, 3000);
}

TEST(JsFetch, WithoutChannelFetchFailsClearly) {
  FetchRun r = run_js(R"(
    try { await fetch('https://example.test/'); } catch (e) { console.log(e.name + ': ' + e.message); }
    await fetch('https://example.test/');
  )",
                      nullptr, 5000, /*with_channel=*/false);
  EXPECT_EQ(r.out, "TypeError: fetch failed: network access is not available\n");
  EXPECT_EQ(r.report.error_message, "TypeError: fetch failed: network access is not available");
}

TEST(JsFetch, ChannelClosedOrGarbledRejectsPendingFetches) {
  FetchRun closed = run_js(R"(
    await fetch('https://example.test/').catch((e) => console.log(e.message));
    await fetch('https://example.test/').catch((e) => console.log(e.message));
  )",
                           [](Peer& peer) {
                             peer.next();
                             peer.close();
                           });
  EXPECT_RUN_OK(closed);
  EXPECT_EQ(closed.out,
            "fetch failed: the network broker closed the connection\n"
            "fetch failed: the network broker closed the connection\n");

  FetchRun garbled = run_js(R"(
    await fetch('https://example.test/').catch((e) => console.log(e.message));
  )",
                            [](Peer& peer) {
                              peer.next();
                              peer.send_raw(ipc::frame("this is not json"));
                              while (peer.next()) {
                              }
                            });
  EXPECT_RUN_OK(garbled);
  EXPECT_EQ(garbled.out, "fetch failed: invalid reply from the network broker\n");

  FetchRun oversized = run_js(R"(
    await fetch('https://example.test/').catch((e) => console.log(e.message));
  )",
                              [](Peer& peer) {
                                peer.next();
                                peer.send_raw(std::string("\xff\xff\xff\x7f", 4));
                                while (peer.next()) {
                                }
                              });
  EXPECT_RUN_OK(oversized);
  EXPECT_EQ(oversized.out, "fetch failed: invalid reply from the network broker\n");
}

TEST(JsFetch, BodyCanBeReadOnlyOnce) {
  FetchRun r = run_js(R"(
    const res = await fetch('https://example.test/');
    const copy = res.clone();
    console.log(await res.text(), res.bodyUsed, copy.bodyUsed);
    await res.text().catch((e) => console.log(e.name, e.message));
    await res.json().catch((e) => console.log(e.name, e.message));
    try { res.clone(); } catch (e) { console.log(e.name, e.message); }
    console.log(await copy.text());
  )",
                      serve([](const json& req) { return ok_answer(req, "once"); }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "once true false\n"
            "TypeError Body is unusable: body already used\n"
            "TypeError Body is unusable: body already used\n"
            "TypeError Response.clone: Body has already been consumed.\n"
            "once\n");
}

TEST(JsFetch, AbortRejectsAndTheLateAnswerIsIgnored) {
  std::vector<json> seen;
  FetchRun r = run_js(R"(
    const ac = new AbortController();
    const p = fetch('https://slow.example.test/a', { signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await p.catch((e) => console.log(e instanceof DOMException, e.name, e.message));
    await fetch('https://slow.example.test/b', { signal: AbortSignal.timeout(50) })
      .catch((e) => console.log(e.name, e.message));
    await fetch('https://slow.example.test/c', { signal: AbortSignal.abort() }).catch((e) => console.log(e.name));
    const ok = await (await fetch('https://fast.example.test/')).text();
    console.log(ok);
  )",
                      [&](Peer& peer) {
                        std::vector<json> held;
                        while (auto req = peer.next()) {
                          seen.push_back(*req);
                          std::string url = (*req)["url"];
                          if (url.find("slow") != std::string::npos) {
                            held.push_back(*req);
                            continue;
                          }
                          // Answer the aborted ones only now: the run must ignore them.
                          for (const auto& h : held) peer.send(ok_answer(h, "too late"));
                          peer.send(ok_answer(*req, "fine"));
                        }
                      });
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "true AbortError This operation was aborted\n"
            "TimeoutError The operation was aborted due to timeout\n"
            "AbortError\n"
            "fine\n");
  ASSERT_EQ(seen.size(), 3u);  // the pre-aborted one is never sent
  EXPECT_EQ(seen[1]["timeoutMs"], 50);
}

TEST(JsFetch, AbortedFetchDoesNotKeepTheRunAlive) {
  FetchRun r = run_js(R"(
    const ac = new AbortController();
    fetch('https://hang.example.test/', { signal: ac.signal }).catch(() => console.log('aborted'));
    setTimeout(() => ac.abort(), 20);
  )",
                      [](Peer& peer) {
                        while (peer.next()) {
                        }
                      },
                      5000);
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "aborted\n");
  EXPECT_LT(r.ms, 2000);
}

TEST(JsFetch, ManyConcurrentFetchesAreQueuedToTheBrokerLimit) {
  int max_outstanding = 0;
  FetchRun r = run_js(R"(
    const texts = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      fetch('https://many.example.test/' + i).then((r) => r.text())));
    console.log(texts.join(' '));
  )",
                      [&](Peer& peer) {
                        std::vector<json> outstanding;
                        for (;;) {
                          auto req = peer.next(outstanding.empty() ? 10000 : 50);
                          if (req) {
                            outstanding.push_back(*req);
                            max_outstanding = std::max(max_outstanding, int(outstanding.size()));
                            continue;
                          }
                          if (outstanding.empty()) return;
                          for (const auto& o : outstanding) {
                            std::string url = o["url"];
                            peer.send(ok_answer(o, url.substr(url.rfind('/') + 1)));
                          }
                          outstanding.clear();
                        }
                      });
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n");
  EXPECT_EQ(max_outstanding, 8);
}

TEST(JsFetch, LargeBodiesBothWays) {
  std::string big(5u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char((i * 7919) >> 3);
  size_t posted = 0;
  FetchRun r = run_js(R"(
    const res = await fetch('https://big.example.test/download');
    const bytes = new Uint8Array(await res.arrayBuffer());
    let good = bytes.length === 5 * 1024 * 1024;
    for (let i = 0; i < bytes.length; i += 4099) if (bytes[i] !== (((i * 7919) >>> 3) & 255)) good = false;
    await fetch('https://big.example.test/upload', { method: 'POST', body: bytes });
    console.log(bytes.length, good);
  )",
                      [&](Peer& peer) {
                        while (auto req = peer.next()) {
                          if (req->contains("body")) {
                            auto body = base64_decode((*req)["body"].get<std::string>());
                            posted = body && *body == big ? body->size() : 1;
                            peer.send(ok_answer(*req, "ok"));
                          } else {
                            peer.send(ok_answer(*req, big));
                          }
                        }
                      },
                      20000);
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "5242880 true\n");
  EXPECT_EQ(posted, big.size());
  EXPECT_LT(r.ms, 5000);
}

TEST(JsFetch, RequestResponseHeadersBehaviour) {
  FetchRun r = run_js(R"(
    const out = [];
    const log = (...a) => out.push(a.join(' '));
    const h = new Headers({ 'Content-Type': 'text/html' });
    h.append('X-A', ' 1 ');
    h.append('x-a', '2');
    log(h.get('content-type'), h.get('X-A'), h.has('X-a'), [...h.keys()].join());
    h.set('X-A', '3');
    h.delete('Content-Type');
    log([...h].join(';'), h.get('content-type'));
    h.forEach((v, k) => log('each', k, v));
    for (const bad of [() => h.append('bad name', 'v'), () => h.set('x', 'a\nb'), () => new Headers([['a']])]) {
      try { bad(); log('no throw'); } catch (e) { log(e.name); }
    }
    const req = new Request('https://Example.TEST:443/p/../q?x#frag', { method: 'delete', headers: { a: 'b' } });
    log(req.method, req.url, req.headers.get('A'), req.redirect, req.signal.aborted);
    log(new Request(req, { method: 'patch' }).method, new Request('http://x.test', { method: 'Options' }).method);
    for (const bad of [() => new Request('https://x.test', { method: 'GET', body: 'b' }),
                       () => new Request('https://x.test', { method: 'HEAD', body: new Uint8Array(1) }),
                       () => new Request('/relative'), () => new Request('https://x.test', { method: 'CONNECT' }),
                       () => new Request('https://u:p@x.test/')]) {
      try { bad(); log('no throw'); } catch (e) { log(e.name); }
    }
    const post = new Request('https://x.test', { method: 'POST', body: 'data' });
    log(post.headers.get('content-type'), await post.clone().text(), await post.text(), post.bodyUsed);
    const res = new Response('{"a":1}', { status: 201, statusText: 'Created', headers: { 'X-Y': 'z' } });
    log(res.status, res.ok, res.statusText, res.headers.get('x-y'), res.headers.get('content-type'), res.type, res.url);
    log(JSON.stringify(await res.json()));
    const j = Response.json({ b: [2] }, { status: 202 });
    log(j.status, j.headers.get('content-type'), await j.text());
    const e = Response.error();
    log(e.status, e.type, e.ok);
    log(new Response().status, await new Response().text(), new Response(null).body);
    const bin = new Response(new Uint8Array([104, 105]));
    log(await bin.text(), bin.headers.get('content-type'));
    const stream = new Response('chunk').body;
    const reader = stream.getReader();
    const first = await reader.read();
    log(new TextDecoder().decode(first.value), (await reader.read()).done);
    for (const bad of [() => new Response('x', { status: 99 }), () => new Response('x', { status: 204 })]) {
      try { bad(); log('no throw'); } catch (e) { log(e.name); }
    }
    log(typeof fetch, typeof AbortController, typeof EventTarget, typeof Event);
    console.log(out.join('\n'));
  )",
                      nullptr);
  EXPECT_RUN_OK(r);
  // Expected: the same code under Node 20.
  EXPECT_EQ(r.out,
            "text/html 1, 2 true content-type,x-a\n"
            "x-a,3 \n"
            "each x-a 3\n"
            "TypeError\n"
            "TypeError\n"
            "TypeError\n"
            "DELETE https://example.test/q?x#frag b follow false\n"
            "patch OPTIONS\n"
            "TypeError\n"
            "TypeError\n"
            "TypeError\n"
            "TypeError\n"
            "TypeError\n"
            "text/plain;charset=UTF-8 data data true\n"
            "201 true Created z text/plain;charset=UTF-8 default \n"
            "{\"a\":1}\n"
            "202 application/json {\"b\":[2]}\n"
            "0 error false\n"
            "200  \n"
            "hi \n"
            "chunk true\n"
            "RangeError\n"
            "TypeError\n"
            "function function function function\n");
}

TEST(JsFetch, UrlParsing) {
  FetchRun r = run_js(R"(
    const out = [];
    const u = new URL('HTTPS://user:pa ss@Sub.Example.COM:8443/a/./b/../c d?x=1&y=a+b#top');
    out.push([u.href, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname,
              u.search, u.hash, u.origin, u.searchParams.get('y')].join('|'));
    out.push(new URL('../x?q', 'http://h.test/a/b/c').href);
    out.push(new URL('/root', 'http://h.test/a/b').href);
    out.push(new URL('//other.test/p', 'https://h.test/a').href);
    out.push(new URL('?only', 'http://h.test/a/b?old#f').href);
    out.push(new URL('#frag', 'http://h.test/a/b?old').href);
    out.push(new URL('http://h.test:80/').href, new URL('https://h.test:443').href);
    out.push(new URL('http://127.1/').host, new URL('http://0x7f.0.0.1/').host, new URL('http://[::1]:3000/').host);
    out.push(new URL('https://bücher.example/').hostname);
    out.push(new URL('mailto:someone@example.test').pathname, new URL('file:///etc/hosts').href);
    for (const bad of ['no scheme', 'http://', 'https://exa mple.test/', 'http://h.test:99999/', 'http://1.2.3.256/']) {
      try { new URL(bad); out.push('parsed ' + bad); } catch (e) { out.push(e.name + ' ' + e.code); }
    }
    const m = new URL('https://h.test/p');
    m.searchParams.append('k', 'v w');
    m.searchParams.append('e', 'é&');
    m.hash = 'h';
    m.pathname = '/new path';
    m.port = '8080';
    out.push(m.href);
    m.search = '?a=1';
    out.push(m.searchParams.get('a'), m.searchParams.has('k'), String(m));
    const sp = new URLSearchParams('?b=2&a=1&b=3');
    sp.sort();
    out.push(sp.toString(), sp.getAll('b').join(), sp.size, JSON.stringify([...new URLSearchParams([['x', '1']])]));
    out.push(URL.canParse('https://ok.test'), URL.canParse('nope'), JSON.stringify({ u: new URL('http://j.test') }));
    console.log(out.join('\n'));
  )",
                      nullptr);
  EXPECT_RUN_OK(r);
  // Expected: the same code under Node 20.
  EXPECT_EQ(r.out,
            "https://user:pa%20ss@sub.example.com:8443/a/c%20d?x=1&y=a+b#top|https:|user|pa%20ss|sub.example.com:8443|sub.example.com|8443|/a/c%20d|?x=1&y=a+b|#top|https://sub.example.com:8443|a b\n"
            "http://h.test/a/x?q\n"
            "http://h.test/root\n"
            "https://other.test/p\n"
            "http://h.test/a/b?only\n"
            "http://h.test/a/b?old#frag\n"
            "http://h.test/\n"
            "https://h.test/\n"
            "127.0.0.1\n"
            "127.0.0.1\n"
            "[::1]:3000\n"
            "xn--bcher-kva.example\n"
            "someone@example.test\n"
            "file:///etc/hosts\n"
            "TypeError ERR_INVALID_URL\n"
            "TypeError ERR_INVALID_URL\n"
            "TypeError ERR_INVALID_URL\n"
            "TypeError ERR_INVALID_URL\n"
            "TypeError ERR_INVALID_URL\n"
            "https://h.test:8080/new%20path?k=v+w&e=%C3%A9%26#h\n"
            "1\n"
            "false\n"
            "https://h.test:8080/new%20path?a=1#h\n"
            "a=1&b=2&b=3\n"
            "2,3\n"
            "3\n"
            "[[\"x\",\"1\"]]\n"
            "true\n"
            "false\n"
            "{\"u\":\"http://j.test/\"}\n");
}

TEST(JsFetch, InspectShowsTheFields) {
  FetchRun r = run_js(R"(
    console.log(new URL('https://a.test/p?x=1'));
    console.log([new Headers({ A: '1' })], new URLSearchParams('a=1&b=2'), AbortSignal.abort());
    const res = await fetch('https://a.test/');
    console.log(res.status, `${res.headers.get('content-type')}`);
    console.log(String(res).slice(0, 17), Object.prototype.toString.call(res.headers));
    console.log(res);
  )",
                      serve([](const json& req) { return ok_answer(req, "x"); }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "URL {\n  href: 'https://a.test/p?x=1',\n  origin: 'https://a.test',\n  protocol: 'https:',\n"
            "  username: '',\n  password: '',\n  host: 'a.test',\n  hostname: 'a.test',\n  port: '',\n"
            "  pathname: '/p',\n  search: '?x=1',\n  searchParams: URLSearchParams { 'x' => '1' },\n"
            "  hash: ''\n}\n"
            "[ Headers { a: '1' } ] URLSearchParams { 'a' => '1', 'b' => '2' } AbortSignal { aborted: true }\n"
            "200 text/plain\n"
            "[object Response] [object Headers]\n"
            "Response {\n  status: 200,\n  statusText: 'OK',\n  headers: Headers { 'content-type': 'text/plain' },\n"
            "  body: ReadableStream { locked: false, state: 'readable', supportsBYOB: false },\n"
            "  bodyUsed: false,\n  ok: true,\n  redirected: false,\n  type: 'basic',\n  url: 'https://a.test/'\n}\n");
}

// The whole path: the sandboxed worker through sandbox::Zygote, with the supervisor's broker
// channel calling a handler (here scripted, in production the network policy and HTTP client).
TEST(JsFetch, ThroughTheZygoteAndItsBrokerChannel) {
  auto z = sandbox::Zygote::start({ONEMCP_JS_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
  ASSERT_TRUE(z.ok()) << z.error().message;
  sandbox::BrokerHandler handler = [](const std::string& frame, Clock::time_point, const std::atomic<bool>&) {
    json req = json::parse(frame);
    std::string url = req["url"];
    if (url.find("evil") != std::string::npos) return error_answer(req, "blocked by network policy: " + url).dump();
    return ok_answer(req, req["method"].get<std::string>() + " " + url).dump();
  };
  const std::string code = R"(
    const urls = ['https://a.example.test/1', 'https://b.example.test/2', 'https://x.evil.test/'];
    const results = await Promise.allSettled(urls.map((u) => fetch(u).then((r) => r.text())));
    console.log(results.map((r) => r.status === 'fulfilled' ? r.value : r.reason.message).join('\n'));
  )";
  ipc::RunRequest req;
  req.code = code;
  req.timeout_ms = 5000;
  req.mem_mb = 256;
  req.stdout_bytes = 1u << 20;
  auto r = (*z)->run(req, "", nullptr, &handler);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->outcome, sandbox::Outcome::ok) << r->err;
  EXPECT_EQ(r->out,
            "GET https://a.example.test/1\n"
            "GET https://b.example.test/2\n"
            "fetch failed: blocked by network policy: https://x.evil.test/\n");

  auto none = (*z)->run(req, "");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none->out,
            "fetch failed: network access is not available\n"
            "fetch failed: network access is not available\n"
            "fetch failed: network access is not available\n");
}

// More fetches at once than the channel's in-flight limit: the runtime queues them so that the
// supervisor never has to refuse one.
TEST(JsFetch, ManyFetchesThroughTheZygoteAreNeverRefused) {
  auto z = sandbox::Zygote::start({ONEMCP_JS_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
  ASSERT_TRUE(z.ok()) << z.error().message;
  sandbox::BrokerHandler handler = [](const std::string& frame, Clock::time_point, const std::atomic<bool>&) {
    json req = json::parse(frame);
    return ok_answer(req, req["method"].get<std::string>() + " " + req["url"].get<std::string>()).dump();
  };
  ipc::RunRequest req;
  req.timeout_ms = 5000;
  req.mem_mb = 256;
  req.stdout_bytes = 1u << 20;
  req.code = R"(
    const texts = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      fetch('https://many.example.test/' + i).then((r) => r.text())));
    console.log(texts.every((t, i) => t === 'GET https://many.example.test/' + i));
  )";
  for (int round = 0; round < 10; ++round) {
    auto many = (*z)->run(req, "", nullptr, &handler);
    ASSERT_TRUE(many.ok()) << many.error().message;
    EXPECT_EQ(many->out, "true\n") << many->err;
  }
}

}  // namespace
}  // namespace onemcp
