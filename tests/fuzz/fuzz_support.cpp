#include "fuzz_support.hpp"

#include "core/json_output.hpp"
#include "net_disk/network_disk_path.hpp"
#include "xml/libvirt_xml.hpp"

#include <json/reader.h>
#include <pugixml.hpp>

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>

namespace ivd::fuzz {

void fail(const char *what, const std::string &detail) {
    std::fprintf(stderr, "IVD FUZZ INVARIANT FAILED: %s\n  %s\n", what, detail.c_str());
    std::abort();
}

std::vector<std::optional<std::string>> split_input(const std::uint8_t *data, std::size_t size, std::size_t parts) {
    std::vector<std::optional<std::string>> out(parts);
    const char *p = reinterpret_cast<const char *>(data);
    std::size_t start = 0;
    for (std::size_t i = 0; i < parts && start <= size; ++i) {
        const void *nul = i + 1 == parts ? nullptr : std::memchr(p + start, '\0', size - start);
        // The last part takes the rest; the ABI stops at its first NUL anyway.
        const std::size_t stop = nul == nullptr ? size : static_cast<std::size_t>(static_cast<const char *>(nul) - p);
        out[i] = std::string(p + start, p + stop);
        if (nul == nullptr) break;
        start = stop + 1;
    }
    return out;
}

namespace {

thread_local std::vector<std::string> watched;

void log_sink(void *, std::int32_t level, const char *component, const char *message) {
    IVD_FUZZ_CHECK(level >= 1 && level <= 4, fmt::format("log level {}", level));
    IVD_FUZZ_CHECK(component != nullptr && message != nullptr, "null log strings");
    check_no_secret(message, "a log message");
}

// Deterministic probe outcomes from the target itself, so inputs steer through every branch of the choice.
std::vector<iscsi::ProbeResult> fake_probe(const std::vector<request::Target> &targets, const iscsi::ProbeOptions &options) {
    IVD_FUZZ_CHECK(!options.initiator.empty(), "probe without an initiator");
    std::vector<iscsi::ProbeResult> out;
    for (const auto &t : targets) {
        const std::size_t h = std::hash<std::string>{}(t.portal.to_string() + t.iqn) + static_cast<std::size_t>(t.lun);
        iscsi::ProbeResult r;
        r.outcome = static_cast<iscsi::ProbeOutcome>(h % 7);
        if (r.outcome != iscsi::ProbeOutcome::healthy) r.detail = fmt::format("fake: {} refused", t.iqn);
        r.elapsed = std::chrono::microseconds(h % 5000);
        r.size_bytes = 1 << 30;
        r.block_size = 512;
        out.push_back(std::move(r));
    }
    return out;
}

// The host path's seam, faked: a block disk over a fixed device, built by the real XML writer.
class FakeHostPath final : public AttachPathImpl {
public:
    explicit FakeHostPath(request::GuestDiskConfig config) : config_(std::move(config)) {}
    Result<request::DeviceInfo> connect(const ConnectContext &c) override {
        xml::BlockDiskSpec spec;
        spec.device_path = c.decision.multipath ? "/dev/dm-0" : "/dev/sdc";
        spec.options = request::guest_disk_options(c.volume, c.disk, config_);
        request::DeviceInfo info;
        info.device.emplace<request::BlockDevice>().path = spec.device_path;
        info.guest = request::DeviceGuest{c.disk, xml::block_disk_xml(spec)};
        return info;
    }
    Result<void> disconnect(const request::VolumeRequest &, const request::DeviceInfo *, DisconnectOptions) override { return {}; }

private:
    request::GuestDiskConfig config_;
};

}  // namespace

FuzzDriver make_driver(const char *config_json, Error *error) {
    FuzzDriver out;
    out.secrets = std::make_shared<libvirt::MemorySecretStore>();
    // Paths need the parsed config; parse it the way create() will (create() validates it again).
    DriverParts parts;
    HostFacts facts;
    facts.capabilities.qemu_iscsi = true;
    facts.capabilities.host_iscsi = true;
    facts.capabilities.multipath = true;
    facts.initiator = "iqn.1993-08.org.debian:01:fuzzhost";
    facts.initiator_source = "fuzz";
    facts.host_name = "fuzz-host";
    facts.ip = "192.0.2.10";
    parts.facts = facts;
    // The real network path; its config is a default one (probing on): what matters is the input it sees.
    request::NetDiskConfig path_config;
    path_config.probe_timeout = std::chrono::milliseconds(100);
    parts.network = std::make_unique<net_disk::NetworkDiskPath>(path_config, Logger(log_sink, nullptr), out.secrets,
                                                                 fake_probe);
    parts.host = std::make_unique<FakeHostPath>(path_config);
    auto d = Driver::create(config_json, Logger(log_sink, nullptr), std::move(parts));
    if (!d) {
        if (error != nullptr) *error = d.error();
        return out;
    }
    out.driver = std::move(d).value();
    return out;
}

namespace {

Json::Value lenient_parse(const char *text) {
    Json::Value v;
    if (text == nullptr) return v;
    Json::CharReaderBuilder b;
    b.settings_["stackLimit"] = 64;
    std::string errors;
    const std::unique_ptr<Json::CharReader> r(b.newCharReader());
    try {
        if (!r->parse(text, text + std::strlen(text), &v, &errors)) return Json::Value();
    } catch (...) {
        return Json::Value();
    }
    return v;
}

void collect_strings(const Json::Value &v, std::vector<std::string> &out, std::set<const Json::Value *> &skip) {
    if (skip.count(&v) != 0) return;
    if (v.isString()) {
        out.push_back(v.asString());
    } else if (v.isObject()) {
        for (const auto &name : v.getMemberNames()) {
            out.push_back(name);
            collect_strings(v[name], out, skip);
        }
    } else if (v.isArray()) {
        for (const auto &e : v) collect_strings(e, out, skip);
    }
}

}  // namespace

void watch_secrets(const char *connection_info, const char *connector, const char *disk_info) {
    watched.clear();
    const Json::Value ci = lenient_parse(connection_info);
    if (!ci.isObject() || !ci["data"].isObject()) return;
    const Json::Value &data = ci["data"];
    std::set<const Json::Value *> password_nodes;
    std::vector<std::string> passwords;
    for (const char *key : {"auth_password", "discovery_auth_password"}) {
        const Json::Value *p = data.find(key, key + std::strlen(key));
        if (p != nullptr && p->isString()) {
            password_nodes.insert(p);
            passwords.push_back(p->asString());
        }
    }
    std::vector<std::string> others;
    collect_strings(ci, others, password_nodes);
    collect_strings(lenient_parse(connector), others, password_nodes);
    collect_strings(lenient_parse(disk_info), others, password_nodes);
    for (const auto &pw : passwords) {
        // A short or plain password can be a substring of the driver's own words ("connection_info "); one with
        // a character the driver never writes itself can only be in an output if it leaked.
        if (pw.size() < 8 || pw.find_first_of("#$%!@^*~?|") == std::string::npos) continue;
        bool elsewhere = false;
        for (const auto &o : others) elsewhere = elsewhere || o.find(pw) != std::string::npos;
        if (!elsewhere) watched.push_back(pw);
    }
}

void check_no_secret(std::string_view text, const char *where) {
    for (const auto &pw : watched) {
        IVD_FUZZ_CHECK(text.find(pw) == std::string_view::npos, fmt::format("a CHAP password appears in {}", where));
    }
}

void check_error(const Error &error) {
    const auto s = static_cast<int>(error.status);
    IVD_FUZZ_CHECK(s >= 1 && s <= 13, fmt::format("status {} for: {}", s, error.message));
    IVD_FUZZ_CHECK(error.status != Status::internal, "internal error: " + error.message);
    IVD_FUZZ_CHECK(!error.message.empty(), "an error without a message");
    check_no_secret(error.message, "an error message");
    check_no_secret(to_json(error_to_json(error)), "the error JSON");
}

namespace {

// Which attributes each element may carry; anything else in disk_xml is injected markup.
const std::map<std::string, std::set<std::string>> &allowed_attributes() {
    static const std::map<std::string, std::set<std::string>> m = {
        {"disk", {"type", "device"}},
        {"disk/driver", {"name", "type", "cache", "io", "discard"}},
        {"disk/source", {"protocol", "name", "dev"}},
        {"disk/source/host", {"name", "port"}},
        {"disk/source/auth", {"username"}},
        {"disk/source/auth/secret", {"type", "usage"}},
        {"disk/source/initiator", {}},
        {"disk/source/initiator/iqn", {"name"}},
        {"disk/target", {"dev", "bus"}},
        {"disk/iotune", {}},
        {"disk/serial", {}},
        {"disk/readonly", {}},
    };
    return m;
}

const std::set<std::string> qos_elements = {
    "total_bytes_sec",     "read_bytes_sec",     "write_bytes_sec",     "total_iops_sec",
    "read_iops_sec",       "write_iops_sec",     "total_bytes_sec_max", "read_bytes_sec_max",
    "write_bytes_sec_max", "total_iops_sec_max", "read_iops_sec_max",   "write_iops_sec_max",
    "size_iops_sec"};

// XML 1.0 characters only (pugixml writes anything; libvirt's libxml2 refuses the rest).
bool xml_chars_ok(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
        if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
            (static_cast<unsigned char>(s[i + 2]) == 0xBE || static_cast<unsigned char>(s[i + 2]) == 0xBF)) {
            return false;  // U+FFFE, U+FFFF
        }
    }
    return true;
}

