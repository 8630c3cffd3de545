#include "bench_guest.hpp"

#include "bench_common.hpp"
#include "vm_lab_runner.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string_view>

namespace ivd::bench {

namespace fs = std::filesystem;

BenchImage bench_image(const char *bench_name) {
    const auto t0 = vmlab::Clock::now();
    BenchImage image;
    image.dir = vmlab::build_image(IVD_VM_LAB_DIR "/build_bench_image.sh");
    if (image.dir.empty()) throw std::runtime_error("build_bench_image.sh failed (see its stderr above)");
    image.build_s = vmlab::seconds_since(t0);
    std::getline(std::ifstream(image.dir / "KEY"), image.key);
    std::cerr << fmt::format("[{}] bench image {} ready after {:.1f} s\n", bench_name, image.dir.string(),
                             image.build_s);
    return image;
}

void stage_guest_bench(const fs::path &stage, const std::vector<std::string> &extra) {
    const fs::path lab = IVD_VM_LAB_DIR;
    fs::create_directories(stage / "bin");
    fs::copy_file(IVD_VOLUME_HOST_PATH, stage / "bin/volume-host");
    fs::copy_file(IVD_MODULE_PATH, stage / "bin/iscsi_volume_driver.so");
    fs::copy_file(lab / "guest_bench.sh", stage / "guest_lab.sh");  // the name the init stub runs
    fs::permissions(stage / "guest_lab.sh", fs::perms::owner_all);
    std::vector<std::string> scripts{"guest_stack.sh", "guest_bench.py", "guest_steps.py"};
    scripts.insert(scripts.end(), extra.begin(), extra.end());
    for (const auto &name : scripts) fs::copy_file(lab / name, stage / name);
}

void BenchLines::operator()(const std::string &line) {
    static constexpr std::string_view bench = "VMLAB BENCH ", error = "VMLAB ERROR ";
    if (line.rfind(error, 0) == 0) errors_.append(vmlab::redact(line.substr(error.size()), secret_));
    if (line.rfind(bench, 0) != 0) return;
    const std::string rest = line.substr(bench.size());
    const std::string kind = rest.substr(0, rest.find(' '));
    try {
        by_kind_[kind].append(parse_json(rest.substr(kind.size() + 1)));
    } catch (const std::exception &e) {
        errors_.append(fmt::format("unparsable {} line: {}", kind, e.what()));
    }
}

Json::Value BenchLines::all(const std::string &kind) const {
    const auto it = by_kind_.find(kind);
    return it == by_kind_.end() ? Json::Value(Json::arrayValue) : it->second;
}

Json::Value BenchLines::last(const std::string &kind) const {
    const auto it = by_kind_.find(kind);
    return it == by_kind_.end() || it->second.empty() ? Json::Value() : it->second[it->second.size() - 1];
}

}  // namespace ivd::bench
