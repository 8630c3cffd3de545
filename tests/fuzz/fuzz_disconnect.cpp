// disconnect_volume(connection_info, device_info, flags): the two strings separated by a NUL byte, then one
// byte of flags. device_info is what a host stored, so it may have been edited or corrupted in between.
#include "fuzz_support.hpp"
#include "parsers_agree.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace ivd::fuzz;
    static FuzzDriver d = make_driver(default_config);
    const auto parts = split_input(data, size, 3);
    const char *ci = c_str_or_null(parts[0]);
    const char *device_info = c_str_or_null(parts[1]);
    const std::uint32_t flags = parts[2] && !parts[2]->empty() ? static_cast<std::uint8_t>((*parts[2])[0]) : 0;
    watch_secrets(ci, nullptr, device_info);
    check_connection_info_parsers(ci);
    check_device_info_parsers(device_info, /*null_ok=*/true);
    check_device_info_parsers(device_info, /*null_ok=*/false);

    auto result = d.driver->disconnect_volume(ci, device_info, flags);
    if (!result) check_error(result.error());
    return 0;
}
