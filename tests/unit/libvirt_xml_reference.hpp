// The pugixml-based XML writer the driver used before writing straight into a string (test oracle only).
#pragma once

#include "xml/libvirt_xml.hpp"

#include <string>

namespace ivd::xml::reference {

std::string network_disk_xml_pugi(const NetworkDiskSpec &spec);
std::string block_disk_xml_pugi(const BlockDiskSpec &spec);
std::string iscsi_secret_xml_pugi(const std::string &usage_name, const std::string &description);

}  // namespace ivd::xml::reference
