#include "bench_plugin.hpp"

#include "bench_common.hpp"
#include "bench_libvirt.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <stdexcept>

namespace ivd::bench {

std::string connection_info(const testing::TgtdPortal &portal, const std::string &iqn, int lun,
                            const std::string &volume_id, bool chap) {
    Json::Value ci(Json::objectValue);
    ci["driver_volume_type"] = "iscsi";
    Json::Value &d = ci["data"];
    d["target_portal"] = portal.to_string();
    d["target_iqn"] = iqn;
    d["target_lun"] = lun;
    d["volume_id"] = volume_id;
    d["access_mode"] = "rw";
    if (chap) {
        d["auth_method"] = "CHAP";
        d["auth_username"] = chap_user;
        d["auth_password"] = chap_password;
    }
    return to_json(ci);
}

Plugin::Plugin(bool ephemeral_secrets, bool probe_portals) {
    const char *path = std::getenv("IVD_BENCH_MODULE");
    host_ = vd_host_table{sizeof(vd_host_table), nullptr, nullptr};
    auto m = volume_host::LoadedModule::load(path != nullptr ? path : IVD_MODULE_PATH, host_);
    if (!m) throw std::runtime_error("load: " + m.error().message);
    const std::string config = fmt::format(
        R"({{"path":"network","initiator_name":"{}","disk_cache":"none","disk_io":"native","libvirt_ephemeral_secrets":"{}",)"
        R"("probe_portals":"{}"}})",
        bench_initiator, ephemeral_secrets ? "true" : "false", probe_portals ? "true" : "false");
    auto d = volume_host::DriverInstance::create(*m, config);
    if (!d) throw std::runtime_error("create: " + d.error().message);
    driver_ = std::move(*d);
    char *out = nullptr;
    if (table().connector_properties(driver_->handle(), 0, &out) != VD_OK) throw std::runtime_error(driver_->last_error());
    connector_ = volume_host::take_driver_string(table(), out);
}

std::string Plugin::connect(const Volume &v) const {
    char *out = nullptr;
    const std::string disk = fmt::format(R"({{"bus":"scsi","dev":"{}"}})", v.dev);
    if (table().connect_volume(driver_->handle(), v.ci.c_str(), connector_.c_str(), disk.c_str(), 0, &out) != VD_OK) {
        throw std::runtime_error("connect_volume: " + driver_->last_error());
    }
    return volume_host::take_driver_string(table(), out);
}

void Plugin::disconnect(const Volume &v) const {
    if (table().disconnect_volume(driver_->handle(), v.ci.c_str(), v.device_info.c_str(), 0) != VD_OK) {
        throw std::runtime_error("disconnect_volume: " + driver_->last_error());
    }
}

std::string disk_xml_of(const std::string &device_info) { return parse_json(device_info)["disk_xml"].asString(); }

void attach_volume(const Plugin &plugin, virDomainPtr dom, Volume &v, bool use_plugin) {
    if (use_plugin) {
        v.device_info = plugin.connect(v);
        v.disk_xml = disk_xml_of(v.device_info);
        attach_or_throw(dom, v.disk_xml);
    } else {
        attach_or_throw(dom, v.floor_xml);
    }
}

void detach_volume(const Plugin &plugin, virDomainPtr dom, const Volume &v, bool use_plugin) {
    detach_or_throw(dom, use_plugin ? v.disk_xml : v.floor_xml);
    if (use_plugin) plugin.disconnect(v);
}

}  // namespace ivd::bench