void check_node(const pugi::xml_node &node, const std::string &path, const std::string &xml) {
    for (const auto &attr : node.attributes()) {
        check_no_secret(attr.value(), "disk_xml");
        IVD_FUZZ_CHECK(xml_chars_ok(attr.value()), fmt::format("a non-XML character in {}@{}", path, attr.name()));
        if (path.rfind("disk/iotune/", 0) == 0) fail("attribute on an iotune element", xml);
        const auto it = allowed_attributes().find(path);
        IVD_FUZZ_CHECK(it != allowed_attributes().end() && it->second.count(attr.name()) != 0,
                       fmt::format("unexpected attribute {} on {} in {}", attr.name(), path, xml));
    }
    for (const auto &child : node.children()) {
        if (child.type() == pugi::node_pcdata) {
            const bool text_ok = path == "disk/serial" || path.rfind("disk/iotune/", 0) == 0;
            IVD_FUZZ_CHECK(text_ok, fmt::format("text inside {} in {}", path, xml));
            check_no_secret(child.value(), "disk_xml");
            IVD_FUZZ_CHECK(xml_chars_ok(child.value()), "a non-XML character in the text of " + path);
            continue;
        }
        IVD_FUZZ_CHECK(child.type() == pugi::node_element, fmt::format("non-element node under {} in {}", path, xml));
        const std::string child_path = path + "/" + child.name();
        if (path == "disk/iotune") {
            IVD_FUZZ_CHECK(qos_elements.count(child.name()) != 0, "unexpected iotune element in " + xml);
            const std::string text = child.text().get();
            IVD_FUZZ_CHECK(!text.empty() && text.find_first_not_of("0123456789") == std::string::npos,
                           "iotune value is not a number in " + xml);
        } else {
            IVD_FUZZ_CHECK(allowed_attributes().count(child_path) != 0,
                           fmt::format("unexpected element {} in {}", child_path, xml));
        }
        check_node(child, child_path, xml);
    }
}

