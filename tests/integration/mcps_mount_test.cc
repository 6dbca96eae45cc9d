// Integration tests of a run's /mcps tree in the real workers: the tree the request names is
// mounted read-only (nosuid, nodev, noexec) at /mcps and nothing else of the trees root is
// visible; the worker itself refuses a key that is not 64 hex digits or that names anything but a
// tree's own directory (a symbolic link planted under the root).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sandbox/executor.h"
#include "server/mcps_tree.h"

namespace onemcp::server {
namespace {

namespace fs = std::filesystem;

class McpsMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("mcps_mount_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    auto trees = McpsTrees::open(root_.string());
    ASSERT_TRUE(trees) << trees.error().message;
    trees_ = std::move(*trees);
    auto catalog = code_mode_catalog(
        {{"files", {nlohmann::json{{"name", "read_file"}, {"description", "Reads a file."}}}}});
    auto tree = trees_->get(catalog);
    ASSERT_TRUE(tree) << tree.error().message;
    tree_ = *tree;
  }
  void TearDown() override { fs::remove_all(root_); }

  sandbox::RunOutput run(const char* worker, const std::string& key, const std::string& code) {
    if (!zygote_) {
      auto z = sandbox::Zygote::start(sandbox::LaunchSpec{
          worker, {"--mcps-root", root_.string()}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
      EXPECT_TRUE(z) << z.error().message;
      if (!z) return {};
      EXPECT_TRUE((*z)->wait_ready(std::chrono::seconds(30)));
      zygote_ = std::move(*z);
    }
    ipc::RunRequest req;
    req.code = code;
    req.timeout_ms = 20000;
    req.mem_mb = 256;
    req.stdout_bytes = 1 << 20;
    req.mcps_key = key;
    auto out = zygote_->run(req, "");
    EXPECT_TRUE(out) << out.error().message;
    return out ? std::move(*out) : sandbox::RunOutput{};
  }

  fs::path root_;
  std::unique_ptr<McpsTrees> trees_;
  std::shared_ptr<const McpsTrees::Tree> tree_;
  std::unique_ptr<sandbox::Zygote> zygote_;
};

TEST_F(McpsMountTest, TheRunsTreeIsMountedReadOnlyAndAloneAtMcps) {
  auto r = run(ONEMCP_PY_WORKER, tree_->key,
               "import os\n"
               "print(sorted(os.listdir('/mcps')), sorted(os.listdir('/mcps/files')))\n"
               "print(open('/mcps/files/read_file.d.ts').read().count('Reads a file.'))\n"
               "opts = [l.split()[5].split(',') for l in open('/proc/self/mountinfo')\n"
               "        if l.split()[4] == '/mcps']\n"
               "print([sorted({'ro', 'nosuid', 'nodev', 'noexec'} & set(o)) for o in opts])\n"
               "print(os.listdir('/deps/mcps'))\n"
               "for p in ('/mcps/x', '/mcps/files/read_file.d.ts'):\n"
               "    try:\n"
               "        open(p, 'a').write('x')\n"
               "        print('wrote', p)\n"
               "    except OSError as e:\n"
               "        print('denied' if e.errno in (13, 30) else e)\n");
  EXPECT_EQ(r.outcome, sandbox::Outcome::ok) << r.err << r.report.error_message.value_or("");
  EXPECT_EQ(
      r.out,
      "['README.md', 'files', 'types.d.ts'] ['index.d.ts', 'read_file.d.ts', 'read_file.pyi']\n"
      "1\n[['nodev', 'noexec', 'nosuid', 'ro']]\n[]\ndenied\ndenied\n")
      << r.err;
  // Without a key: an empty /mcps, the trees detached all the same (an empty mount point).
  r = run(ONEMCP_PY_WORKER, "", "import os\nprint(os.listdir('/mcps'), os.listdir('/deps/mcps'))");
  EXPECT_EQ(r.out, "[] []\n") << r.err;
}

TEST_F(McpsMountTest, TheWorkerRefusesKeysThatAreNotATreesOwnDirectory) {
  // Valid in form, but a link out of the root, or a file.
  const std::string link(64, 'a'), file(64, 'b');
  fs::create_directory_symlink(root_ / tree_->key, root_ / link);
  fs::create_directory_symlink("/etc", root_ / (std::string(63, 'c') + "d"));
  { std::ofstream(root_ / file) << "x"; }
  for (std::string key : {std::string("../../etc"), std::string("/etc"), std::string(64, 'A'),
                          std::string(63, 'a') + "/", link, file, std::string(63, 'c') + "d",
                          std::string(64, '0'), std::string(".."), tree_->key + "/files"}) {
    auto r = run(ONEMCP_JS_WORKER, key, "console.log('ran')");
    EXPECT_EQ(r.outcome, sandbox::Outcome::internal) << key << ": " << r.out;
    EXPECT_EQ(r.out, "") << key;
  }
  auto r = run(ONEMCP_JS_WORKER, tree_->key,
               "console.log(require('fs').readdirSync('/mcps').sort().join(','))");
  EXPECT_EQ(r.out, "README.md,files,types.d.ts\n") << r.err;
}

}  // namespace
}  // namespace onemcp::server
