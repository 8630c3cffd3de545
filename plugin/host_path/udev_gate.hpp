// udev's database as the host path reads it: multipathd hears of block devices only through udev, so asking it
// about a device before udev has processed that device's last event cannot succeed (and costs a process each
// time on a host busy with udev's rules for that very device).
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ivd::host_path {

class UdevGate {
public:
    explicit UdevGate(std::string data_dir) : data_dir_(std::move(data_dir)) {}

    // Whether udev keeps its database here; without it nothing is waited for.
    bool running() const;
    // Whether udev has processed the last event of block device `devnum` ("8:32"): its database entry is there
    // (`present`, an add) or gone (a remove). Without the database (or the number) there is nothing to wait for.
    bool processed(const std::string &devnum, bool present) const;

    // Hands `device` (MAJOR:MINOR `devnum`) to multipathd, by the deadline. multipathd takes a path only once udev
    // has processed it (it reads the WWID from udev's ID_SERIAL); on a real kernel a freshly scanned sdX is in
    // sysfs well before that, and `multipathd add path` answers "fail" ("orphan path"). So `in_map` (cheap:
    // sysfs) is watched until multipathd took the path by itself from udev's event (its WWID is in the wwids
    // file), and `offer` is made only once udev's database has the device and a short grace has passed; a
    // refused offer is made again, less and less often.
    Result<void> hand_to_multipathd(const std::string &devnum, const std::string &device,
                                    std::chrono::steady_clock::time_point deadline, const std::function<bool()> &in_map,
                                    const std::function<Result<void>()> &offer) const;

    // Remembers the MAJOR:MINOR of a device about to be deleted: once gone, its name is all sysfs keeps of it.
    void remember_removed(const std::string &device, const std::string &devnum);
    // Waits (bounded) until udev has let go of every one of `devices` remembered as removed.
    void wait_removed(const std::vector<std::string> &devices, std::chrono::steady_clock::time_point deadline) const;

private:
    std::string data_dir_;
    mutable std::mutex mutex_;
    std::map<std::string, std::string> removed_;  // device -> its MAJOR:MINOR
};

}  // namespace ivd::host_path
