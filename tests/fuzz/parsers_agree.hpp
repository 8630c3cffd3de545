// Checks that the text readers the driver calls and the json::Value readers agree on an input (see the .cpp).
#pragma once

namespace ivd::fuzz {

void check_connection_info_parsers(const char *text);
void check_connector_parsers(const char *text);
void check_disk_info_parsers(const char *text, bool null_ok, bool dev_required);
void check_device_info_parsers(const char *text, bool null_ok);

}  // namespace ivd::fuzz
