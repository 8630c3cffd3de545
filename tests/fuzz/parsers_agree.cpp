// The call path reads its inputs straight from text (request::parse_*_text, no json::Value); the tree readers
// (parse_object + parse_*) remain for tests and tools. Both must agree on every input: the same values, or the
// same error (status, message, argument, field).
#include "parsers_agree.hpp"

#include "fuzz_support.hpp"
#include "request/device_info.hpp"
#include "request/json_input.hpp"
#include "request/volume_request.hpp"

#include <fmt/format.h>

namespace ivd::fuzz {

namespace {

std::string describe(const Error &e) {
    return fmt::format("[{}] {} (argument {}, field {})", static_cast<int>(e.status), e.message, e.argument, e.field);
}

template <class T>
void same_outcome(const Result<T> &text, const Result<T> &tree, const char *what) {
    IVD_FUZZ_CHECK(text.ok() == tree.ok(),
                   fmt::format("{}: text parser {} but tree parser {}", what, text ? "accepted" : describe(text.error()),
                               tree ? "accepted" : describe(tree.error())));
    if (!text.ok()) {
        IVD_FUZZ_CHECK(describe(text.error()) == describe(tree.error()),
                       fmt::format("{}: {} vs {}", what, describe(text.error()), describe(tree.error())));
    }
}

bool same_chap(const std::optional<request::ChapCredentials> &a, const std::optional<request::ChapCredentials> &b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->username == b->username && a->password.equals(b->password));
}

bool same_request(const request::VolumeRequest &a, const request::VolumeRequest &b) {
    return a.targets == b.targets && a.targets_from_lists == b.targets_from_lists && same_chap(a.chap, b.chap) &&
           same_chap(a.discovery_chap, b.discovery_chap) && a.volume_id == b.volume_id &&
           a.access_mode == b.access_mode && a.encrypted == b.encrypted && a.discard == b.discard &&
           a.multiattach == b.multiattach && a.logical_block_size == b.logical_block_size &&
           a.physical_block_size == b.physical_block_size && a.qos == b.qos && a.addressing == b.addressing;
}

// The tree path: parse_object then the reader, as the driver did before reading from text.
template <class Read>
auto via_tree(const char *text, const char *argument, bool null_ok, Read read) -> decltype(read(json::Value())) {
    auto doc = request::parse_object(text, argument, null_ok);
    if (!doc) return std::move(doc).error();
    return read(*doc);
}

}  // namespace

void check_connection_info_parsers(const char *text) {
    const auto from_text = request::parse_connection_info_text(text);
    const auto from_tree = via_tree(text, "connection_info", false,
                                    [](const json::Value &d) { return request::parse_connection_info(d); });
    same_outcome(from_text, from_tree, "connection_info");
    if (from_text) IVD_FUZZ_CHECK(same_request(*from_text, *from_tree), "connection_info: the parsers read different values");
}

void check_connector_parsers(const char *text) {
    const auto from_text = request::parse_connector_text(text);
    const auto from_tree = via_tree(text, "connector", false, [](const json::Value &d) { return request::parse_connector(d); });
    same_outcome(from_text, from_tree, "connector");
    if (!from_text) return;
    const request::Connector &a = *from_text, &b = *from_tree;
    IVD_FUZZ_CHECK(a.initiator == b.initiator && a.host == b.host && a.ip == b.ip && a.multipath == b.multipath &&
                       a.enforce_multipath == b.enforce_multipath,
                   "connector: the parsers read different values");
}

void check_disk_info_parsers(const char *text, bool null_ok, bool dev_required) {
    const auto from_text = request::parse_disk_info_text(text, null_ok, dev_required);
    const auto from_tree = via_tree(text, "disk_info", null_ok, [&](const json::Value &d) {
        return request::parse_disk_info(d, dev_required);
    });
    same_outcome(from_text, from_tree, "disk_info");
    if (!from_text) return;
    const request::DiskTarget &a = *from_text, &b = *from_tree;
    IVD_FUZZ_CHECK(a.bus == b.bus && a.dev == b.dev && a.unit == b.unit && a.lun == b.lun && a.boot_index == b.boot_index,
                   "disk_info: the parsers read different values");
}

void check_device_info_parsers(const char *text, bool null_ok) {
    const auto from_text = request::parse_device_info_text(text, null_ok);
    const auto from_tree = via_tree(text, "device_info", null_ok, [&](const json::Value &d) {
        if (null_ok && d.empty()) return Result<std::optional<request::DeviceInfo>>(std::optional<request::DeviceInfo>());
        auto info = request::parse_device_info(d);
        if (!info) return Result<std::optional<request::DeviceInfo>>(std::move(info).error());
        return Result<std::optional<request::DeviceInfo>>(std::optional<request::DeviceInfo>(std::move(info).value()));
    });
    same_outcome(from_text, from_tree, "device_info");
    if (!from_text) return;
    IVD_FUZZ_CHECK(from_text->has_value() == from_tree->has_value(), "device_info: one parser found no document");
    if (from_text->has_value()) {
        IVD_FUZZ_CHECK((**from_text).to_json() == (**from_tree).to_json(), "device_info: the parsers read different values");
    }
}

}  // namespace ivd::fuzz
