// The nova.conf-style INI file of volume-host, read with inih.
#pragma once

#include "shim_error.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace volume_host {

struct DriverMapping {
    std::string volume_type;  // "iscsi"
    std::string location;     // as written: absolute path or bare file name
};

using IniSections = std::map<std::string, std::map<std::string, std::string>>;  // [DEFAULT] is "DEFAULT"

struct HostConfig {
    IniSections sections;
    std::vector<DriverMapping> drivers;                                   // from volume_drivers, in order
    std::string driver_dir;                                               // where bare names are looked up
    std::string libvirt_uri = "qemu:///system";
    // [libvirt] bounds of volume-host's own libvirt calls (the driver has its own connection).
    std::uint64_t libvirt_connect_timeout_ms = 10000;
    std::uint64_t libvirt_keepalive_interval_s = 5;
    std::uint64_t libvirt_keepalive_count = 3;
    // [DEFAULT] run_dir: volume-host's root-only directory for its per-domain attach locks.
    std::string run_dir = "/run/volume-host";

    const std::map<std::string, std::string> *section(const std::string &name) const;
};

// Longest INI line accepted (without its line end); a longer one is an error naming the line.
inline constexpr std::size_t max_ini_line = 4096;

// Parses INI text. Comments start a line with '#' or ';', or follow whitespace inside a line (" # ...",
// " ; ..."). Rejects NUL bytes, lines longer than max_ini_line, duplicate keys, and a volume_drivers value that is
// not "type=location[,type=location...]".
Outcome<HostConfig> parse_host_config(std::string_view text, const std::string &default_driver_dir);
// Reads `path`; a non-empty `extra_path` is read after it and each key it sets replaces the same key of the same
// section (VOLUME_HOST_EXTRA_CONFIG: a wrapper points volume-host somewhere else without editing its file).
Outcome<HostConfig> load_host_config(const std::string &path, const std::string &default_driver_dir,
                                     const std::string &extra_path = "");

// Absolute path of a driver: `location` itself when absolute, else driver_dir/location for a bare name.
Outcome<std::string> resolve_driver_path(const HostConfig &config, const DriverMapping &mapping);

}  // namespace volume_host
