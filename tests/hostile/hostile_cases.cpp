// The hostile input table: malformed and malicious connection_info, connector, disk_info, device_info and flags,
// grouped by what they attack (portals, identifiers, CHAP, document shape, values, the other arguments).
#include "hostile_cases.hpp"

#include <json/json.h>

namespace ivd::hostile {

namespace {

std::string quoted(const std::string &s) {  // a JSON string literal, escaping what must be escaped
    Json::StreamWriterBuilder b;
    b["indentation"] = "";
    b["emitUTF8"] = true;
    return Json::writeString(b, Json::Value(s));
}

// connection_info with raw JSON members in data, so cases can write what no serializer would (duplicates, NaN).
std::string ci_raw(const std::string &data_members) {
    return R"({"driver_volume_type":"iscsi","data":{)" + data_members + "}}";
}
std::string ci(const std::string &portal_json, const std::string &iqn_json, const std::string &lun_json,
               const std::string &extra = R"("volume_id":"vol-1")") {
    return ci_raw(R"("target_portal":)" + portal_json + R"(,"target_iqn":)" + iqn_json + R"(,"target_lun":)" +
                  lun_json + (extra.empty() ? "" : "," + extra));
}
std::string base_with(const std::string &extra) { return ci(R"("192.0.2.1:3260")", quoted(iqn), "1", extra); }
std::string with_portal(const std::string &portal) { return ci(quoted(portal), quoted(iqn), "1"); }
std::string with_iqn(const std::string &name) { return ci(R"("192.0.2.1:3260")", quoted(name), "1"); }
std::string with_lun(const std::string &lun_json) { return ci(R"("192.0.2.1:3260")", quoted(iqn), lun_json); }
std::string with_volume_id(const std::string &id) {
    return ci(R"("192.0.2.1:3260")", quoted(iqn), "1", R"("volume_id":)" + quoted(id));
}
std::string chap(const std::string &user_json, const std::string &password_json = R"("hostile#secret!1")") {
    return base_with(R"("volume_id":"vol-1","auth_method":"CHAP","auth_username":)" + user_json +
                     R"(,"auth_password":)" + password_json);
}
std::string nested(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += R"({"a":)";
    s += "1";
    for (int i = 0; i < depth; ++i) s += "}";
    return s;
}

}  // namespace

const std::string good_ci = base_with(R"("volume_id":"vol-1")");
const std::string good_connector = std::string(R"({"initiator":")") + initiator + R"(","multipath":false})";
const std::string good_disk = R"({"bus":"scsi","dev":"sdb"})";

namespace {

Case accept(std::string name, std::string ci_text, Accepted want) {
    Case c;
    c.name = std::move(name);
    c.connection_info = std::move(ci_text);
    c.accepted = std::move(want);
    return c;
}
Case reject(std::string name, std::string ci_text, std::string field, std::string argument = "connection_info",
            std::string code = "invalid_argument") {
    Case c;
    c.name = std::move(name);
    c.connection_info = std::move(ci_text);
    c.rejected = Rejected{std::move(code), std::move(argument), std::move(field)};
    return c;
}
Case reject_connector(std::string name, std::optional<std::string> connector, std::string field) {
    Case c = reject(std::move(name), good_ci, std::move(field), "connector");
    c.second = std::move(connector);
    return c;
}
Case reject_disk(std::string name, std::optional<std::string> disk, std::string field) {
    Case c = reject(std::move(name), good_ci, std::move(field), "disk_info");
    c.disk_info = std::move(disk);
    return c;
}
Case reject_disconnect(std::string name, std::optional<std::string> device_info, std::string field,
                       std::string argument = "device_info", std::uint32_t flags = 0) {
    Case c = reject(std::move(name), good_ci, std::move(field), std::move(argument));
    c.op = Op::disconnect;
    c.second = std::move(device_info);
    c.flags = flags;
    return c;
}

const std::string mb(1u << 20, 'a');
const std::string half_mb(1u << 19, 'a');

const Accepted base{.host = "192.0.2.1"};

// The baseline, and portals.
std::vector<Case> portal_cases() {
    return {
        accept("baseline", good_ci, base),
        // Portals
        accept("ipv6_bracketed_with_port", with_portal("[2001:db8::1]:3261"), {.host = "2001:db8::1", .port = 3261}),
        accept("ipv6_bracketed_without_port", with_portal("[2001:db8::1]"), {.host = "2001:db8::1"}),
        accept("ipv6_bare_is_an_address_without_port", with_portal("2001:db8::1"), {.host = "2001:db8::1"}),
        // Without brackets a trailing ":3260" is read as the last group of the address, never as a port.
        accept("ipv6_bare_with_port_is_one_address", with_portal("2001:db8::1:3260"), {.host = "2001:db8::1:3260"}),
        accept("host_name_without_port", with_portal("storage.example.com"), {.host = "storage.example.com"}),
        accept("fully_qualified_host_name", with_portal("storage.example.com.:3262"),
               {.host = "storage.example.com.", .port = 3262}),
        accept("port_65535", with_portal("192.0.2.1:65535"), {.host = "192.0.2.1", .port = 65535}),
        reject("port_0", with_portal("192.0.2.1:0"), "data.target_portal"),
        reject("port_65536", with_portal("192.0.2.1:65536"), "data.target_portal"),
        reject("port_negative", with_portal("192.0.2.1:-1"), "data.target_portal"),
        reject("port_empty", with_portal("192.0.2.1:"), "data.target_portal"),
        reject("portal_two_colons_not_ipv6", with_portal("192.0.2.1:3260:1"), "data.target_portal"),
        reject("portal_unclosed_bracket", with_portal("[2001:db8::1:3260"), "data.target_portal"),
        reject("portal_ipv4_in_brackets", with_portal("[192.0.2.1]:3260"), "data.target_portal"),
        reject("portal_junk_after_bracket", with_portal("[::1]x"), "data.target_portal"),
        reject("portal_ipv6_zone", with_portal("[fe80::1%eth0]:3260"), "data.target_portal"),
        reject("portal_xml_quote", with_portal("192.0.2.1'/><evil a='"), "data.target_portal"),
        reject("portal_markup", with_portal("<host name=\"x\"/>:3260"), "data.target_portal"),
        reject("portal_space", with_portal(" 192.0.2.1:3260"), "data.target_portal"),
        reject("portal_nul", with_portal(std::string("192.0.2.1\0:3260", 15)), "data.target_portal"),
        reject("portal_bad_ipv4", with_portal("256.1.1.1:3260"), "data.target_portal"),
        reject("portal_non_ascii_host", with_portal("st\xc3\xb6rage.example.com"), "data.target_portal"),
        reject("portal_as_number", ci("3260", quoted(iqn), "1"), "data.target_portal"),
        reject("portal_megabyte", with_portal(half_mb), "data.target_portal"),
    };
}

// IQNs, LUNs and volume ids.
std::vector<Case> identifier_cases() {
    return {
        // IQNs
        reject("iqn_single_quote", with_iqn("iqn.2010-10.org.x:a'b"), "data.target_iqn"),
        reject("iqn_markup", with_iqn("iqn.2010-10.org.x:<disk/>"), "data.target_iqn"),
        reject("iqn_double_quote", with_iqn("iqn.2010-10.org.x:a\"b"), "data.target_iqn"),
        reject("iqn_ampersand", with_iqn("iqn.2010-10.org.x:a&amp;b"), "data.target_iqn"),
        reject("iqn_nul", with_iqn(std::string("iqn.2010-10.org.x:a\0b", 21)), "data.target_iqn"),
        reject("iqn_newline", with_iqn("iqn.2010-10.org.x:a\nb"), "data.target_iqn"),
        reject("iqn_slash_would_split_source_name", with_iqn("iqn.2010-10.org.x:a/0"), "data.target_iqn"),
        reject("iqn_empty", with_iqn(""), "data.target_iqn"),
        reject("iqn_224_bytes", with_iqn("iqn.2010-10.org.x:" + std::string(206, 'a')), "data.target_iqn"),
        reject("iqn_megabyte_document", with_iqn(mb), "", "connection_info"),
        reject("iqn_bad_month", with_iqn("iqn.2010-13.org.x:a"), "data.target_iqn"),
        reject("iqn_as_list", ci(R"("192.0.2.1:3260")", R"(["iqn.2010-10.org.x:a"])", "1"), "data.target_iqn"),
        // jsoncpp refuses a lone surrogate escape while parsing: the whole document is named.
        reject("iqn_lone_surrogate_escape", ci(R"("192.0.2.1:3260")", R"("iqn.2010-10.org.x:\ud800")", "1"), "",
               "connection_info"),
        accept("iqn_uppercase_eui", with_iqn("eui.0123456789ABCDEF"), {.host = "192.0.2.1", .iqn = "eui.0123456789ABCDEF"}),
        // LUNs
        accept("lun_0", with_lun("0"), {.host = "192.0.2.1", .lun = 0}),
        accept("lun_16383", with_lun("16383"), {.host = "192.0.2.1", .lun = 16383}),
        reject("lun_negative", with_lun("-1"), "data.target_lun"),
        reject("lun_16384", with_lun("16384"), "data.target_lun"),
        reject("lun_huge", with_lun("18446744073709551615"), "data.target_lun"),
        reject("lun_huger_than_uint64", with_lun("184467440737095516150"), "data.target_lun"),
        reject("lun_fraction", with_lun("1.5"), "data.target_lun"),
        reject("lun_integral_real", with_lun("1.0"), "data.target_lun"),
        reject("lun_exponent", with_lun("1e3"), "data.target_lun"),
        reject("lun_as_string", with_lun(R"("1")"), "data.target_lun"),
        reject("lun_as_bool", with_lun("true"), "data.target_lun"),
        reject("lun_nan", with_lun("NaN"), "", "connection_info"),
        // Volume ids become <serial>
        accept("volume_id_all_allowed_characters", with_volume_id("aZ09-_.+"), {.host = "192.0.2.1", .serial = "aZ09-_.+"}),
        reject("volume_id_quote", with_volume_id("vol'1"), "data.volume_id"),
        reject("volume_id_closing_tag", with_volume_id("v</serial><readonly/><serial>"), "data.volume_id"),
        reject("volume_id_nul", with_volume_id(std::string("vol\0evil", 8)), "data.volume_id"),
        reject("volume_id_129_bytes", with_volume_id(std::string(129, 'v')), "data.volume_id"),
        reject("volume_id_non_ascii", with_volume_id("vol-\xc3\xa9"), "data.volume_id"),
        reject("volume_id_as_number", base_with(R"("volume_id":42)"), "data.volume_id"),
    };
}

// CHAP credentials.
std::vector<Case> chap_cases() {
    return {
        // CHAP
        reject("chap_username_nul", chap(quoted(std::string("user\0x", 6))), "data.auth_username"),
        reject("chap_username_newline", chap(quoted("user\nname")), "data.auth_username"),
        // Valid UTF-8 but not an XML character: libvirt could not parse the disk (fixed in request/json_input.cpp).
        reject("chap_username_u_fffe", chap(quoted("user\xef\xbf\xbe")), "data.auth_username"),
        reject("chap_username_u_ffff_escaped", chap(R"("user\uffff")"), "data.auth_username"),
        reject("chap_username_256_bytes", chap(quoted(std::string(256, 'u'))), "data.auth_username"),
        reject("chap_username_as_number", chap("7"), "data.auth_username"),
        reject("chap_password_as_number", chap(R"("user")", "1234"), "data.auth_password"),
        reject("chap_password_nul", chap(R"("user")", R"("pass\u0000word")"), "data.auth_password"),
        reject("chap_password_empty", chap(R"("user")", R"("")"), "data.auth_password"),
        reject("chap_password_missing", base_with(R"("auth_method":"CHAP","auth_username":"u")"), "data.auth_password"),
        reject("chap_username_without_method", base_with(R"("auth_username":"u")"), "data.auth_username"),
        reject("chap_method_unknown", base_with(R"("auth_method":"md5<x>","auth_username":"u","auth_password":"p")"),
               "data.auth_method"),
        // Passes validation; libvirt's test driver has no secrets, so the secret step fails cleanly.
        reject("chap_username_markup_reaches_secret_step", chap(quoted("<u a=\"1\">&'")), "", "", "backend_error"),
    };
}

// Portal/IQN/LUN lists, and the shape of the document.
std::vector<Case> shape_cases() {
    return {
        // Lists
        accept("lists_first_portal_used", ci_raw(R"("target_portals":["[2001:db8::7]:3260","192.0.2.2:3260"],)"
                                                 R"("target_iqns":["iqn.2010-10.org.x:a","iqn.2010-10.org.x:b"],)"
                                                 R"("target_luns":[4,5],"volume_id":"vol-1")"),
               {.host = "2001:db8::7", .iqn = "iqn.2010-10.org.x:a", .lun = 4}),
        reject("lists_empty", base_with(R"("target_portals":[],"target_iqns":[],"target_luns":[])"), "data.target_portals"),
        reject("lists_lengths_differ", ci_raw(R"("target_portals":["192.0.2.1","192.0.2.2"],"target_iqns":[")" +
                                              std::string(iqn) + R"("],"target_luns":[1,1])"),
               "data.target_iqns"),
        reject("lists_bad_second_iqn", ci_raw(R"("target_portals":["192.0.2.1","192.0.2.2"],"target_iqns":[")" +
                                              std::string(iqn) + R"(","iqn.x'y"],"target_luns":[1,1])"),
               "data.target_iqns[1]"),
        reject("lists_lun_as_string", ci_raw(R"("target_portals":["192.0.2.1"],"target_iqns":[")" + std::string(iqn) +
                                             R"("],"target_luns":["1"])"),
               "data.target_luns[0]"),
        reject("lists_portals_as_string", base_with(R"("target_portals":"192.0.2.1:3260")"), "data.target_portals"),
        reject("lists_repeated_target", ci_raw(R"("target_portals":["192.0.2.1","192.0.2.1:3260"],"target_iqn":")" +
                                               std::string(iqn) + R"(","target_lun":1)"),
               "data.target_portals[1]"),
        [] {
            std::string portals;
            for (int i = 0; i < 65; ++i) portals += (i ? "," : "") + quoted("192.0.2." + std::to_string(i + 1));
            return reject("lists_65_portals", ci_raw(R"("target_portals":[)" + portals + R"(],"target_iqn":")" +
                                                     std::string(iqn) + R"(")"),
                          "data.target_portals");
        }(),
        // Document shape
        reject("duplicate_key", base_with(R"("volume_id":"vol-1","volume_id":"vol-2")"), "", "connection_info"),
        reject("duplicate_top_level_key", R"({"driver_volume_type":"iscsi","driver_volume_type":"iscsi","data":{}})", "",
               "connection_info"),
        reject("nesting_100_deep", base_with(R"("volume_id":"vol-1","x":)" + nested(100)), "", "connection_info"),
        accept("nesting_20_deep_in_unknown_key_is_ignored", base_with(R"("volume_id":"vol-1","x":)" + nested(20)), base),
        reject("top_level_list", "[" + good_ci + "]", "", "connection_info"),
        reject("not_json", "driver_volume_type=iscsi", "", "connection_info"),
        reject("trailing_garbage", good_ci + "<x/>", "", "connection_info"),
        reject("comment", good_ci.substr(0, good_ci.size() - 1) + "/* c */}", "", "connection_info"),
        reject("raw_nul_cuts_the_document", std::string(good_ci).insert(20, 1, '\0'), "", "connection_info"),
        reject("non_utf8_byte", with_volume_id("vol-\xff"), "", "connection_info"),
        reject("overlong_utf8", with_volume_id("vol-\xc0\xaf"), "", "connection_info"),
        reject("megabyte_document", base_with(R"("volume_id":"vol-1","pad":")" + mb + "\""), "", "connection_info"),
        reject("driver_volume_type_rbd", R"({"driver_volume_type":"rbd","data":{}})", "driver_volume_type"),
        reject("driver_volume_type_number", R"({"driver_volume_type":1,"data":{}})", "driver_volume_type"),
        reject("data_missing", R"({"driver_volume_type":"iscsi"})", "data"),
        reject("data_as_list", R"({"driver_volume_type":"iscsi","data":[]})", "data"),
        reject("connection_info_null_pointer", "", "", "connection_info"),
    };
}

