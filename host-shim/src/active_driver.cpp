#include "active_driver.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <iostream>

#ifndef VOLUME_HOST_DRIVER_DIR
#define VOLUME_HOST_DRIVER_DIR "/usr/lib/volume-drivers"
#endif

namespace volume_host {

namespace {

std::atomic<int> log_threshold{VD_LOG_WARNING};

int level_from_name(const std::string &name) {
    if (name == "error") return VD_LOG_ERROR;
    if (name == "info") return VD_LOG_INFO;
    if (name == "debug") return VD_LOG_DEBUG;
    return VD_LOG_WARNING;
}

const char *level_name(int level) {
    switch (level) {
    case VD_LOG_ERROR: return "error";
    case VD_LOG_WARNING: return "warning";
    case VD_LOG_INFO: return "info";
    default: return "debug";
    }
}

// The host's log sink: one line per message on stderr; stdout stays pure JSON.
void log_to_stderr(void *, std::int32_t level, const char *component, const char *message) {
    if (level > log_threshold.load()) return;
    std::fprintf(stderr, "volume-host: %s %s: %s\n", level_name(level), component ? component : "-",
                 message ? message : "");
}

const vd_host_table host_table = {sizeof(vd_host_table), nullptr, log_to_stderr};

std::string driver_config_json(const HostConfig &config, const std::string &volume_type) {
    Json::Value section(Json::objectValue);
    if (const auto *s = config.section(volume_type)) {
        for (const auto &[key, value] : *s) section[key] = value;
    }
    if (!section.isMember("libvirt_uri")) section["libvirt_uri"] = config.libvirt_uri;
    return compact(section);
}

}  // namespace

std::string compact(const Json::Value &v) {
    Json::StreamWriterBuilder b;
    b["indentation"] = "";
    b["emitUTF8"] = true;
    return Json::writeString(b, v);
}

std::string pretty(const Json::Value &v) {
    Json::StreamWriterBuilder b;
    b["indentation"] = "  ";
    b["emitUTF8"] = true;
    return Json::writeString(b, v);
}

Outcome<ActiveDriver> open_driver(const HostConfig &config, const DriverMapping &mapping) {
    auto path = resolve_driver_path(config, mapping);
    if (!path) return path.error();
    auto module = LoadedModule::load(*path, host_table);
    if (!module) return module.error();
    auto instance = DriverInstance::create(*module, driver_config_json(config, mapping.volume_type));
    if (!instance) return instance.error();
    return ActiveDriver{mapping, *path, std::move(*module), std::move(*instance)};
}

Outcome<HostConfig> load_config(const GlobalOptions &global) {
    log_threshold.store(level_from_name(global.log_level));
    return load_host_config(global.config_path, VOLUME_HOST_DRIVER_DIR, global.extra_config_path);
}

Outcome<ActiveDriver> open_driver_for(const HostConfig &config, const std::string &volume_type) {
    for (const auto &mapping : config.drivers) {
        if (mapping.volume_type == volume_type) return open_driver(config, mapping);
    }
    return ShimError{"no_driver",
                     fmt::format("no driver is mapped for driver_volume_type '{}' in [DEFAULT] volume_drivers",
                                 volume_type),
                     exit_config};
}

// Prints the driver's last error on stderr and returns the driver exit code.
int driver_failed(const ActiveDriver &driver, const char *call, std::int32_t status) {
    Json::Value error;
    Json::CharReaderBuilder b;
    std::string ignored;
    const std::string text = driver.instance->last_error();
    std::unique_ptr<Json::CharReader> reader(b.newCharReader());
    if (!reader->parse(text.data(), text.data() + text.size(), &error, &ignored) || !error.isObject()) {
        error = Json::Value(Json::objectValue);
        error["message"] = "the driver's last error is not JSON";
    }
    error["call"] = call;
    error["status"] = status;
    Json::Value out;
    out["error"] = error;
    std::cerr << compact(out) << std::endl;
    return exit_driver;
}

}  // namespace volume_host