std::string str(const Json::Value &v, const char *key) {
    const Json::Value *m = v.find(key, key + std::strlen(key));
    return m != nullptr && m->isString() ? m->asString() : std::string();
}

// Every input string a target value may have come from.
std::set<std::string> input_strings(const Json::Value &data, const char *single, const char *list) {
    std::set<std::string> out;
    if (data[single].isString()) out.insert(data[single].asString());
    if (data[list].isArray()) {
        for (const auto &e : data[list]) {
            if (e.isString()) out.insert(e.asString());
        }
    }
    return out;
}

}  // namespace

Json::Value check_device_info(const std::string &device_info, const char *connection_info) {
    check_no_secret(device_info, "device_info");
    Json::Value info;
    {
        Json::CharReaderBuilder b;
        Json::CharReaderBuilder::strictMode(&b.settings_);
        std::string errors;
        const std::unique_ptr<Json::CharReader> r(b.newCharReader());
        IVD_FUZZ_CHECK(r->parse(device_info.data(), device_info.data() + device_info.size(), &info, &errors),
                       "device_info is not strict JSON: " + errors);
    }
    IVD_FUZZ_CHECK(info.isObject(), "device_info is not an object");
    const std::string type = str(info, "type");
    IVD_FUZZ_CHECK(type == "network" || type == "block", "device_info type " + type);
    const std::string xml = str(info, "disk_xml");
    pugi::xml_document doc;
    const auto parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default | pugi::parse_ws_pcdata_single,
                                        pugi::encoding_utf8);
    IVD_FUZZ_CHECK(parsed, fmt::format("disk_xml does not parse ({}): {}", parsed.description(), xml));
    std::size_t roots = 0;
    for (const auto &n : doc.children()) {
        IVD_FUZZ_CHECK(n.type() == pugi::node_element, "a non-element at the top of disk_xml: " + xml);
        ++roots;
    }
    IVD_FUZZ_CHECK(roots == 1, "disk_xml has more than one root: " + xml);
    const pugi::xml_node disk = doc.child("disk");
    IVD_FUZZ_CHECK(disk, "disk_xml root is not <disk>: " + xml);
    check_node(disk, "disk", xml);
    IVD_FUZZ_CHECK(type == disk.attribute("type").value(), "device_info type differs from disk_xml: " + xml);

    // Values agree with device_info...
    const pugi::xml_node target = disk.child("target");
    IVD_FUZZ_CHECK(str(info, "dev") == target.attribute("dev").value(), "target dev differs: " + xml);
    IVD_FUZZ_CHECK(str(info, "bus") == target.attribute("bus").value(), "target bus differs: " + xml);
    const Json::Value ci = lenient_parse(connection_info);
    const Json::Value &data = ci["data"];
    IVD_FUZZ_CHECK(str(info, "volume_id") == disk.child("serial").text().get(), "serial differs: " + xml);
    // ...and with the input, read independently of the driver's parser.
    if (data.isObject() && data["volume_id"].isString()) {
        IVD_FUZZ_CHECK(data["volume_id"].asString() == disk.child("serial").text().get(), "serial not the input's: " + xml);
    }
    if (type == "network") {
        const pugi::xml_node source = disk.child("source");
        const std::string name = source.attribute("name").value();
        IVD_FUZZ_CHECK(name == fmt::format("{}/{}", str(info, "target_iqn"), info["target_lun"].asInt64()),
                       "source name differs: " + xml);
        IVD_FUZZ_CHECK(input_strings(data, "target_iqn", "target_iqns").count(str(info, "target_iqn")) != 0,
                       "target_iqn is not one of the input's: " + str(info, "target_iqn"));
        const std::string portal = str(info, "portal");
        const pugi::xml_node host = source.child("host");
        const std::string host_name = host.attribute("name").value();
        const std::string expected =
            host_name.find(':') != std::string::npos ? fmt::format("[{}]:{}", host_name, host.attribute("port").value())
                                                     : fmt::format("{}:{}", host_name, host.attribute("port").value());
        IVD_FUZZ_CHECK(portal == expected, fmt::format("portal {} differs from <host> {}", portal, expected));
        IVD_FUZZ_CHECK(str(info, "auth_username") == source.child("auth").attribute("username").value(),
                       "auth username differs: " + xml);
        if (data.isObject() && data["auth_username"].isString() && source.child("auth")) {
            IVD_FUZZ_CHECK(data["auth_username"].asString() == source.child("auth").attribute("username").value(),
                           "auth username not the input's: " + xml);
        }
        IVD_FUZZ_CHECK(str(info, "secret_usage") == source.child("auth").child("secret").attribute("usage").value(),
                       "secret usage differs: " + xml);
    }
    return info;
}

}  // namespace ivd::fuzz
