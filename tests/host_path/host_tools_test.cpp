// HostTools' multipathd answers for clean removal, against a stand-in script that answers as multipathd does:
// `show paths raw format %d` (one name a line), and "ok" / "fail" (older versions exit 0 with "fail").
#include "host_path/host_tools.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;

class HostToolsAnswers : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-host-tools-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        config_.multipathd_path = (dir_ / "multipathd").string();
        config_.command_timeout = std::chrono::milliseconds(5000);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    // The stand-in prints `out` and exits with `code`; it records its argv in DIR/argv.
    void answer(const std::string &out, int code = 0) {
        const fs::path script = dir_ / "multipathd";
        std::ofstream(script) << "#!/bin/sh\necho \"$@\" > " << (dir_ / "argv").string() << "\nprintf '" << out
                              << "'\nexit " << code << "\n";
        ::chmod(script.c_str(), 0700);
    }
    std::string argv() const {
        std::ifstream in(dir_ / "argv");
        std::string line;
        std::getline(in, line);
        return line;
    }

    fs::path dir_;
    ivd::request::HostPathConfig config_;
    ivd::Logger log_;
};

TEST_F(HostToolsAnswers, ShowPathsReadsOneDeviceALine) {
    answer("sda\\n  sdb \\nnvme0n1\\ncciss!c0d0\\n\\n");
    ivd::host_path::HostTools tools(config_, log_);
    auto paths = tools.multipathd_show_paths();
    ASSERT_TRUE(paths.ok()) << paths.error().message;
    EXPECT_EQ(*paths, (std::vector<std::string>{"sda", "sdb", "nvme0n1", "cciss!c0d0"}));
    EXPECT_EQ(argv(), "show paths raw format %d");
}

TEST_F(HostToolsAnswers, NoPathsIsAnEmptyList) {
    answer("");
    ivd::host_path::HostTools tools(config_, log_);
    auto paths = tools.multipathd_show_paths();
    ASSERT_TRUE(paths.ok()) << paths.error().message;
    EXPECT_TRUE(paths->empty());
}

TEST_F(HostToolsAnswers, ADaemonThatIsNotRunningIsAnError) {
    answer("ux_socket_connect: Connection refused\\n", 1);
    ivd::host_path::HostTools tools(config_, log_);
    auto paths = tools.multipathd_show_paths();
    ASSERT_FALSE(paths.ok());
    EXPECT_NE(paths.error().message.find("Connection refused"), std::string::npos) << paths.error().message;
}

TEST_F(HostToolsAnswers, DelPathAndDelMapReadTheAnswerNotOnlyTheExitCode) {
    ivd::host_path::HostTools tools(config_, log_);
    answer("ok\\n");
    EXPECT_TRUE(tools.multipathd_del_path("sdc").ok());
    EXPECT_EQ(argv(), "del path sdc");
    answer("fail\\n");  // older multipathd: exit 0 with "fail"
    auto path = tools.multipathd_del_path("sdc");
    ASSERT_FALSE(path.ok());
    EXPECT_NE(path.error().message.find("fail"), std::string::npos);
    auto map = tools.multipathd_del_map("3600abc");
    ASSERT_FALSE(map.ok());
    EXPECT_EQ(argv(), "del map 3600abc");
    answer("timeout\\n");
    auto busy = tools.multipathd_del_map("3600abc");
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.error().status, ivd::Status::timeout);
}

}  // namespace
