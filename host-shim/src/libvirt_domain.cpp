#include "libvirt_domain.hpp"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fmt/format.h>
#include <pugixml.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace volume_host {

namespace {

void ignore_error(void *, virErrorPtr) noexcept {}

// stdout carries JSON and stderr our own error JSON: libvirt must print nothing itself. volume-host is the
// host process, so replacing libvirt's global default handler (which prints) is its call to make.
void silence_libvirt() {
    static std::once_flag once;
    std::call_once(once, [] {
        virInitialize();
        virSetErrorFunc(nullptr, ignore_error);
    });
}

// libvirt keepalive needs an event loop: the default implementation, run by one thread for the process.
void start_event_loop() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (virEventRegisterDefaultImpl() != 0) return;  // keepalive then fails and is reported as off
        std::thread([] {
            for (;;) virEventRunDefaultImpl();
        }).detach();
    });
}

// virConnectOpen has no deadline of its own (a daemon that accepts and never answers blocks it forever), so it
// runs on its own thread; when the deadline passes the thread is abandoned and closes what it opens later.
struct OpenAttempt {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    bool abandoned = false;
    virConnectPtr conn = nullptr;
    std::string error;
    int error_code = 0;
    int error_domain = 0;
};

ShimError open_failed(const LibvirtBounds &bounds, const OpenAttempt &attempt) {
    ShimError e{"libvirt_error", fmt::format("cannot connect to libvirt at {}: {}", bounds.uri, attempt.error),
                exit_libvirt};
    if (attempt.error_domain == VIR_FROM_RPC && attempt.error_code == VIR_ERR_SYSTEM_ERROR) e.code = "unreachable";
    return e;
}

std::atomic<bool> abandoned_opener{false};

Outcome<virConnectPtr> open_within_deadline(const LibvirtBounds &bounds) {
    auto attempt = std::make_shared<OpenAttempt>();
    std::thread opener([attempt, uri = bounds.uri] {
        virConnectPtr conn = virConnectOpen(uri.c_str());
        std::lock_guard lock(attempt->mutex);
        if (attempt->abandoned) {
            if (conn != nullptr) virConnectClose(conn);
            return;
        }
        if (conn == nullptr) {
            const virErrorPtr e = virGetLastError();
            attempt->error = (e != nullptr && e->message != nullptr) ? e->message : "unknown libvirt error";
            attempt->error_code = e != nullptr ? e->code : 0;
            attempt->error_domain = e != nullptr ? e->domain : 0;
        }
        attempt->conn = conn;
        attempt->done = true;
        attempt->done_cv.notify_all();
    });
    std::unique_lock lock(attempt->mutex);
    if (!attempt->done_cv.wait_for(lock, bounds.connect_timeout, [&] { return attempt->done; })) {
        attempt->abandoned = true;
        abandoned_opener = true;
        opener.detach();
        return ShimError{"timeout",
                         fmt::format("libvirt at {} did not answer within {} ms ([libvirt] connect_timeout_ms)",
                                     bounds.uri, bounds.connect_timeout.count()),
                         exit_libvirt};
    }
    lock.unlock();
    // Joined when it answered in time: a detached thread still exiting when the process ends races LeakSanitizer's
    // stop-the-world (its tracer crashed on one in CI).
    opener.join();
    if (attempt->conn == nullptr) return open_failed(bounds, *attempt);
    return attempt->conn;
}

ShimError libvirt_error(const std::string &what) {
    const virErrorPtr e = virGetLastError();
    const char *message = (e != nullptr && e->message != nullptr) ? e->message : "unknown libvirt error";
    return ShimError{"libvirt_error", fmt::format("{}: {}", what, message), exit_libvirt};
}

std::string element_xml(const pugi::xml_node &node) {
    std::ostringstream out;
    node.print(out, "", pugi::format_raw);
    return out.str();
}

// sda..sdz, then sdaa..sdzz, as libvirt names SCSI disks by index.
std::string scsi_dev_name(int index) {
    std::string suffix;
    for (int i = index; i >= 0; i = i / 26 - 1) suffix.insert(suffix.begin(), static_cast<char>('a' + i % 26));
    return "sd" + suffix;
}

}  // namespace

bool libvirt_thread_abandoned() { return abandoned_opener.load(); }

