// The libvirt XML writer as it was before it wrote straight into a string: pugixml's tree and its raw,
// single-quoted save. Kept as the oracle that the direct writer's bytes are compared with (libvirt_xml_test).
#include "libvirt_xml_reference.hpp"

#include <pugixml.hpp>

#include <fmt/format.h>

namespace ivd::xml::reference {

namespace {

using request::GuestDiskOptions;

// Straight into a string: no stream machinery on the per-attach path. Single-quoted attributes, as libvirt
// writes them (and nothing to escape when the XML travels inside JSON).
class StringWriter final : public pugi::xml_writer {
public:
    void write(const void *data, std::size_t size) override { out.append(static_cast<const char *>(data), size); }
    std::string out;
};

std::string serialize(const pugi::xml_document &doc) {
    StringWriter writer;
    writer.out.reserve(1024);
    doc.save(writer, "", pugi::format_raw | pugi::format_no_declaration | pugi::format_attribute_single_quote,
             pugi::encoding_utf8);
    return std::move(writer.out);
}

// <driver name='qemu' type='raw' cache=... io=... discard=...>: shared by both disk kinds.
void add_driver(pugi::xml_node disk, const GuestDiskOptions &o) {
    auto driver = disk.append_child("driver");
    driver.append_attribute("name") = "qemu";
    driver.append_attribute("type") = "raw";
    if (!o.cache.empty() && o.cache != "default") driver.append_attribute("cache") = o.cache.c_str();
    if (!o.io.empty() && o.io != "default") driver.append_attribute("io") = o.io.c_str();
    if (o.discard) driver.append_attribute("discard") = "unmap";
}

// The guest-facing tail shared by both disk kinds: target, iotune, serial, readonly.
void add_guest_side(pugi::xml_node disk, const GuestDiskOptions &o) {
    auto target = disk.append_child("target");
    target.append_attribute("dev") = o.guest.dev.c_str();
    target.append_attribute("bus") = request::bus_name(o.guest.bus);
    if (o.guest.boot_index) disk.append_child("boot").append_attribute("order") = static_cast<long long>(*o.guest.boot_index);
    if (o.shareable) disk.append_child("shareable");
    if (o.logical_block_size != 0 || o.physical_block_size != 0) {
        auto blockio = disk.append_child("blockio");
        if (o.logical_block_size != 0) blockio.append_attribute("logical_block_size") = static_cast<long long>(o.logical_block_size);
        if (o.physical_block_size != 0) blockio.append_attribute("physical_block_size") = static_cast<long long>(o.physical_block_size);
    }
    if (o.guest.unit) {
        // A drive address on controller 0, as Nova writes it for a chosen unit.
        auto address = disk.append_child("address");
        address.append_attribute("type") = "drive";
        address.append_attribute("controller") = 0;
        address.append_attribute("bus") = 0;
        address.append_attribute("target") = 0;
        address.append_attribute("unit") = static_cast<long long>(*o.guest.unit);
    }
    if (!o.qos.empty()) {
        auto iotune = disk.append_child("iotune");
        for (const auto &[name, value] : o.qos) {
            iotune.append_child(name.c_str()).text().set(static_cast<unsigned long long>(value));
        }
    }
    // libvirt refuses <serial> on device='lun': the guest reads the LU's own serial.
    if (!o.serial.empty() && !o.guest.lun) disk.append_child("serial").text().set(o.serial.c_str());
    if (o.read_only) disk.append_child("readonly");
}

}  // namespace

std::string network_disk_xml_pugi(const NetworkDiskSpec &spec) {
    pugi::xml_document doc;
    auto disk = doc.append_child("disk");
    disk.append_attribute("type") = "network";
    disk.append_attribute("device") = spec.options.guest.lun ? "lun" : "disk";
    add_driver(disk, spec.options);

    // libvirt before 3.9 only knows <auth> under <disk> (where it also formats it, before <source>).
    const auto add_auth = [&spec](pugi::xml_node parent) {
        auto auth = parent.append_child("auth");
        auth.append_attribute("username") = spec.auth->username.c_str();
        auto secret = auth.append_child("secret");
        secret.append_attribute("type") = "iscsi";
        secret.append_attribute("usage") = spec.auth->secret_usage.c_str();
    };
    if (spec.auth && !spec.auth_in_source) add_auth(disk);
    auto source = disk.append_child("source");
    source.append_attribute("protocol") = "iscsi";
    source.append_attribute("name") = fmt::format("{}/{}", spec.target.iqn, spec.target.scsi_lun()).c_str();
    auto host = source.append_child("host");
    host.append_attribute("name") = spec.target.portal.host.c_str();  // IPv6 without brackets, as libvirt wants
    host.append_attribute("port") = spec.target.portal.port;
    if (spec.auth && spec.auth_in_source) add_auth(source);
    if (!spec.initiator.empty() && spec.emit_initiator) {
        source.append_child("initiator").append_child("iqn").append_attribute("name") = spec.initiator.c_str();
    }
    add_guest_side(disk, spec.options);
    return serialize(doc);
}

std::string block_disk_xml_pugi(const BlockDiskSpec &spec) {
    pugi::xml_document doc;
    auto disk = doc.append_child("disk");
    disk.append_attribute("type") = "block";
    disk.append_attribute("device") = spec.options.guest.lun ? "lun" : "disk";
    add_driver(disk, spec.options);
    disk.append_child("source").append_attribute("dev") = spec.device_path.c_str();
    add_guest_side(disk, spec.options);
    return serialize(doc);
}

std::string iscsi_secret_xml_pugi(const std::string &usage_name, const std::string &description) {
    pugi::xml_document doc;
    auto secret = doc.append_child("secret");
    secret.append_attribute("ephemeral") = "no";
    secret.append_attribute("private") = "yes";  // libvirt never hands the value back out
    if (!description.empty()) secret.append_child("description").text().set(description.c_str());
    auto usage = secret.append_child("usage");
    usage.append_attribute("type") = "iscsi";
    usage.append_child("target").text().set(usage_name.c_str());
    return serialize(doc);
}

}  // namespace ivd::xml::reference
