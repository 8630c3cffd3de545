#include "libvirt/domain_disks.hpp"

#include "libvirt/handles.hpp"

#include <libvirt/virterror.h>

#include <fmt/format.h>
#include <pugixml.hpp>

#include <cstdlib>
#include <functional>
#include <string_view>

namespace ivd::libvirt {

namespace {

// Frees the array virConnectListAllDomains hands out.
struct DomainArray {
    virDomainPtr *items = nullptr;
    int count = 0;
    ~DomainArray() {
        for (int i = 0; i < count; ++i) {
            if (items[i] != nullptr) virDomainFree(items[i]);
        }
        free(items);  // NOLINT: allocated by libvirt with malloc
    }
};

bool domain_vanished() {
    const virErrorPtr e = virGetLastError();
    return e != nullptr && e->code == VIR_ERR_NO_DOMAIN;
}

// The XML of one view; nullopt-like empty string with ok when the domain vanished in between.
Result<std::string> xml_of(virDomainPtr dom, unsigned int flags, const std::string &name, bool &vanished) {
    char *raw = virDomainGetXMLDesc(dom, flags);
    if (raw == nullptr) {
        if (domain_vanished()) {
            vanished = true;
            return std::string();
        }
        return last_error(fmt::format("cannot read the XML of domain {}", name));
    }
    std::string xml(raw);
    free(raw);  // NOLINT: allocated by libvirt with malloc
    return xml;
}

}  // namespace

Result<std::vector<SecretReference>> secret_references_in_domain_xml(const std::string &xml, const std::string &domain,
                                                                     const std::string &view) {
    pugi::xml_document doc;
    const pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
    if (!parsed) {
        return make_error(Status::backend, fmt::format("the {} XML of domain {} does not parse: {}", view, domain,
                                                       parsed.description()));
    }
    std::vector<SecretReference> refs;
    for (const pugi::xml_node disk : doc.child("domain").child("devices").children("disk")) {
        const std::string dev = disk.child("target").attribute("dev").as_string();
        // <auth> inside <source> (libvirt >= 3.9) or directly under <disk> (older form); both are valid.
        for (const pugi::xml_node auth : {disk.child("source").child("auth"), disk.child("auth")}) {
            for (const pugi::xml_node secret : auth.children("secret")) {
                refs.push_back(SecretReference{domain, view, dev, secret.attribute("usage").as_string(),
                                               secret.attribute("uuid").as_string()});
            }
        }
    }
    return refs;
}

namespace {

// Calls `each(domain name, view, xml)` for the live XML of every running domain and the persistent config of every
// defined one. A domain that vanishes meanwhile is skipped; any other failure ends it.
Result<void> for_each_domain_xml(Connection &connection,
                                 const std::function<Result<void>(const std::string &, const char *, const std::string &)> &each) {
    return connection.call([&](virConnectPtr conn) -> Result<void> {
        DomainArray all;
        all.count = virConnectListAllDomains(conn, &all.items, 0);  // 0: active and inactive, all kinds
        if (all.count < 0) {
            all.count = 0;
            return last_error("cannot list libvirt domains");
        }
        for (int i = 0; i < all.count; ++i) {
            virDomainPtr dom = all.items[i];
            const char *raw_name = virDomainGetName(dom);
            const std::string name = raw_name != nullptr ? raw_name : "?";
            const int active = virDomainIsActive(dom);
            const int persistent = virDomainIsPersistent(dom);
            if (active < 0 || persistent < 0) {
                if (domain_vanished()) continue;
                return last_error(fmt::format("cannot read the state of domain {}", name));
            }
            std::vector<std::pair<unsigned int, const char *>> views;
            if (active == 1) views.emplace_back(0u, "live");
            if (persistent == 1) views.emplace_back(static_cast<unsigned int>(VIR_DOMAIN_XML_INACTIVE), "config");
            for (const auto &[flags, view] : views) {
                bool vanished = false;
                auto xml = xml_of(dom, flags, name, vanished);
                if (!xml) return std::move(xml).error();
                if (vanished) break;
                if (auto r = each(name, view, *xml); !r) return r;
            }
        }
        return {};
    });
}

}  // namespace

Result<std::vector<SecretReference>> list_disk_secret_references(Connection &connection) {
    std::vector<SecretReference> refs;
    auto r = for_each_domain_xml(connection, [&](const std::string &name, const char *view, const std::string &xml) -> Result<void> {
        auto found = secret_references_in_domain_xml(xml, name, view);
        if (!found) return std::move(found).error();
        refs.insert(refs.end(), found->begin(), found->end());
        return {};
    });
    if (!r) return std::move(r).error();
    return refs;
}

Result<std::vector<std::string>> block_sources_in_domain_xml(const std::string &xml, const std::string &domain,
                                                             const std::string &view) {
    pugi::xml_document doc;
    const pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
    if (!parsed) {
        return make_error(Status::backend, fmt::format("the {} XML of domain {} does not parse: {}", view, domain,
                                                       parsed.description()));
    }
    std::vector<std::string> devices;
    for (const pugi::xml_node disk : doc.child("domain").child("devices").children("disk")) {
        if (std::string_view(disk.attribute("type").as_string()) != "block") continue;
        const std::string dev = disk.child("source").attribute("dev").as_string();
        if (!dev.empty()) devices.push_back(dev);
    }
    return devices;
}

Result<std::vector<std::string>> list_disk_block_sources(Connection &connection) {
    std::vector<std::string> devices;
    auto r = for_each_domain_xml(connection, [&](const std::string &name, const char *view, const std::string &xml) -> Result<void> {
        auto found = block_sources_in_domain_xml(xml, name, view);
        if (!found) return std::move(found).error();
        devices.insert(devices.end(), found->begin(), found->end());
        return {};
    });
    if (!r) return std::move(r).error();
    return devices;
}

}  // namespace ivd::libvirt
