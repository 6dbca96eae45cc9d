// server/run_files: what a file in /out is (images by their bytes alone), the URIs of a run's
// files, and the store that keeps them for resources/read.
#include "server/run_files.h"

#include <gtest/gtest.h>

namespace onemcp::server {
namespace {

using namespace std::string_literals;

const std::string kPng = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR"s;
const std::string kJpeg = "\xFF\xD8\xFF\xE0\0\x10JFIF"s;
const std::string kWebp = "RIFF\x24\0\0\0WEBPVP8 "s;
const std::string kRun = "0123456789abcdef0123456789abcdef";

std::string type_of(const std::string& bytes) {
  const char* t = image_type(bytes);
  return t ? t : "none";
}

TEST(ImageType, EachFormatByItsMagic) {
  EXPECT_EQ(type_of(kPng), "image/png");
  EXPECT_EQ(type_of(kJpeg), "image/jpeg");
  EXPECT_EQ(type_of("GIF87a\x01\0\x01\0"s), "image/gif");
  EXPECT_EQ(type_of("GIF89a\x01\0\x01\0"s), "image/gif");
  EXPECT_EQ(type_of(kWebp), "image/webp");
  EXPECT_EQ(type_of("<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), "image/svg+xml");
  EXPECT_EQ(type_of("<svg>"), "image/svg+xml");
}

TEST(ImageType, SvgAfterDeclarationCommentsAndDoctype) {
  EXPECT_EQ(type_of("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg width=\"1\"></svg>"),
            "image/svg+xml");
  EXPECT_EQ(type_of("\xEF\xBB\xBF  <!-- made by hand -->\n<!-- two -->\r\n<svg\n/>"),
            "image/svg+xml");
  EXPECT_EQ(type_of("<?xml version=\"1.0\"?>\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" "
                    "\"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n<svg>é</svg>"),
            "image/svg+xml");
  // An internal subset whose declarations hold '>' (and a quoted one) does not end the doctype.
  EXPECT_EQ(type_of("<!DOCTYPE svg [ <!ENTITY a \"x>y\"> ]><svg/>"), "image/svg+xml");
}

TEST(ImageType, WhatIsNotAnImage) {
  EXPECT_EQ(type_of(""), "none");
  EXPECT_EQ(type_of("hello, world\n"), "none");
  EXPECT_EQ(type_of("<html><svg></svg></html>"), "none");  // not the first element
  EXPECT_EQ(type_of("<svgx/>"), "none");
  EXPECT_EQ(type_of("<svg"), "none");                     // cut before the name ends
  EXPECT_EQ(type_of("<!-- <svg> never closed"), "none");  // the comment swallows it
  EXPECT_EQ(type_of("<!DOCTYPE svg [ <svg/>"), "none");
  EXPECT_EQ(type_of("<?xml version=\"1.0\"?><html/>"), "none");
  EXPECT_EQ(type_of("<svg>\xff</svg>"), "none");  // not UTF-8
  EXPECT_EQ(type_of("<svg>\0</svg>"s), "none");   // not text
  EXPECT_EQ(type_of("text <svg/>"), "none");
  // Shorter than the magic, or the magic with a byte off.
  EXPECT_EQ(type_of(kPng.substr(0, 7)), "none");
  EXPECT_EQ(type_of("\x89PNG\r\n\x1a\x0b"s), "none");
  EXPECT_EQ(type_of("\xFF\xD8"), "none");
  EXPECT_EQ(type_of("GIF8"), "none");
  EXPECT_EQ(type_of("GIF88a"), "none");
  EXPECT_EQ(type_of(kWebp.substr(0, 11)), "none");
  EXPECT_EQ(type_of("RIFF\x24\0\0\0WAVEfmt "s), "none");
}

TEST(MediaType, FromTheBytesNeverTheImageName) {
  EXPECT_EQ(media_type("x.png", "just text\n"), "text/plain");
  EXPECT_EQ(media_type("x.png", "\x00\x01\x02"s), "application/octet-stream");
  EXPECT_EQ(media_type("plot", kPng), "image/png");
  EXPECT_EQ(media_type("plot.txt", kJpeg), "image/jpeg");
  EXPECT_EQ(media_type("data.csv", "a,b\n1,2\n"), "text/csv");
  EXPECT_EQ(media_type("r.json", "{}"), "application/json");
  EXPECT_EQ(media_type("r.md", "# hi"), "text/markdown");
  EXPECT_EQ(media_type("data.csv", "a,\xff\n"), "application/octet-stream");
  EXPECT_EQ(media_type("empty", ""), "text/plain");
  EXPECT_EQ(media_type("a.txt", "a\0b"s), "application/octet-stream");  // NUL: binary
}

TEST(RunFileUri, PercentEncodesThePathAndParsesBack) {
  EXPECT_EQ(run_file_uri(kRun, "plot.png"), "onemcp://runs/" + kRun + "/out/plot.png");
  const std::string odd = "d ir/a#b?c%d\xff\xc3\xa9.txt";
  const std::string uri = run_file_uri(kRun, odd);
  EXPECT_EQ(uri, "onemcp://runs/" + kRun + "/out/d%20ir/a%23b%3Fc%25d%FF%C3%A9.txt");
  auto name = parse_run_file_uri(uri);
  ASSERT_TRUE(name);
  EXPECT_EQ(name->run_id, kRun);
  EXPECT_EQ(name->path, odd);
  auto lower = parse_run_file_uri("onemcp://runs/" + kRun + "/out/a%c3%a9");
  ASSERT_TRUE(lower);
  EXPECT_EQ(lower->path, "a\xc3\xa9");
}

TEST(RunFileUri, RefusesPathsThatAreNotPlainNames) {
  const std::string base = "onemcp://runs/" + kRun + "/out/";
  for (const std::string rest :
       {"", "..", "../x", "a/../b", "a/..", "%2E%2E/x", "%2e%2e", ".", "./a", "a/./b",
        "/etc/passwd", "%2Fetc", "a//b", "a/", "a%00b", "%", "%4", "%zz", "a%2"}) {
    EXPECT_FALSE(parse_run_file_uri(base + rest)) << rest;
  }
  for (const std::string& uri : std::vector<std::string>{
           "onemcp://runs/" + kRun + "/a.txt", "onemcp://runs/" + kRun.substr(1) + "/out/a",
           "onemcp://runs/0123456789ABCDEF0123456789abcdef/out/a",
           "onemcp://runs/0123456789abcdeg0123456789abcdef/out/a", "onemcp://runs/",
           "onemcp://runs", "onemcp://capsules/" + kRun + "/out/a",
           "ONEMCP://runs/" + kRun + "/out/a"}) {
    EXPECT_FALSE(parse_run_file_uri(uri)) << uri;
  }
  EXPECT_TRUE(parse_run_file_uri(base + "a..b/.c/..."));  // dots inside names are names
}

std::vector<sandbox::OutFile> files_of(size_t bytes, const std::string& name = "f") {
  return {sandbox::OutFile{name, bytes, std::string(bytes, 'x'), false}};
}

std::string id(int i) {
  std::string s = kRun;
  s.back() = "0123456789"[i];
  return s;
}

TEST(RunFiles, FindsAFileOnlyForThePrincipalThatRanIt) {
  RunFiles store;
  store.put(kRun, "session:a", {{"a.txt", 3, "abc", false}, {"sub/b.bin", 2, "\x00\xff"s, false}});
  auto f = store.find("session:a", kRun, "sub/b.bin");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->data, "\x00\xff"s);
  EXPECT_EQ(store.find("session:a", kRun, "a.txt")->data, "abc");
  EXPECT_FALSE(store.find("session:b", kRun, "a.txt"));  // as if it did not exist
  EXPECT_FALSE(store.find("", kRun, "a.txt"));
  EXPECT_FALSE(store.find("session:a", id(1), "a.txt"));
  EXPECT_FALSE(store.find("session:a", kRun, "b.bin"));
  EXPECT_FALSE(store.find("session:a", kRun, "sub"));
  EXPECT_EQ(store.runs(), 1u);
  EXPECT_EQ(store.bytes(), 5u + 3 + 9 + 2);  // paths and contents
}

TEST(RunFiles, ForgetsTheLeastRecentlyUsedRunBeyondTheCount) {
  RunFiles store(RunFilesLimits{3, 1u << 20});
  for (int i = 0; i < 3; ++i) store.put(id(i), "p", files_of(10));
  ASSERT_TRUE(store.find("p", id(0), "f"));   // 0 is now the most recent: 1 goes first
  EXPECT_FALSE(store.find("q", id(1), "f"));  // another principal's look does not count
  store.put(id(3), "p", files_of(10));
  EXPECT_FALSE(store.find("p", id(1), "f"));
  store.put(id(4), "p", files_of(10));
  EXPECT_FALSE(store.find("p", id(2), "f"));
  for (int i : {0, 3, 4}) EXPECT_TRUE(store.find("p", id(i), "f")) << i;
  EXPECT_EQ(store.runs(), 3u);
}

TEST(RunFiles, ForgetsTheLeastRecentlyUsedRunsBeyondTheBytes) {
  RunFiles store(RunFilesLimits{64, 100});
  store.put(id(0), "p", files_of(39));  // 40 bytes with its name
  store.put(id(1), "p", files_of(39));
  EXPECT_EQ(store.bytes(), 80u);
  store.put(id(2), "p", files_of(59));  // 60: the oldest goes
  EXPECT_FALSE(store.find("p", id(0), "f"));
  EXPECT_TRUE(store.find("p", id(1), "f"));
  EXPECT_EQ(store.bytes(), 100u);
  store.put(id(3), "p", files_of(79));  // 80: both go
  EXPECT_EQ(store.runs(), 1u);
  EXPECT_EQ(store.bytes(), 80u);
  // A run larger than the whole store is not kept, and costs the others nothing.
  store.put(id(4), "p", files_of(100));
  EXPECT_FALSE(store.find("p", id(4), "f"));
  EXPECT_TRUE(store.find("p", id(3), "f"));
  EXPECT_EQ(store.bytes(), 80u);
}

TEST(RunFiles, AFileFoundStaysReadableAfterItsRunIsForgotten) {
  RunFiles store(RunFilesLimits{1, 1u << 20});
  store.put(id(0), "p", files_of(5));
  auto f = store.find("p", id(0), "f");
  store.put(id(1), "p", files_of(7));
  EXPECT_FALSE(store.find("p", id(0), "f"));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->data, "xxxxx");
}

TEST(RunFiles, PutUnderTheSameIdReplaces) {
  RunFiles store;
  store.put(kRun, "p", files_of(5));
  store.put(kRun, "p", files_of(2, "g"));
  EXPECT_FALSE(store.find("p", kRun, "f"));
  EXPECT_EQ(store.find("p", kRun, "g")->data, "xx");
  EXPECT_EQ(store.runs(), 1u);
  EXPECT_EQ(store.bytes(), 3u);
}

}  // namespace
}  // namespace onemcp::server
