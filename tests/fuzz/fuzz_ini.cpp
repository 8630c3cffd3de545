// volume-host's INI reader (the nova.conf-style file that maps volume types to driver modules).
#include "ini_config.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    auto config = volume_host::parse_host_config(text, "/usr/lib/volume-drivers");
    if (!config) {
        if (config.error().message.empty()) std::abort();
        return 0;
    }
    for (const auto &mapping : config->drivers) {
        if (mapping.volume_type.empty() || mapping.location.empty()) {
            std::fprintf(stderr, "empty volume type or location accepted\n");
            std::abort();
        }
        auto path = volume_host::resolve_driver_path(*config, mapping);
        // dlopen() resolves a relative path against the working directory: a driver must never come from there.
        if (path && (path->empty() || (*path)[0] != '/')) {
            std::fprintf(stderr, "resolved a driver to a relative path: %s\n", path->c_str());
            std::abort();
        }
    }
    return 0;
}
