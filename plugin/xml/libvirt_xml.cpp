#include "xml/libvirt_xml.hpp"

#include <pugixml.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <string_view>

namespace ivd::xml {

namespace {

// The bytes pugixml escapes (see XmlWriter::escape), per context.
struct SpecialTable {
    bool attribute[256] = {};
    bool text[256] = {};
    constexpr SpecialTable() {
        for (int c = 0; c < 0x20; ++c) {
            attribute[c] = true;
            text[c] = c != '\t' && c != '\r' && c != '\n';
        }
        text[0] = true;  // a NUL ends the value
        attribute['&'] = attribute['<'] = attribute['\''] = true;
        text['&'] = text['<'] = text['>'] = true;
    }
};
constexpr SpecialTable special_table{};

// Straight into one string, no document tree: these elements are small, fixed in shape and written on every
// attach. The bytes are the ones pugixml's raw, single-quoted save gave (tests/unit/libvirt_xml_test.cpp
// compares both over every byte value): empty elements as <x/>, attributes in single quotes, and the escapes
// below. A NUL ends a value, as it ended the C string pugixml was handed.
class XmlWriter {
public:
    XmlWriter() { out_.resize(640); }

    void open(std::string_view name) {
        end_start_tag();
        put('<');
        put(name);
        names_[depth_++] = name;
        tag_open_ = true;
    }
    void attr(std::string_view name, std::string_view value) {
        put(' ');
        put(name);
        put("='");
        escape(value, true);
        put('\'');
    }
    void attr(std::string_view name, long long value) { attr(name, std::string_view(fmt::format_int(value).c_str())); }
    void text(std::string_view value) {
        end_start_tag();
        escape(value, false);
    }
    void close() {
        const std::string_view name = names_[--depth_];
        if (tag_open_) {
            put("/>");
            tag_open_ = false;
            return;
        }
        put("</");
        put(name);
        put('>');
    }
    std::string take() {
        out_.resize(end_);
        return std::move(out_);
    }

private:
    void end_start_tag() {
        if (!tag_open_) return;
        put('>');
        tag_open_ = false;
    }
    // pugixml's escapes: & and < always; in attributes ' (the quote used) and every control character; in
    // text > and the control characters but tab, CR and LF; a control character as &#NN; (two decimal digits).
    void escape(std::string_view value, bool attribute) {
        const bool *special = attribute ? special_table.attribute : special_table.text;
        std::size_t run = 0;
        for (std::size_t i = 0; i < value.size(); ++i) {
            const auto c = static_cast<unsigned char>(value[i]);
            if (!special[c]) continue;  // most values have nothing to escape: one table look-up a byte
            if (c == 0) {
                value = value.substr(0, i);
                break;
            }
            put(value.data() + run, i - run);
            run = i + 1;
            switch (c) {
            case '&': put("&amp;"); break;
            case '<': put("&lt;"); break;
            case '>': put("&gt;"); break;
            case '\'': put("&apos;"); break;
            default: {
                const char numeric[] = {'&', '#', static_cast<char>('0' + c / 10), static_cast<char>('0' + c % 10), ';'};
                put(numeric, sizeof numeric);
            }
            }
        }
        put(value.data() + run, value.size() - run);
    }

    // The bytes go straight into the room (std::string's += re-terminated the string on every piece).
    char *room(std::size_t n) {
        if (out_.size() - end_ < n) out_.resize(std::max(out_.size() * 2, end_ + n));
        return out_.data() + end_;
    }
    void put(const char *p, std::size_t n) {
        if (n != 0) std::memcpy(room(n), p, n);
        end_ += n;
    }
    void put(std::string_view s) { put(s.data(), s.size()); }
    void put(char c) { *room(1) = c, ++end_; }

