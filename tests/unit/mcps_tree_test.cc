// Unit tests of the /mcps tree runs see: its files, names, contents, key, and how trees are
// written once and removed when unused.
#include "server/mcps_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace onemcp::server {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<CodeModeServer> sample(bool reversed = false) {
  std::vector<json> files = {
      json{
          {"name", "read_file"},
          {"description", "Read a file.\nWhole, as text. Not */ or \"\"\" safe."},
          {"inputSchema",
           {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}, {"description", "The file to read"}}},
              {"limit", {{"type", "integer"}}}}},
            {"required", {"path"}}}},
          {"outputSchema", {{"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}}}},
      json{{"name", "list-dir"}, {"inputSchema", {{"type", "object"}}}}};
  std::vector<json> weird = {json{{"name", std::string("a/../b\0c", 8)}},
                             json{{"name", std::string(300, 'x') + "1"}},
                             json{{"name", std::string(300, 'x') + "2"}}};
  if (reversed) {
    std::reverse(files.begin(), files.end());
    std::reverse(weird.begin(), weird.end());
    return code_mode_catalog({{"../evil/", weird}, {"files", files}});
  }
  return code_mode_catalog({{"files", files}, {"../evil/", weird}});
}

std::map<std::string, std::string> by_path(const std::vector<TreeFile>& files) {
  std::map<std::string, std::string> m;
  for (const auto& f : files) m[f.path] = f.text;
  return m;
}

TEST(McpsTree, LayoutAndSafeNames) {
  const auto files = mcps_tree_files(sample());
  const auto m = by_path(files);
  const std::string long1 = mcps_file_name(std::string(300, 'x') + "1");
  const std::string long2 = mcps_file_name(std::string(300, 'x') + "2");
  EXPECT_NE(long1, long2);
  EXPECT_LE(long1.size(), kMaxFileStem);
  EXPECT_EQ(mcps_file_name("read_file"), "read_file");
  std::set<std::string> paths;
  for (const auto& f : files) paths.insert(f.path);
  const std::set<std::string> want = {"README.md",
                                      "types.d.ts",
                                      "files/index.d.ts",
                                      "files/read_file.d.ts",
                                      "files/read_file.pyi",
                                      "files/list_dir.d.ts",
                                      "files/list_dir.pyi",
                                      "___evil_/index.d.ts",
                                      "___evil_/a____b_c.d.ts",
                                      "___evil_/a____b_c.pyi",
                                      "___evil_/" + long1 + ".d.ts",
                                      "___evil_/" + long1 + ".pyi",
                                      "___evil_/" + long2 + ".d.ts",
                                      "___evil_/" + long2 + ".pyi"};
  EXPECT_EQ(paths, want);
  for (const auto& p : paths) {
    // Never an escape: relative, no "..", no NUL, at most one directory, bounded components.
    EXPECT_NE(p[0], '/');
    EXPECT_EQ(p.find(".."), std::string::npos) << p;
    EXPECT_EQ(p.find('\0'), std::string::npos);
    EXPECT_LE(std::count(p.begin(), p.end(), '/'), 1);
    EXPECT_LE(p.size(), 2 * kMaxFileStem + 6);
  }
  EXPECT_TRUE(
      std::is_sorted(files.begin(), files.end(), [](auto& a, auto& b) { return a.path < b.path; }));
}

TEST(McpsTree, ToolFilesCarryDescriptionsAndTypes) {
  const auto m = by_path(mcps_tree_files(sample()));
  const std::string& dts = m.at("files/read_file.d.ts");
  EXPECT_NE(
      dts.find("// mcp.files.read_file: tool \"read_file\" of the upstream MCP server \"files\""),
      std::string::npos);
  EXPECT_NE(dts.find("//   path (string, required): The file to read"), std::string::npos) << dts;
  EXPECT_NE(dts.find("export type Input = { limit?: number; path: string; };"), std::string::npos)
      << dts;
  EXPECT_NE(dts.find("export type Output = { text?: string; };"), std::string::npos) << dts;
  // The description is the doc comment, "*/" defused, as in types.d.ts.
  EXPECT_NE(dts.find("/**\n * Read a file.\n * Whole, as text. Not * / or \"\"\" safe.\n */\n"
                     "export declare function read_file(args: { limit?: number; path: string; }): "
                     "Promise<{ text?: string; }>;"),
            std::string::npos)
      << dts;
  const std::string& plain = m.at("files/list_dir.d.ts");
  EXPECT_NE(plain.find("`list-dir` upstream."), std::string::npos);
  EXPECT_NE(plain.find("export type McpContent ="), std::string::npos);  // no outputSchema
  EXPECT_NE(plain.find("export type Output = McpContent[];"), std::string::npos);

  const std::string& pyi = m.at("files/read_file.pyi");
  EXPECT_NE(pyi.find("def read_file(args: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:\n"
                     "    \"\"\"Read a file.\n    Whole, as text. Not */ or \\\"\\\"\\\" safe.\n"),
            std::string::npos)
      << pyi;
  EXPECT_NE(pyi.find("      path (string, required): The file to read\n"), std::string::npos)
      << pyi;
  EXPECT_NE(pyi.find("from mcp_tools import files; result = files.read_file("), std::string::npos);

  const std::string& index = m.at("files/index.d.ts");
  EXPECT_NE(index.find("// - read_file: Read a file.\n"), std::string::npos) << index;
  EXPECT_NE(index.find("export { list_dir } from \"./list_dir\";"), std::string::npos);
  const std::string& readme = m.at("README.md");
  EXPECT_NE(readme.find("2 servers, 5 tools"), std::string::npos) << readme;
  EXPECT_NE(readme.find("- files: 2 tools, /mcps/files/index.d.ts"), std::string::npos) << readme;
  EXPECT_NE(readme.find("- ___evil_ (upstream \"../evil/\"): 3 tools"), std::string::npos)
      << readme;
  EXPECT_EQ(m.at("types.d.ts"), typescript_declarations(sample()));
}

TEST(McpsTree, EmptyWhenNothingIsAllowed) {
  const auto m = by_path(mcps_tree_files({}));
  EXPECT_EQ(m.size(), 2u);
  EXPECT_NE(m.at("README.md").find("None: no upstream tool this run may call is available now."),
            std::string::npos);
}

TEST(McpsTree, KeyIsDeterministicAndFollowsContent) {
  const std::string key = mcps_tree_key(mcps_tree_files(sample()));
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key, mcps_tree_key(mcps_tree_files(sample(true))));  // listing order does not matter
  auto fewer = sample();
  fewer[1].tools.pop_back();  // a tool hidden by policy, or gone from the upstream
  EXPECT_NE(key, mcps_tree_key(mcps_tree_files(fewer)));
  // Paths and contents cannot be shifted into each other.
  EXPECT_NE(mcps_tree_key({{"a", "bc"}}), mcps_tree_key({{"ab", "c"}}));
}

class McpsTreesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("mcps_trees_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "stale");
  }
  void TearDown() override { fs::remove_all(root_); }
  static std::string read(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  fs::path root_;
};

TEST_F(McpsTreesTest, WrittenOnceWorldReadableAndRemovedWhenUnused) {
  auto trees = McpsTrees::open(root_.string());
  ASSERT_TRUE(trees) << trees.error().message;
  EXPECT_FALSE(fs::exists(root_ / "stale"));  // a previous server's trees are gone
  auto a = (*trees)->get(sample());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ((*a)->key, mcps_tree_key(mcps_tree_files(sample())));
  const fs::path dir = root_ / (*a)->key;
  for (const auto& f : mcps_tree_files(sample())) EXPECT_EQ(read(dir / f.path), f.text) << f.path;
  struct stat st;
  ASSERT_EQ(::stat((dir / "files").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((dir / "files" / "read_file.d.ts").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);

  auto again = (*trees)->get(sample(true));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->get(), a->get());  // the same tree, not written again
  EXPECT_EQ((*trees)->writes(), 1u);

  auto fewer = sample();
  fewer.pop_back();
  auto b = (*trees)->get(fewer);
  ASSERT_TRUE(b);
  EXPECT_EQ((*trees)->writes(), 2u);
  EXPECT_TRUE(fs::exists(dir));  // still leased
  a->reset();
  again->reset();
  auto c = (*trees)->get({});  // the next write removes what nobody holds
  ASSERT_TRUE(c);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(root_ / (*b)->key));
  EXPECT_TRUE(fs::exists(root_ / (*c)->key));
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(root_)) ++entries;
  EXPECT_EQ(entries, 2u);  // no temporary directory left
}

}  // namespace
}  // namespace onemcp::server