std::vector<DomainDisk> disks_in_domain_xml(const std::string &domain_xml) {
    std::vector<DomainDisk> disks;
    pugi::xml_document doc;
    if (!doc.load_string(domain_xml.c_str())) return disks;
    for (pugi::xml_node disk : doc.child("domain").child("devices").children("disk")) {
        DomainDisk d;
        d.target_dev = disk.child("target").attribute("dev").as_string();
        d.bus = disk.child("target").attribute("bus").as_string();
        d.alias = disk.child("alias").attribute("name").as_string();
        d.xml = element_xml(disk);
        d.source = disk_source_of(disk);
        disks.push_back(std::move(d));
    }
    return disks;
}

Outcome<std::string> first_free_scsi_dev(const std::vector<std::string> &domain_xmls) {
    std::set<std::string> used;
    for (const auto &xml : domain_xmls) {
        for (const auto &d : disks_in_domain_xml(xml)) used.insert(d.target_dev);
    }
    constexpr int max_index = 26 + 26 * 26;
    for (int i = 0; i < max_index; ++i) {
        std::string name = scsi_dev_name(i);
        if (!used.contains(name)) return name;
    }
    return ShimError{"libvirt_error", "the domain has no free SCSI target dev name left", exit_libvirt};
}

Outcome<std::string> disk_target_dev(const std::string &disk_xml) {
    pugi::xml_document doc;
    if (!doc.load_string(disk_xml.c_str())) {
        return ShimError{"input_error", "device_info disk_xml is not well-formed XML", exit_usage};
    }
    std::string dev = doc.child("disk").child("target").attribute("dev").as_string();
    if (dev.empty()) return ShimError{"input_error", "device_info disk_xml has no <target dev=...>", exit_usage};
    return dev;
}

struct DomainSession::Handles {
    virConnectPtr conn = nullptr;
    virDomainPtr dom = nullptr;
    ~Handles() {
        if (dom != nullptr) virDomainFree(dom);
        if (conn != nullptr) virConnectClose(conn);
    }
};

DomainSession::DomainSession(std::string domain, std::unique_ptr<Handles> handles)
    : domain_(std::move(domain)), h_(std::move(handles)) {}

DomainSession::~DomainSession() = default;

Outcome<std::unique_ptr<DomainSession>> DomainSession::open(const std::string &uri, const std::string &domain) {
    LibvirtBounds bounds;
    bounds.uri = uri;
    return open(bounds, domain);
}

Outcome<std::unique_ptr<DomainSession>> DomainSession::open(const LibvirtBounds &bounds, const std::string &domain) {
    silence_libvirt();
    if (bounds.keepalive_interval_s > 0) start_event_loop();
    auto h = std::make_unique<Handles>();
    auto conn = open_within_deadline(bounds);
    if (!conn) return conn.error();
    h->conn = *conn;
    virConnSetErrorFunc(h->conn, nullptr, ignore_error);
    // Without keepalive a daemon that stops answering later would block the calls below forever. Drivers
    // without keepalive (test:///) keep working unbounded, as before.
    if (bounds.keepalive_interval_s > 0) {
        virConnectSetKeepAlive(h->conn, bounds.keepalive_interval_s, bounds.keepalive_count);
    }
    h->dom = virDomainLookupByName(h->conn, domain.c_str());
    if (h->dom == nullptr) {
        ShimError e = libvirt_error(fmt::format("domain {}", domain));
        // Callers tell "no such domain" (destroyed transient domain: nothing to detach) from a libvirt failure.
        if (const virErrorPtr le = virGetLastError(); le != nullptr && le->code == VIR_ERR_NO_DOMAIN) {
            e.code = "domain_not_found";
        }
        return e;
    }
    return std::unique_ptr<DomainSession>(new DomainSession(domain, std::move(h)));
}

bool DomainSession::persistent() const { return virDomainIsPersistent(h_->dom) == 1; }

Outcome<std::string> DomainSession::uuid() const {
    char buf[VIR_UUID_STRING_BUFLEN] = {};
    if (virDomainGetUUIDString(h_->dom, buf) != 0) {
        return libvirt_error(fmt::format("cannot read the UUID of domain {}", domain_));
    }
    return std::string(buf);
}

