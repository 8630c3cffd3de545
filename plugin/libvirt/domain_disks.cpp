#include "libvirt/domain_disks.hpp"

#include "libvirt/handles.hpp"

#include <libvirt/virterror.h>

#include <fmt/format.h>
#include <pugixml.hpp>

#include <cstdlib>
#include <functional>
#include <iterator>
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

Result<void> parse_domain_xml(pugi::xml_document &doc, const std::string &xml, const std::string &domain,
                              const std::string &view) {
    const pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
    if (!parsed) {
        return make_error(Status::backend, fmt::format("the {} XML of domain {} does not parse: {}", view, domain,
                                                       parsed.description()));
    }
    return {};
}

}  // namespace

Result<std::vector<SecretReference>> secret_references_in_domain_xml(const std::string &xml, const std::string &domain,
                                                                     const std::string &view) {
    pugi::xml_document doc;
    if (auto parsed = parse_domain_xml(doc, xml, domain, view); !parsed) return std::move(parsed).error();
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

// Which domains a view covers, and how their XML is read.
struct View {
    unsigned int list_flags;
    unsigned int xml_flags;
    const char *name;
};
constexpr View views[] = {
    {VIR_CONNECT_LIST_DOMAINS_ACTIVE, 0u, "live"},
    {VIR_CONNECT_LIST_DOMAINS_PERSISTENT, static_cast<unsigned int>(VIR_DOMAIN_XML_INACTIVE), "config"},
};

// Calls `each(domain name, view, xml)` for the live XML of every running domain and the persistent config of every
// defined one. libvirt filters each list, so a domain costs one call per view it is in (asking each domain for its
// state cost two more: a disconnect's reference check is this walk). A domain that vanishes meanwhile is skipped;
// any other failure ends it.
Result<void> for_each_domain_xml(Connection &connection,
                                 const std::function<Result<void>(const std::string &, const char *, const std::string &)> &each) {
    return connection.call([&](virConnectPtr conn) -> Result<void> {
        for (const View &view : views) {
            DomainArray listed;
            listed.count = virConnectListAllDomains(conn, &listed.items, view.list_flags);
            if (listed.count < 0) {
                listed.count = 0;
                return last_error(fmt::format("cannot list libvirt domains ({} view)", view.name));
            }
            for (int i = 0; i < listed.count; ++i) {
                const char *raw_name = virDomainGetName(listed.items[i]);
                const std::string name = raw_name != nullptr ? raw_name : "?";
                bool vanished = false;
                auto xml = xml_of(listed.items[i], view.xml_flags, name, vanished);
                if (!xml) return std::move(xml).error();
                if (vanished) continue;
                if (auto r = each(name, view.name, *xml); !r) return r;
            }
        }
        return {};
    });
}

// Everything `parse(xml, domain, view)` finds in every domain's XML views, in one list.
template <class T, class Parse>
Result<std::vector<T>> collect_from_domains(Connection &connection, Parse parse) {
    std::vector<T> all;
    auto r = for_each_domain_xml(connection, [&](const std::string &name, const char *view, const std::string &xml) -> Result<void> {
        auto found = parse(xml, name, view);
        if (!found) return std::move(found).error();
        all.insert(all.end(), std::make_move_iterator(found->begin()), std::make_move_iterator(found->end()));
        return {};
    });
    if (!r) return std::move(r).error();
    return all;
}

}  // namespace

Result<std::vector<SecretReference>> list_disk_secret_references(Connection &connection) {
    return collect_from_domains<SecretReference>(connection, secret_references_in_domain_xml);
}

Result<std::vector<std::string>> block_sources_in_domain_xml(const std::string &xml, const std::string &domain,
                                                             const std::string &view) {
    pugi::xml_document doc;
    if (auto parsed = parse_domain_xml(doc, xml, domain, view); !parsed) return std::move(parsed).error();
    std::vector<std::string> devices;
    for (const pugi::xml_node disk : doc.child("domain").child("devices").children("disk")) {
        if (std::string_view(disk.attribute("type").as_string()) != "block") continue;
        const std::string dev = disk.child("source").attribute("dev").as_string();
        if (!dev.empty()) devices.push_back(dev);
    }
    return devices;
}

Result<std::vector<std::string>> list_disk_block_sources(Connection &connection) {
    return collect_from_domains<std::string>(connection, block_sources_in_domain_xml);
}

}  // namespace ivd::libvirt