    std::string out_;  // written up to end_; its size is the room
    std::size_t end_ = 0;
    std::array<std::string_view, 8> names_{};  // open elements (the deepest disk element is 4 levels down)
    std::size_t depth_ = 0;
    bool tag_open_ = false;  // "<name attr..." written, its '>' or '/>' not yet
};

// <driver name='qemu' type='raw' cache=... io=... discard=...>: shared by both disk kinds.
void add_driver(XmlWriter &w, const GuestDiskOptions &o) {
    w.open("driver");
    w.attr("name", "qemu");
    w.attr("type", "raw");
    if (!o.cache.empty() && o.cache != "default") w.attr("cache", o.cache);
    if (!o.io.empty() && o.io != "default") w.attr("io", o.io);
    if (o.discard) w.attr("discard", "unmap");
    w.close();
}

void add_empty(XmlWriter &w, std::string_view name) {
    w.open(name);
    w.close();
}

void add_text(XmlWriter &w, std::string_view name, std::string_view text) {
    w.open(name);
    w.text(text);
    w.close();
}

// The guest-facing tail shared by both disk kinds: target, iotune, serial, readonly.
void add_guest_side(XmlWriter &w, const GuestDiskOptions &o) {
    w.open("target");
    w.attr("dev", o.guest.dev);
    w.attr("bus", request::bus_name(o.guest.bus));
    w.close();
    if (o.guest.boot_index) {
        w.open("boot");
        w.attr("order", static_cast<long long>(*o.guest.boot_index));
        w.close();
    }
    if (o.shareable) add_empty(w, "shareable");
    if (o.logical_block_size != 0 || o.physical_block_size != 0) {
        w.open("blockio");
        if (o.logical_block_size != 0) w.attr("logical_block_size", static_cast<long long>(o.logical_block_size));
        if (o.physical_block_size != 0) w.attr("physical_block_size", static_cast<long long>(o.physical_block_size));
        w.close();
    }
    if (o.guest.unit) {
        // A drive address on controller 0, as Nova writes it for a chosen unit.
        w.open("address");
        w.attr("type", "drive");
        w.attr("controller", "0");
        w.attr("bus", "0");
        w.attr("target", "0");
        w.attr("unit", static_cast<long long>(*o.guest.unit));
        w.close();
    }
    if (!o.qos.empty()) {
        w.open("iotune");
        for (const auto &[name, value] : o.qos) add_text(w, name, fmt::format_int(value).c_str());
        w.close();
    }
    // libvirt refuses <serial> on device='lun': the guest reads the LU's own serial.
    if (!o.serial.empty() && !o.guest.lun) add_text(w, "serial", o.serial);
    if (o.read_only) add_empty(w, "readonly");
}

// libvirt before 3.9 only knows <auth> under <disk> (where it also formats it, before <source>).
void add_auth(XmlWriter &w, const DiskAuth &auth) {
    w.open("auth");
    w.attr("username", auth.username);
    w.open("secret");
    w.attr("type", "iscsi");
    w.attr("usage", auth.secret_usage);
    w.close();
    w.close();
}

}  // namespace

std::string network_disk_xml(const NetworkDiskSpec &spec) {
    XmlWriter w;
    w.open("disk");
    w.attr("type", "network");
    w.attr("device", spec.options.guest.lun ? "lun" : "disk");
    add_driver(w, spec.options);
    if (spec.auth && !spec.auth_in_source) add_auth(w, *spec.auth);
    w.open("source");
    w.attr("protocol", "iscsi");
    std::string name = spec.target.iqn;
    name += '/';
    name += fmt::format_int(spec.target.scsi_lun()).c_str();  // QEMU's libiscsi sends it as the kernel would
    w.attr("name", name);
    w.open("host");
    w.attr("name", spec.target.portal.host);  // IPv6 without brackets, as libvirt wants
    w.attr("port", static_cast<long long>(spec.target.portal.port));
    w.close();
    if (spec.auth && spec.auth_in_source) add_auth(w, *spec.auth);
    if (!spec.initiator.empty() && spec.emit_initiator) {
        w.open("initiator");
        w.open("iqn");
        w.attr("name", spec.initiator);
        w.close();
        w.close();
    }
    w.close();
    add_guest_side(w, spec.options);
    w.close();
    return w.take();
}

std::string block_disk_xml(const BlockDiskSpec &spec) {
    XmlWriter w;
    w.open("disk");
    w.attr("type", "block");
    w.attr("device", spec.options.guest.lun ? "lun" : "disk");
    add_driver(w, spec.options);
    w.open("source");
    w.attr("dev", spec.device_path);
    w.close();
    add_guest_side(w, spec.options);
    w.close();
    return w.take();
}

NetworkDiskXmlForms read_network_disk_forms(const std::string &disk_xml) {
    NetworkDiskXmlForms forms;
    pugi::xml_document doc;
    if (!doc.load_string(disk_xml.c_str())) return forms;
    const auto disk = doc.child("disk");
    const auto source = disk.child("source");
    forms.initiator = source.child("initiator").child("iqn").attribute("name").value();
    forms.emit_initiator = !forms.initiator.empty();
    forms.auth_in_source = !disk.child("auth");
    return forms;
}

std::string iscsi_secret_xml(const std::string &usage_name, const std::string &description,
                             SecretStorage storage) {
    XmlWriter w;
    w.open("secret");
    w.attr("ephemeral", storage == SecretStorage::ephemeral ? "yes" : "no");
    w.attr("private", "yes");  // libvirt never hands the value back out
    if (!description.empty()) add_text(w, "description", description);
    w.open("usage");
    w.attr("type", "iscsi");
    add_text(w, "target", usage_name);
    w.close();
    w.close();
    return w.take();
}

}  // namespace ivd::xml
