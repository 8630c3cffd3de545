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
    std::vector<std::string> scripts{"guest_stack.sh", "guest_bench.py", "guest_osbrick.py", "guest_steps.py"};
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

vmlab::GuestRun run_bench_guest(const vmlab::GuestOptions &options, BenchLines &lines, const std::string &console_path) {
    const auto on_line = [&](const std::string &line) { lines(line); };
    const auto on_request = [](const std::string &action) { return fmt::format("ACK {} fail unknown action", action); };
    vmlab::GuestRun run = vmlab::run_guest(options, on_line, on_request);
    if (!console_path.empty()) std::ofstream(console_path) << vmlab::redact(run.console, options.secret);
    return run;
}

Json::Value guest_run_fields(const vmlab::GuestOptions &options, const BenchImage &image, const vmlab::GuestRun &run) {
    Json::Value out(Json::objectValue);
    out["accel"] = options.accel;
    out["image_key"] = image.key;
    out["image_s"] = image.build_s;
    out["guest_run_s"] = run.run_s;
    out["guest_done"] = run.done;
    out["guest_timed_out"] = run.timed_out;
    out["password_on_console"] = !options.secret.empty() && run.console.find(options.secret) != std::string::npos;
    return out;
}

}  // namespace ivd::bench
