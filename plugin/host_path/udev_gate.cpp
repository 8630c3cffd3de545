#include "host_path/udev_gate.hpp"

#include "host_path/wait.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <optional>

namespace ivd::host_path {

namespace fs = std::filesystem;

bool UdevGate::running() const {
    std::error_code ec;
    return fs::is_directory(data_dir_, ec);
}

bool UdevGate::processed(const std::string &devnum, bool present) const {
    std::error_code ec;
    if (devnum.empty() || !running()) return true;
    return fs::exists(fmt::format("{}/b{}", data_dir_, devnum), ec) == present;
}

Result<void> UdevGate::hand_to_multipathd(const std::string &devnum, const std::string &device,
                                          std::chrono::steady_clock::time_point deadline,
                                          const std::function<bool()> &in_map,
                                          const std::function<Result<void>()> &offer) const {
    using namespace std::chrono;
    const milliseconds grace = running() ? milliseconds(100) : milliseconds(0);
    std::optional<steady_clock::time_point> seen_processed;  // when udev was seen done with the device
    steady_clock::time_point next_offer{};
    milliseconds gap{50};
    std::string error;
    const bool taken = poll_until(deadline, [&] {
        if (in_map()) return true;
        const auto now = steady_clock::now();
        if (!seen_processed) {
            if (!processed(devnum, true)) return false;
            seen_processed = now;
        }
        if (now < *seen_processed + grace || now < next_offer) return false;
        auto r = offer();
        if (r) return true;
        error = r.error().message;
        next_offer = steady_clock::now() + gap;
        gap = std::min(gap * 2, milliseconds(500));
        return false;
    }, quick_backoff);
    if (taken) return {};
    return make_error(Status::backend, error.empty() ? fmt::format("multipathd did not take {}", device) : error);
}

void UdevGate::remember_removed(const std::string &device, const std::string &devnum) {
    if (devnum.empty()) return;
    std::lock_guard guard(mutex_);
    removed_[device] = devnum;
}

void UdevGate::wait_removed(const std::vector<std::string> &devices, std::chrono::steady_clock::time_point deadline) const {
    std::vector<std::string> devnums;
    {
        std::lock_guard guard(mutex_);
        for (const auto &d : devices) {
            if (auto it = removed_.find(d); it != removed_.end()) devnums.push_back(it->second);
        }
    }
    poll_until(deadline, [&] {
        return std::all_of(devnums.begin(), devnums.end(), [&](const std::string &n) { return processed(n, false); });
    }, quick_backoff);
}

}  // namespace ivd::host_path
