// What the two benches that boot the real-kernel lab's guest share (osbrick: one volume, ours vs os-brick;
// guestscale: the next volume with N attached): the bench image, the staged programs and scripts, and the
// guest's "VMLAB BENCH <kind> {json}" / "VMLAB ERROR ..." console lines.
#pragma once

#include "vm_lab_runner.hpp"

#include <json/json.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ivd::bench {

struct BenchImage {
    std::filesystem::path dir;  // vmlinuz, initrd.img, rootfs.img of build_bench_image.sh
    std::string key;
    double build_s = 0;
};

// Builds (or finds in its cache) the bench image; throws when the build fails.
BenchImage bench_image(const char *bench_name);

// volume-host, the module, guest_bench.sh (as guest_lab.sh, the name the init stub runs), guest_stack.sh,
// guest_bench.py, guest_osbrick.py and guest_steps.py, plus `extra` scripts of tests/vm_lab (e.g. guest_scale.py).
void stage_guest_bench(const std::filesystem::path &stage, const std::vector<std::string> &extra = {});

// Collects the guest's bench lines: every "VMLAB BENCH kind {json}" by kind, in order; errors redacted.
class BenchLines {
public:
    explicit BenchLines(std::string secret) : secret_(std::move(secret)) {}
    void operator()(const std::string &line);
    // Every value of `kind`, as a JSON array (empty when none came).
    Json::Value all(const std::string &kind) const;
    // The last value of `kind` (null when none came).
    Json::Value last(const std::string &kind) const;
    const Json::Value &errors() const { return errors_; }

private:
    std::string secret_;
    std::map<std::string, Json::Value> by_kind_;
    Json::Value errors_{Json::arrayValue};
};

// Boots the guest with `options` (its secret is redacted from the echo), hands every console line to `lines`
// and answers no host request; the redacted console goes to `console_path` when it is not empty.
vmlab::GuestRun run_bench_guest(const vmlab::GuestOptions &options, BenchLines &lines, const std::string &console_path);

// The fields every guest bench reports about its run: accel, image key and build time, guest time, done / timed out.
Json::Value guest_run_fields(const vmlab::GuestOptions &options, const BenchImage &image, const vmlab::GuestRun &run);

}  // namespace ivd::bench
