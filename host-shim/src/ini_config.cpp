#include "ini_config.hpp"

#include <ini.h>

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <optional>
#include <fstream>
#include <mutex>
#include <sstream>

namespace volume_host {

namespace {

ShimError config_error(std::string message) { return ShimError{"config_error", std::move(message), exit_config}; }

std::string trim(std::string_view s) {
    std::size_t b = 0;
    std::size_t e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

struct ParseState {
    IniSections sections;
    std::string error;
};

int on_entry(void *user, const char *section, const char *name, const char *value) {
    auto *state = static_cast<ParseState *>(user);
    if (name == nullptr) return 1;  // a section header alone
    auto &entries = state->sections[section];
    if (!entries.emplace(name, value).second) {
        if (state->error.empty()) state->error = fmt::format("duplicate key '{}' in section [{}]", name, section);
        return 0;
    }
    return 1;
}

// An unsigned integer key within [min, max]; absent keeps `out` as it is.
std::optional<ShimError> read_uint(const std::map<std::string, std::string> &section, const char *section_name,
                                   const char *key, std::uint64_t min, std::uint64_t max, std::uint64_t &out) {
    const auto it = section.find(key);
    if (it == section.end()) return std::nullopt;
    std::uint64_t value = 0;
    const char *begin = it->second.data();
    const char *end = begin + it->second.size();
    const auto [ptr, ec] = std::from_chars(begin, end, value);
    if (it->second.empty() || ec != std::errc() || ptr != end || value < min || value > max) {
        return config_error(fmt::format("[{}] {}: '{}' is not an integer in {}..{}", section_name, key, it->second,
                                        min, max));
    }
    out = value;
    return std::nullopt;
}

std::optional<ShimError> read_libvirt_section(const std::map<std::string, std::string> &libvirt, HostConfig &config) {
    if (auto it = libvirt.find("connection_uri"); it != libvirt.end()) config.libvirt_uri = it->second;
    if (auto e = read_uint(libvirt, "libvirt", "connect_timeout_ms", 1, 3600000, config.libvirt_connect_timeout_ms)) {
        return e;
    }
    if (auto e = read_uint(libvirt, "libvirt", "keepalive_interval_s", 0, 3600, config.libvirt_keepalive_interval_s)) {
        return e;
    }
    return read_uint(libvirt, "libvirt", "keepalive_count", 0, 100, config.libvirt_keepalive_count);
}

}  // namespace

const std::map<std::string, std::string> *HostConfig::section(const std::string &name) const {
    const auto it = sections.find(name);
    return it == sections.end() ? nullptr : &it->second;
}

// Sets libinih's run-time options (Debian builds it with them as variables) once per process: a heap line
// buffer of max_ini_line bytes instead of INI_MAX_LINE (200) on the stack, and ' #' as well as ' ;' starting an
// inline comment, as the README's example config writes them.
void configure_inih() {
    static std::once_flag once;
    std::call_once(once, [] {
        static char inline_prefixes[] = ";#";
        ::ini_use_stack = false;
        ::ini_allow_realloc = false;
        ::ini_max_line = static_cast<int>(max_ini_line) + 3;  // + '\r', '\n', NUL
        ::ini_initial_alloc = ::ini_max_line;
        ::ini_allow_inline_comments = true;
        ::ini_inline_comment_prefixes = inline_prefixes;
    });
}

namespace {

// The sections and keys of INI text, checked for NUL bytes, long lines and duplicate keys.
Outcome<IniSections> parse_ini_sections(std::string_view text) {
    if (text.find('\0') != std::string_view::npos) return config_error("the file contains a NUL byte");
    // inih splits a line longer than its buffer into two: refuse it here, naming the line, instead.
    std::size_t line_no = 1;
    for (std::size_t start = 0; start <= text.size(); ++line_no) {
        const std::size_t nl = text.find('\n', start);
        std::size_t len = (nl == std::string_view::npos ? text.size() : nl) - start;
        if (len > 0 && text[start + len - 1] == '\r') --len;
        if (len > max_ini_line) {
            return config_error(
                fmt::format("line {} is {} bytes long; at most {} are supported", line_no, len, max_ini_line));
        }
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }

    configure_inih();
    ParseState state;
    const std::string copy(text);
    const int rc = ::ini_parse_string(copy.c_str(), on_entry, &state);
    if (!state.error.empty()) return config_error(state.error);
    if (rc != 0) return config_error(fmt::format("syntax error on line {}", rc));

    return std::move(state.sections);
}

// The typed config from the sections of one file, or of several layered ones.
Outcome<HostConfig> host_config_from(IniSections sections, const std::string &default_driver_dir) {
    HostConfig config;
    config.sections = std::move(sections);
    config.driver_dir = default_driver_dir;
    if (const auto *defaults = config.section("DEFAULT")) {
        if (auto it = defaults->find("volume_driver_dir"); it != defaults->end()) {
            // dlopen() would resolve a relative directory against the working directory: never load code from there.
            if (it->second.empty() || it->second.front() != '/') {
                return config_error(
                    fmt::format("[DEFAULT] volume_driver_dir: '{}' must be an absolute path", it->second));
            }
            config.driver_dir = it->second;
        }
        if (auto it = defaults->find("run_dir"); it != defaults->end()) {
            if (it->second.empty() || it->second.front() != '/') {
                return config_error(fmt::format("[DEFAULT] run_dir: '{}' must be an absolute path", it->second));
            }
            config.run_dir = it->second;
        }
        if (auto it = defaults->find("volume_drivers"); it != defaults->end()) {
            std::stringstream list(it->second);
            std::string item;
            while (std::getline(list, item, ',')) {
                const std::string entry = trim(item);
                if (entry.empty()) continue;
                const auto eq = entry.find('=');
                if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
                    return config_error(fmt::format(
                        "[DEFAULT] volume_drivers: '{}' is not type=driver (e.g. iscsi=iscsi_volume_driver.so)", entry));
                }
                DriverMapping mapping{trim(entry.substr(0, eq)), trim(entry.substr(eq + 1))};
                for (const auto &existing : config.drivers) {
                    if (existing.volume_type == mapping.volume_type) {
                        return config_error(fmt::format("[DEFAULT] volume_drivers maps '{}' twice", mapping.volume_type));
                    }
                }
                config.drivers.push_back(std::move(mapping));
            }
        }
    }
    if (const auto *libvirt = config.section("libvirt")) {
        if (auto e = read_libvirt_section(*libvirt, config)) return *e;
    }
    return config;
}

Outcome<IniSections> read_ini_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return config_error(fmt::format("cannot read config file {}", path));
    std::stringstream buffer;
    buffer << in.rdbuf();
    auto sections = parse_ini_sections(buffer.str());
    if (!sections) return config_error(fmt::format("{}: {}", path, sections.error().message));
    return sections;
}

}  // namespace