Outcome<std::string> DomainSession::domain_xml(bool inactive) const {
    char *xml = virDomainGetXMLDesc(h_->dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
    if (xml == nullptr) return libvirt_error(fmt::format("cannot read the XML of domain {}", domain_));
    std::string out(xml);
    free(xml);  // NOLINT: libvirt allocates with malloc
    return out;
}

Outcome<std::vector<DomainDisk>> DomainSession::live_disks() const {
    auto xml = domain_xml(false);
    if (!xml) return xml.error();
    return disks_in_domain_xml(*xml);
}

Outcome<std::string> DomainSession::pick_free_scsi_dev() const {
    std::vector<std::string> docs;
    auto live = domain_xml(false);
    if (!live) return live.error();
    docs.push_back(std::move(*live));
    // A name free live but used in the persistent config would clash when we attach with CONFIG too.
    if (persistent()) {
        auto config = domain_xml(true);
        if (!config) return config.error();
        docs.push_back(std::move(*config));
    }
    return first_free_scsi_dev(docs);
}

MaybeError DomainSession::attach_disk(const std::string &disk_xml) {
    unsigned flags = VIR_DOMAIN_AFFECT_LIVE;
    if (persistent()) flags |= VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainAttachDeviceFlags(h_->dom, disk_xml.c_str(), flags) != 0) {
        return libvirt_error(fmt::format("cannot attach the disk to domain {}", domain_));
    }
    return std::nullopt;
}

Outcome<std::optional<DomainDisk>> DomainSession::disk_at(const std::string &target_dev, bool inactive) const {
    auto xml = domain_xml(inactive);
    if (!xml) return xml.error();
    for (auto &d : disks_in_domain_xml(*xml)) {
        if (d.target_dev == target_dev) return std::optional<DomainDisk>(std::move(d));
    }
    return std::optional<DomainDisk>();
}

Outcome<std::optional<DomainDisk>> DomainSession::find_same_storage(const DiskSource &source) const {
    const bool active = virDomainIsActive(h_->dom) == 1;
    for (bool inactive : {false, true}) {
        if ((inactive && !persistent()) || (!inactive && !active)) continue;
        auto xml = domain_xml(inactive);
        if (!xml) return xml.error();
        for (auto &d : disks_in_domain_xml(*xml)) {
            if (d.source.same_storage(source)) return std::optional<DomainDisk>(std::move(d));
        }
    }
    return std::optional<DomainDisk>();
}

namespace {

ShimError disk_mismatch(const std::string &domain, const std::string &dev, const DomainDisk &found,
                        const DiskSource &expected) {
    return ShimError{"disk_mismatch",
                     fmt::format("{} of domain {} holds {}, not this volume ({}); nothing was detached",
                                 dev, domain, found.source.describe(), expected.describe()),
                     exit_libvirt};
}

}  // namespace

Outcome<DetachOutcome> DomainSession::detach_disk(const std::string &target_dev, const DiskSource *expected,
                                                  std::chrono::milliseconds deadline) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    auto find = [&](bool inactive) { return disk_at(target_dev, inactive); };

    DetachOutcome outcome;
    // Live and config are detached separately: each may hold the disk without the other. A shut-off domain
    // has no live view (its "live" XML is the config), so only its config is changed.
    const bool active = virDomainIsActive(h_->dom) == 1;
    const bool in_config = persistent();
    auto live = active ? find(false) : Outcome<std::optional<DomainDisk>>(std::optional<DomainDisk>());
    if (!live) return live.error();
    auto config = in_config ? find(true) : Outcome<std::optional<DomainDisk>>(std::optional<DomainDisk>());
    if (!config) return config.error();
    // Both views are checked before either is changed: another volume that took this dev stays attached.
    if (expected != nullptr) {
        for (const auto *view : {&*live, &*config}) {
            if (*view && !(*view)->source.matches_recorded(*expected)) {
                return disk_mismatch(domain_, target_dev, **view, *expected);
            }
        }
    }
    if (*live) {
        outcome.was_attached = true;
        if (virDomainDetachDeviceFlags(h_->dom, (*live)->xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) != 0) {
            ShimError e = libvirt_error(fmt::format("cannot detach {} from domain {}", target_dev, domain_));
            // Gone in between (a concurrent detach) is what we wanted.
            auto again = find(false);
            if (!again || *again) return e;
        }
        // libvirt may return before QEMU released the device (guest-side unplug is asynchronous): poll the
        // live XML, which loses the disk only once QEMU reported DEVICE_DELETED.
        for (;;) {
            auto still = find(false);
            if (!still) return still.error();
            if (!*still) break;
            if (clock::now() - start > deadline) {
                return ShimError{"libvirt_error",
                                 fmt::format("{} is still attached to domain {} {} ms after the detach request",
                                             target_dev, domain_, deadline.count()),
                                 exit_libvirt};
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    if (*config) {
        outcome.was_attached = true;
        if (virDomainDetachDeviceFlags(h_->dom, (*config)->xml.c_str(), VIR_DOMAIN_AFFECT_CONFIG) != 0) {
            return libvirt_error(fmt::format("cannot remove {} from the config of domain {}", target_dev, domain_));
        }
    }
    outcome.waited = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
    return outcome;
}

}  // namespace volume_host
