// create(config_json): the driver's configuration, as a host hands it over (INI strings or native JSON).
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace ivd::fuzz;
    const auto parts = split_input(data, size, 1);
    watch_secrets(nullptr, nullptr, nullptr);
    ivd::Error error;
    FuzzDriver d = make_driver(c_str_or_null(parts[0]), &error);
    if (!d.driver) {
        check_error(error);
        IVD_FUZZ_CHECK(error.status == ivd::Status::config, "create() refused with a status other than config: " +
                                                                 error.message);
        IVD_FUZZ_CHECK(error.argument == "config", "create() error names argument " + error.argument);
        return 0;
    }
    // A config create() took must give a usable driver.
    auto props = d.driver->connector_properties(0);
    IVD_FUZZ_CHECK(props.ok(), props.ok() ? "" : props.error().message);
    return 0;
}