Outcome<HostConfig> parse_host_config(std::string_view text, const std::string &default_driver_dir) {
    auto sections = parse_ini_sections(text);
    if (!sections) return sections.error();
    return host_config_from(std::move(*sections), default_driver_dir);
}

Outcome<HostConfig> load_host_config(const std::string &path, const std::string &default_driver_dir,
                                     const std::string &extra_path) {
    auto sections = read_ini_file(path);
    if (!sections) return sections.error();
    std::string named = path;
    if (!extra_path.empty()) {
        auto extra = read_ini_file(extra_path);
        if (!extra) return extra.error();
        for (auto &[section, entries] : *extra) {
            for (auto &[key, value] : entries) (*sections)[section][key] = std::move(value);
        }
        named = fmt::format("{} (with {})", path, extra_path);
    }
    auto config = host_config_from(std::move(*sections), default_driver_dir);
    if (!config) return config_error(fmt::format("{}: {}", named, config.error().message));
    return config;
}

Outcome<std::string> resolve_driver_path(const HostConfig &config, const DriverMapping &mapping) {
    if (!mapping.location.empty() && mapping.location.front() == '/') return mapping.location;
    if (mapping.location.find('/') != std::string::npos) {
        return config_error(fmt::format("driver '{}' = '{}': give an absolute path or a bare file name",
                                        mapping.volume_type, mapping.location));
    }
    return fmt::format("{}/{}", config.driver_dir, mapping.location);
}

}  // namespace volume_host
