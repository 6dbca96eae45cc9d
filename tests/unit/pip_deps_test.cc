// deps/pip.h validation: what a call may ask pip for, before pip runs.
#include <gtest/gtest.h>

#include "deps/pip.h"

namespace onemcp::deps {
namespace {

TEST(PipRequirement, AcceptsNamesExtrasAndVersionClauses) {
  for (const char* r : {"requests", "requests==2.32.3", "Django>=4.2,<5", "pkg[extra]", "pkg[a, b] >= 1.0",
                        "zope.interface", "a_b-c.d~=1.4", "x===1.0", "x!=1.*", "x==1.0+local", "x==1!2.0",
                        "numpy >=1.26 , <2", "A1"}) {
    EXPECT_TRUE(valid_requirement(r)) << r;
  }
}

TEST(PipRequirement, RefusesUrlsPathsOptionsAndMarkers) {
  for (const char* r : {"", " requests", "-r requirements.txt", "--index-url=http://evil", "-e .",
                        "pkg @ https://evil.test/pkg.whl", "pkg@https://evil.test/pkg.whl",
                        "./local/dir", "/etc/passwd", "../x", "file:///x.whl", "https://evil.test/x.whl",
                        "pkg; python_version>'3'", "pkg==1 ; sys_platform=='linux'", "pkg==", "pkg[",
                        "pkg[]", "pkg[a", "pkg>>1", "pkg 1.0", "pkg==1 2", ".hidden", "pkg-", "pkg\n==1",
                        "pkg==1\t", "pkg==$(id)", "pkg==1,", "pkg==1 -r x", "pk g"}) {
    EXPECT_FALSE(valid_requirement(r)) << r;
  }
  EXPECT_FALSE(valid_requirement(std::string(257, 'a')));
  EXPECT_TRUE(valid_requirement(std::string(256, 'a')));
}

TEST(PipWheelUrl, AcceptsHttpUrlsOfWheelFiles) {
  for (const char* u : {"https://files.example.test/pkg-1.0-py3-none-any.whl",
                        "http://127.0.0.1:8080/files/onemcp_fixture-1.0.0-py3-none-any.whl",
                        "HTTPS://h.test/a/b/numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                        "https://h.test/pkg-1.0-1build-py3-none-any.whl?token=x#frag"}) {
    EXPECT_TRUE(valid_wheel_url(u)) << u;
  }
  EXPECT_EQ(wheel_file_name("https://h.test/a/pkg-1.0-py3-none-any.whl?x=/y#z"), "pkg-1.0-py3-none-any.whl");
  EXPECT_EQ(wheel_file_name("https://h.test"), "");
}

TEST(PipWheelUrl, RefusesOtherSchemesNamesAndCharacters) {
  for (const char* u : {"file:///tmp/pkg-1.0-py3-none-any.whl", "ftp://h.test/pkg-1.0-py3-none-any.whl",
                        "https://h.test/pkg.whl", "https://h.test/pkg-1.0-py3-none-any.zip",
                        "https://h.test/pkg-1.0-py3-none-any.whl/", "https://pkg-1.0-py3-none-any.whl",
                        "https://h.test/..%2f-1.0-py3-none-any.whl", "https://h.test/a b-1.0-py3-none-any.whl",
                        "https://h.test/pkg-1.0--py3-none-any.whl", "https://h.test/-pkg-1.0-py3-none-any.whl",
                        "https://h.test/a-b-c-d-e-f-g.whl", "https://h.test/.x-1.0-py3-none-any.whl",
                        "https://h.test/pkg-1.0-py3-none-any.whl\n", "/pkg-1.0-py3-none-any.whl"}) {
    EXPECT_FALSE(valid_wheel_url(u)) << u;
  }
  EXPECT_FALSE(valid_wheel_url("https://h.test/" + std::string(2100, 'a') + "-1.0-py3-none-any.whl"));
}

TEST(PipSet, ValidationNamesTheOffendingEntryAndEnforcesCounts) {
  auto err = [](const PipSet& s) {
    auto r = validate_pip(s);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_TRUE(validate_pip({{"a==1", "b[x]"}, {"https://h.test/c-1.0-py3-none-any.whl"}}).ok());
  EXPECT_EQ(err({{"ok", "x @ https://e.test/x.whl"}, {}}).rfind(
                "pip.requirements: unsupported requirement \"x @ https://e.test/x.whl\"", 0),
            0u);
  EXPECT_EQ(err({{}, {"file:///x.whl"}}).rfind("pip.wheelUrls: unsupported URL \"file:///x.whl\"", 0), 0u);
  EXPECT_EQ(err({{}, {"https://a.test/c-1.0-py3-none-any.whl", "https://b.test/c-1.0-py3-none-any.whl"}}),
            "pip.wheelUrls: two URLs name the same wheel file \"c-1.0-py3-none-any.whl\"");
  EXPECT_EQ(err({std::vector<std::string>(kMaxPipRequirements + 1, "a"), {}}),
            "pip.requirements: at most 64 requirements");
  std::vector<std::string> urls;
  for (size_t i = 0; i <= kMaxWheelUrls; ++i)
    urls.push_back("https://h.test/p" + std::to_string(i) + "-1.0-py3-none-any.whl");
  EXPECT_EQ(err({{}, urls}), "pip.wheelUrls: at most 16 URLs");
}

TEST(PipSet, MergeIsASortedUnion) {
  PipSet config{{"b==1", "a"}, {"https://h.test/w-1-py3-none-any.whl"}};
  PipSet call{{"a", "c>2"}, {}};
  PipSet merged = merge_pip(config, call);
  EXPECT_EQ(merged.requirements, (std::vector<std::string>{"a", "b==1", "c>2"}));
  EXPECT_EQ(merged.wheel_urls, config.wheel_urls);
  EXPECT_TRUE(merge_pip({}, {}).empty());
}

}  // namespace
}  // namespace onemcp::deps
