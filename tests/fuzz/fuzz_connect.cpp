// connect_volume(connection_info, connector, disk_info): input is the three strings separated by NUL bytes.
// A successful connect must emit clean device_info and be undone completely by disconnect with it; disk_config
// on that device_info gives the same <disk> (also covers disk_config's disk_info parsing).
#include "fuzz_support.hpp"

#include "core/json_output.hpp"
#include "parsers_agree.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace ivd::fuzz;
    static FuzzDriver d = make_driver(default_config);  // one handle, as a host keeps it
    const auto parts = split_input(data, size, 3);
    const char *ci = c_str_or_null(parts[0]);
    const char *connector = c_str_or_null(parts[1]);
    const char *disk = c_str_or_null(parts[2]);
    watch_secrets(ci, connector, disk);
    check_connection_info_parsers(ci);
    check_connector_parsers(connector);
    check_disk_info_parsers(disk, /*null_ok=*/true, /*dev_required=*/true);
    check_disk_info_parsers(disk, /*null_ok=*/true, /*dev_required=*/false);
    check_disk_info_parsers(disk, /*null_ok=*/false, /*dev_required=*/true);

    auto result = d.driver->connect_volume(ci, connector, disk, 0);
    static const bool verbose = std::getenv("IVD_FUZZ_VERBOSE") != nullptr;  // to see what seeds reach
    if (verbose) std::fprintf(stderr, "  -> %s\n", result ? "connected" : result.error().message.c_str());
    if (!result) {
        check_error(result.error());
        IVD_FUZZ_CHECK(d.secrets->size() == 0, "a failed connect left a secret behind: " + result.error().message);
        return 0;
    }
    const Json::Value info = check_device_info(*result, ci);
    check_device_info_parsers(result->c_str(), /*null_ok=*/false);

    // disk_config (ABI v2) on what connect returned, for the same disk_info: pure, and the same <disk> connect
    // wrote; a disk_info it refuses must name a field.
    if (disk != nullptr) {
        auto xml = d.driver->disk_config(ci, result->c_str(), disk, 0);
        if (!xml) {
            check_error(xml.error());
        } else {
            IVD_FUZZ_CHECK(xml->rfind("<disk ", 0) == 0, "disk_config did not return a <disk>");
            IVD_FUZZ_CHECK(!info.isMember("disk_xml") || info["disk_xml"].asString() == *xml,
                           "disk_config differs from the disk_xml connect returned");
        }
    }

    // Connecting again returns the same result but for the attachment id: every connect of a CHAP volume is an
    // attachment of its own, and the secret lives until the last one is disconnected.
    auto again = d.driver->connect_volume(ci, connector, disk, 0);
    IVD_FUZZ_CHECK(again.ok(), again.ok() ? "" : "a second connect failed: " + again.error().message);
    Json::Value first = info, second = check_device_info(*again, ci);
    first.removeMember("attachment_id");
    second.removeMember("attachment_id");
    IVD_FUZZ_CHECK(first == second, "a second connect differs");
    const std::size_t secrets = d.secrets->size();

    auto undone = d.driver->disconnect_volume(ci, again->c_str(), 0);
    IVD_FUZZ_CHECK(undone.ok(), undone.ok() ? "" : undone.error().message);
    IVD_FUZZ_CHECK(d.secrets->size() == secrets, "disconnecting one attachment removed the other's secret");
    undone = d.driver->disconnect_volume(ci, result->c_str(), 0);
    IVD_FUZZ_CHECK(undone.ok(), undone.ok() ? "" : undone.error().message);
    IVD_FUZZ_CHECK(d.secrets->size() == 0,
                   fmt::format("disconnect left {} secret(s) behind (usage {})", d.secrets->size(),
                               info.get("secret_usage", "").asString()));
    return 0;
}