// Small values and QoS.
std::vector<Case> value_cases() {
    return {
        // Small values
        reject("access_mode_uppercase", base_with(R"("access_mode":"RW")"), "data.access_mode"),
        reject("encrypted_as_string", base_with(R"("encrypted":"true")"), "data.encrypted"),
        reject("discard_as_number", base_with(R"("discard":1)"), "data.discard"),
        accept("read_only", base_with(R"("volume_id":"vol-1","access_mode":"ro")"), {.host = "192.0.2.1", .read_only = true}),
        accept("null_optionals", base_with(R"("volume_id":"vol-1","auth_method":null,"qos_specs":null,"target_portals":null)"),
               base),
        accept("unknown_keys_ignored", base_with(R"("volume_id":"vol-1","<evil/>":"<evil/>","x":{"y":[1,"'"]})"), base),
        // QoS
        accept("qos_strings_and_numbers", base_with(R"("volume_id":"vol-1","qos_specs":{"total_bytes_sec":"1000",)"
                                                    R"("read_iops_sec":5,"consumer":"<x/>"})"),
               {.host = "192.0.2.1", .iotune = {{"total_bytes_sec", "1000"}, {"read_iops_sec", "5"}}}),
        reject("qos_negative", base_with(R"("qos_specs":{"total_bytes_sec":"-5"})"), "data.qos_specs.total_bytes_sec"),
        reject("qos_fraction", base_with(R"("qos_specs":{"total_bytes_sec":"1.5"})"), "data.qos_specs.total_bytes_sec"),
        reject("qos_markup", base_with(R"("qos_specs":{"total_bytes_sec":"1</total_bytes_sec><x>"})"),
               "data.qos_specs.total_bytes_sec"),
        reject("qos_20_digits", base_with(R"("qos_specs":{"total_bytes_sec":"18446744073709551615"})"),
               "data.qos_specs.total_bytes_sec"),
        reject("qos_real", base_with(R"("qos_specs":{"total_bytes_sec":1e20})"), "data.qos_specs.total_bytes_sec"),
        reject("qos_total_with_read", base_with(R"("qos_specs":{"total_bytes_sec":1,"read_bytes_sec":1})"),
               "data.qos_specs.read_bytes_sec"),
        reject("qos_as_list", base_with(R"("qos_specs":[1])"), "data.qos_specs"),
    };
}

// The other arguments: connector, disk_info, flags, and disconnect's device_info.
std::vector<Case> call_argument_cases() {
    return {
        // Connector
        reject_connector("connector_initiator_quote", R"({"initiator":"iqn.1993-08.org.x:a'b"})", "initiator"),
        reject_connector("connector_initiator_nul", R"({"initiator":"iqn.1993-08.org.x:a\u0000b"})", "initiator"),
        reject_connector("connector_multipath_as_string", std::string(R"({"initiator":")") + initiator +
                                                              R"(","multipath":"false"})",
                         "multipath"),
        reject_connector("connector_host_nul", std::string(R"({"initiator":")") + initiator + R"(","host":"a\u0000"})",
                         "host"),
        reject_connector("connector_not_json", "initiator", ""),
        reject_connector("connector_null_pointer", std::nullopt, ""),
        [] {
            Case c = accept("connector_host_markup_is_not_used", good_ci, {.host = "192.0.2.1"});
            c.second = std::string(R"({"initiator":")") + initiator + R"(","host":"<x a='1'/>","ip":"&amp;"})";
            return c;
        }(),
        // disk_info
        reject_disk("disk_dev_markup", R"({"dev":"sdb'/><disk"})", "dev"),
        reject_disk("disk_dev_uppercase", R"({"dev":"sdB"})", "dev"),
        reject_disk("disk_dev_four_letters", R"({"dev":"sdabcd"})", "dev"),
        reject_disk("disk_bus_markup", R"({"dev":"sdb","bus":"scsi'"})", "bus"),
        reject_disk("disk_type_cdrom", R"({"dev":"sdb","type":"cdrom"})", "type"),
        reject_disk("disk_type_number", R"({"dev":"sdb","type":1})", "type"),
        reject_disk("disk_type_lun_on_virtio", R"({"dev":"vdb","type":"lun"})", "type"),
        reject_disk("disk_unit_huge", R"({"dev":"sdb","unit":18446744073709551616})", "unit"),
        reject_disk("disk_unit_negative", R"({"dev":"sdb","unit":-1})", "unit"),
        reject_disk("disk_unit_array", R"({"dev":"sdb","unit":[1]})", "unit"),
        reject_disk("disk_unit_markup", R"({"dev":"sdb","unit":"1'/>"})", "unit"),
        reject_disk("disk_boot_index_zero", R"({"dev":"sdb","boot_index":0})", "boot_index"),
        // The ABI header promises defaults for NULL / "{}"; the driver requires dev (see the report).
        reject_disk("disk_info_null_needs_dev", std::nullopt, "dev"),
        [] {
            Case c = accept("disk_virtio_inferred_from_dev", good_ci, {.host = "192.0.2.1", .dev = "vdc", .bus = "virtio"});
            c.disk_info = R"({"dev":"vdc"})";
            return c;
        }(),
        // Flags
        [] {
            Case c = reject("connect_unknown_flag", good_ci, "", "flags");
            c.flags = 1;
            return c;
        }(),
        // disconnect: device_info is what a host stored, maybe edited since
        reject_disconnect("disconnect_unknown_flag", std::nullopt, "", "flags", 0x80),
        reject_disconnect("device_info_type_unknown", R"({"type":"evil"})", "type"),
        reject_disconnect("device_info_type_number", R"({"type":1})", "type"),
        reject_disconnect("device_info_type_missing", R"({"disk_xml":"<disk/>"})", "type"),
        reject_disconnect("device_info_foreign_secret", R"({"type":"network","secret_usage":"other-tool:vol-1"})",
                          "secret_usage"),
        reject_disconnect("device_info_not_json", "{type:network}", ""),
        reject_disconnect("device_info_duplicate_key", R"({"type":"network","type":"block"})", ""),
    };
}

}  // namespace

std::vector<Case> cases() {
    std::vector<Case> v;
    for (const auto &group : {portal_cases(), identifier_cases(), chap_cases(), shape_cases(), value_cases(),
                              call_argument_cases()}) {
        v.insert(v.end(), group.begin(), group.end());
    }
    // connection_info_null_pointer: passed as NULL, not as "".
    for (auto &c : v) {
        if (c.name == "connection_info_null_pointer") c.connection_info.reset();
    }
    return v;
}

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

}  // namespace ivd::hostile
