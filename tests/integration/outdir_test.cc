#include "sandbox/outdir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "base/unique_fd.h"

namespace onemcp::sandbox {
namespace {

class OutDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/1mcp-outdir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  void write(const std::string& rel, const std::string& data) {
    std::ofstream(dir_ + "/" + rel, std::ios::binary) << data;
  }
  std::vector<OutFile> read(const OutLimits& l = {}) {
    UniqueFd fd(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    auto r = read_out_dir(fd.get(), l);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<OutFile>{};
  }
  std::string dir_;
};

TEST_F(OutDir, ReadsRegularFilesInOrder) {
  write("b.txt", "bee");
  ASSERT_EQ(::mkdir((dir_ + "/sub").c_str(), 0755), 0);
  write("sub/a.txt", "nested");
  auto files = read();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "b.txt");
  EXPECT_EQ(files[0].data, "bee");
  EXPECT_EQ(files[1].path, "sub/a.txt");
  EXPECT_EQ(files[1].data, "nested");
}

TEST_F(OutDir, NeverFollowsWhatTheRunPlanted) {
  ASSERT_EQ(::symlink("/etc/passwd", (dir_ + "/passwd").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (dir_ + "/etcdir").c_str()), 0);
  ASSERT_EQ(::symlink("/proc/self/root/etc/hostname", (dir_ + "/magic").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0644), 0);  // opening it must not hang
  ASSERT_EQ(::link("/dev/null", (dir_ + "/null").c_str()) == 0 || errno == EXDEV || errno == EPERM, true);
  auto t0 = std::chrono::steady_clock::now();
  auto files = read();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_TRUE(files.empty()) << files.size() << " " << (files.empty() ? "" : files[0].path);
}

TEST_F(OutDir, SparseAndLargeFilesAreCapped) {
  int fd = ::open((dir_ + "/sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, off_t(1) << 40), 0);  // claims 1 TiB, holds nothing
  ::close(fd);
  write("big", std::string(3u << 20, 'x'));
  OutLimits l;
  l.file_bytes = 1u << 20;
  l.total_bytes = 1536u << 10;
  auto files = read(l);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "big");
  EXPECT_EQ(files[0].data.size(), 1u << 20);
  EXPECT_TRUE(files[0].truncated);
  EXPECT_EQ(files[1].path, "sparse");
  EXPECT_EQ(files[1].size, uint64_t(1) << 40);
  EXPECT_EQ(files[1].data.size(), 512u << 10);  // what is left of the total
  EXPECT_TRUE(files[1].truncated);
}

TEST_F(OutDir, DepthAndCountAreBounded) {
  std::string p = dir_;
  for (int i = 0; i < 20; ++i) {
    p += "/d";
    ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);
    std::ofstream(p + "/f") << i;
  }
  OutLimits l;
  l.max_depth = 3;
  EXPECT_EQ(read(l).size(), 3u);  // d/f, d/d/f, d/d/d/f
  for (int i = 0; i < 200; ++i) write("n" + std::to_string(1000 + i), "x");
  EXPECT_EQ(read().size(), OutLimits{}.max_files);
}

TEST_F(OutDir, ClearEmptiesNestedDirectoriesWithoutFollowingLinks) {
  ASSERT_EQ(::mkdir((dir_ + "/d").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir_ + "/d/e").c_str(), 0755), 0);
  write("d/e/f", "x");
  write("top", "y");
  char keep[] = "/tmp/1mcp-outdir-keep-XXXXXX";
  ASSERT_NE(::mkdtemp(keep), nullptr);
  std::ofstream(std::string(keep) + "/precious") << "z";
  ASSERT_EQ(::symlink(keep, (dir_ + "/link").c_str()), 0);
  UniqueFd fd(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  clear_out_dir(fd.get());
  EXPECT_TRUE(list_tree(fd.get()).empty());
  EXPECT_NE(::access((dir_ + "/d").c_str(), F_OK), 0);
  EXPECT_NE(::access((dir_ + "/link").c_str(), F_OK), 0);
  EXPECT_EQ(::access((std::string(keep) + "/precious").c_str(), F_OK), 0)
      << "the link's target stays";
  std::system(("rm -rf " + std::string(keep)).c_str());
}

TEST_F(OutDir, ListsAndReadsAWorkspaceWithoutFollowingLinks) {
  ASSERT_EQ(::mkdir((dir_ + "/sub").c_str(), 0755), 0);
  write("sub/a.txt", "nested");
  write("b.txt", "bee");
  ASSERT_EQ(::symlink("/etc/passwd", (dir_ + "/passwd").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (dir_ + "/etcdir").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0644), 0);
  UniqueFd fd(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  auto tree = list_tree(fd.get());
  ASSERT_EQ(tree.size(), 3u);  // no links, no fifo
  EXPECT_EQ(tree[0].path, "b.txt");
  EXPECT_EQ(tree[0].size, 3u);
  EXPECT_EQ(tree[1].path, "sub");
  EXPECT_TRUE(tree[1].dir);
  EXPECT_EQ(tree[2].path, "sub/a.txt");
  EXPECT_EQ(list_tree(fd.get(), 2).size(), 2u);
  EXPECT_EQ(list_tree(fd.get(), 1000, 1).size(), 2u);  // sub's files are one level deeper

  auto a = read_beneath(fd.get(), "sub/a.txt", 100);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "nested");
  auto t0 = std::chrono::steady_clock::now();
  for (const char* bad : {"passwd", "etcdir/passwd", "fifo", "sub", "nope", "../etc/passwd",
                          "/etc/passwd", "sub/../b.txt", "./b.txt", "sub//a.txt", ""}) {
    EXPECT_FALSE(read_beneath(fd.get(), bad, 100).ok()) << bad;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));  // no fifo hangs
  EXPECT_NE(read_beneath(fd.get(), "passwd", 100).error().message.find("symbolic link"),
            std::string::npos);
  auto big = read_beneath(fd.get(), "sub/a.txt", 5);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("larger than 5 bytes"), std::string::npos);
}

}  // namespace
}  // namespace onemcp::sandbox
