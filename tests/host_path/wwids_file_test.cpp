// The wwids file reader (host_path/wwids_file.hpp): which WWIDs multipath-tools' file lists, and that anything it
// cannot read whole means "not listed" (the connect then runs `multipath -a`, as before).
#include "host_path/wwids_file.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using ivd::host_path::max_wwids_file_bytes;
using ivd::host_path::wwids_file_lists;
using ivd::host_path::wwids_text_lists;

constexpr const char *real_file = "# Multipath wwids, Version : 1.0\n"
                                  "# NOTE: This file is automatically maintained by multipath and multipathd.\n"
                                  "# You should not need to edit this file in normal circumstances.\n"
                                  "#\n"
                                  "# Valid WWIDs:\n"
                                  "/360000000000000000e00000000010001/\n"
                                  "  /360000000000000000e00000000020001/\n";

TEST(WwidsFile, ListsTheEntriesOfTheRealFormat) {
    EXPECT_TRUE(wwids_text_lists(real_file, "360000000000000000e00000000010001"));
    // multipath-tools' lookup_wwid takes an entry only from a '/' in the first column: an indented line is none.
    EXPECT_FALSE(wwids_text_lists(real_file, "360000000000000000e00000000020001"));
    EXPECT_FALSE(wwids_text_lists("\t/3600a/\n", "3600a"));
    EXPECT_FALSE(wwids_text_lists(real_file, "360000000000000000e00000000030001"));
}

TEST(WwidsFile, CommentsPrefixesAndTruncatedLinesAreNoEntries) {
    EXPECT_FALSE(wwids_text_lists("# /3600a/\n", "3600a"));
    EXPECT_FALSE(wwids_text_lists("/3600ab/\n", "3600a"));   // another WWID that starts the same
    EXPECT_FALSE(wwids_text_lists("/x3600a/\n", "3600a"));
    EXPECT_FALSE(wwids_text_lists("/3600a\n/\n", "3600a"));  // no closing slash on its line
    EXPECT_FALSE(wwids_text_lists("3600a\n", "3600a"));      // not in slashes
    EXPECT_TRUE(wwids_text_lists("/3600a/", "3600a"));       // last line without newline
    EXPECT_FALSE(wwids_text_lists("//\n", ""));              // an empty WWID is never listed
    EXPECT_FALSE(wwids_text_lists("", "3600a"));
}

class WwidsFileOnDisk : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-wwids-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir_;
};

TEST_F(WwidsFileOnDisk, ReadsTheFileAndTreatsWhatItCannotReadAsNotListed) {
    const fs::path file = dir_ / "wwids";
    std::ofstream(file) << real_file;
    EXPECT_TRUE(wwids_file_lists(file.string(), "360000000000000000e00000000010001"));
    EXPECT_FALSE(wwids_file_lists(file.string(), "360000000000000000e00000000030001"));
    EXPECT_FALSE(wwids_file_lists((dir_ / "missing").string(), "360000000000000000e00000000010001"));
    EXPECT_FALSE(wwids_file_lists(dir_.string(), "360000000000000000e00000000010001"));  // a directory
    EXPECT_FALSE(wwids_file_lists("", "360000000000000000e00000000010001"));
}

TEST_F(WwidsFileOnDisk, AFileOverTheBoundIsNotRead) {
    const fs::path file = dir_ / "wwids";
    {
        std::ofstream out(file);
        out << "/3600a/\n";
        const std::string filler(1023, '#');
        for (std::size_t n = 0; n <= max_wwids_file_bytes / 1024; ++n) out << filler << '\n';
    }
    ASSERT_GT(fs::file_size(file), max_wwids_file_bytes);
    EXPECT_FALSE(wwids_file_lists(file.string(), "3600a"));
}

TEST_F(WwidsFileOnDisk, AFifoIsNotReadAndDoesNotBlock) {
    const fs::path fifo = dir_ / "wwids";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // With no writer, a blocking open of a FIFO never returns: reaching the assertion is the test.
    EXPECT_FALSE(wwids_file_lists(fifo.string(), "3600a"));
}

}  // namespace
