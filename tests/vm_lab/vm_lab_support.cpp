#include "vm_lab_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace ivd::vmlab {

void stage_guest(const fs::path &stage, const std::string &guest_script) {
    fs::create_directories(stage / "bin");
    fs::copy_file(VOLUME_HOST_PATH, stage / "bin/volume-host");
    fs::copy_file(IVD_MODULE_PATH, stage / "bin/iscsi_volume_driver.so");
    const fs::path dir = IVD_VM_LAB_DIR;
    fs::copy_file(dir / guest_script, stage / "guest_lab.sh");
    fs::copy_file(dir / "guest_stack.sh", stage / "guest_stack.sh");
    fs::copy_file(dir / "guest_common.sh", stage / "guest_common.sh");
    fs::permissions(stage / "guest_lab.sh", fs::perms::owner_all);
}

std::vector<std::string> declared_results(const fs::path &dir) {
    std::vector<fs::path> files;
    for (const auto &e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".sh") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> names;
    static constexpr std::string_view tag = "# vmlab-results:";
    for (const auto &f : files) {
        std::ifstream in(f);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(tag, 0) != 0) continue;
            std::istringstream words(line.substr(tag.size()));
            for (std::string w; words >> w;) names.push_back(w);
        }
    }
    return names;
}

void ResultLines::operator()(const std::string &line) {
    std::istringstream ls(line);
    std::string tag, kind, name, verdict;
    ls >> tag >> kind;
    if (kind != "RESULT") return;
    ls >> name >> verdict;
    std::string detail;
    std::getline(ls, detail);
    results[name] = {verdict, detail};
}

void expect_guest_run(const GuestRun &run, const ResultLines &lines, const std::vector<std::string> &expected,
                      const std::string &password, const std::string &console_log) {
    std::ofstream(console_log) << redact(run.console, password);
    EXPECT_FALSE(run.timed_out) << "the guest did not finish within the deadline and was killed; console tail:\n"
                                << redact(tail_lines(run.console, 60), password);
    EXPECT_TRUE(run.done) << "no 'VMLAB DONE' line; console tail:\n" << redact(tail_lines(run.console, 60), password);
    EXPECT_EQ(run.console.find(password), std::string::npos) << "the CHAP password appeared on the guest console";
    std::string missing;
    for (const std::string &name : expected) {
        const auto it = lines.results.find(name);
        if (it == lines.results.end()) {
            missing += (missing.empty() ? "" : ", ") + name;
            continue;
        }
        EXPECT_EQ(it->second.first, "PASS") << name << ":" << redact(it->second.second, password);
    }
    EXPECT_TRUE(missing.empty()) << "missing result line(s) for " << missing << "; console tail:\n"
                                 << redact(tail_lines(run.console, 40), password);
}

}  // namespace ivd::vmlab
