#include "iscsi/iscsi_probe.hpp"

#include "iscsi/iscsi_context.hpp"
#include "iscsi/libiscsi_support.hpp"
#include "iscsi/lu_identity.hpp"
#include "iscsi/operation_loop.hpp"
#include "iscsi/resolve.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace ivd::iscsi {

const char *probe_outcome_name(ProbeOutcome outcome) {
    switch (outcome) {
    case ProbeOutcome::healthy: return "healthy";
    case ProbeOutcome::unreachable: return "unreachable";
    case ProbeOutcome::timeout: return "timeout";
    case ProbeOutcome::auth_failed: return "auth_failed";
    case ProbeOutcome::target_not_found: return "target_not_found";
    case ProbeOutcome::lun_unavailable: return "lun_unavailable";
    case ProbeOutcome::error: return "error";
    }
    return "unknown";
}

namespace {

class Probe final : public Operation {
public:
    // `resolved`: the portal's host as resolve_hosts() left it; `spent`: how long that took (charged to this
    // probe's timeout, so name resolution and the probe share one deadline).
    Probe(const request::Target &target, const ProbeOptions &options, ResolvedHost resolved, Clock::duration spent)
        : target_(target), options_(options), resolved_(std::move(resolved)), spent_(spent) {}

    // The probe's clock runs from here: a probe that waited for a free slot is not charged for the wait.
    void start() override {
        start_ = Clock::now() - spent_;
        deadline_ = start_ + options_.timeout;
        phase_ = Phase::connecting;
        if (resolved_.state == ResolvedHost::State::timed_out) {
            return finish(ProbeOutcome::timeout, fmt::format("{}: {}", target_.portal.to_string(), resolved_.problem));
        }
        if (resolved_.state == ResolvedHost::State::failed) {
            return finish(ProbeOutcome::unreachable, fmt::format("{}: {}", target_.portal.to_string(), resolved_.problem));
        }
        if (options_.initiator.empty()) return finish(ProbeOutcome::error, "no initiator name to log in with");
        // The host path probes the LUN as addressed (flat space adds 16384): libiscsi's first level, like the kernel's.
        if (target_.scsi_lun() < 0 || target_.scsi_lun() > request::max_scsi_lun) {
            return finish(ProbeOutcome::error, fmt::format("LUN {} is outside 0..{}", target_.scsi_lun(), request::max_scsi_lun));
        }
        auto ctx = Context::create(options_.initiator);
        if (!ctx) return finish(ProbeOutcome::error, ctx.error().message);
        ctx_ = std::move(ctx.value());
        if (auto r = ctx_.set_target_name(target_.iqn); !r) return finish(ProbeOutcome::error, r.error().message);
        if (options_.chap != nullptr) {
            if (auto r = ctx_.set_chap(options_.chap->username, options_.chap->password); !r) {
                return finish(ProbeOutcome::error, r.error().message);
            }
        }
        errno = 0;  // only what the connect itself sets may say "out of descriptors"
        if (!ctx_.connect(libiscsi_portal(connectable(target_.portal, resolved_)),
                          &callback<Probe, &Probe::on_connected>, this)) {
            const int err = errno;
            std::string why =
                fmt::format("cannot connect to {}: {}", target_.portal.to_string(), ctx_.last_error());
            if (wait_for_socket_if_exhausted(err, why)) return;
            return finish(ProbeOutcome::unreachable, std::move(why));
        }
    }

    ProbeResult take_result() { return std::move(result_); }

    void on_deadline() override {
        if (have_result_) {  // only the courtesy logout was pending
            done_ = true;
            return;
        }
        finish(ProbeOutcome::timeout,
               fmt::format("no answer from {} within {} ms while {}", target_.portal.to_string(),
                           options_.timeout.count(), phase_text()));
    }

    void on_service_error(const std::string &why) override {
        logged_in_ = false;  // the connection is gone: nothing to log out of
        if (have_result_) {
            done_ = true;
            return;
        }
        const ProbeOutcome outcome = phase_ == Phase::connecting ? ProbeOutcome::unreachable : ProbeOutcome::error;
        finish(outcome, fmt::format("connection to {} failed while {}: {}", target_.portal.to_string(),
                                    phase_text(), why));
    }

    void on_cannot_start(const std::string &why) override {
        if (start_ == Clock::time_point{}) start_ = Clock::now();
        logged_in_ = false;
        finish(ProbeOutcome::error, fmt::format("cannot probe {}: {}", target_.portal.to_string(), why));
        done_ = true;
    }

    void out_of_memory() noexcept override {
        if (!have_result_) {
            have_result_ = true;
            result_.outcome = ProbeOutcome::error;
            result_.detail = "out of memory";  // short enough not to allocate
        }
        done_ = true;
    }

    // libiscsi completions arrive through callback<>, which calls the private on_* handlers.
    template <class T, void (T::*Handler)(int, void *)>
    friend void iscsi::callback(iscsi_context *, int, void *, void *) noexcept;

private:
    enum class Phase { connecting, logging_in, test_unit_ready, read_capacity, inquiry, logging_out };

    bool closing() const noexcept { return !ctx_; }  // callbacks fired by Context::reset()

    const char *phase_text() const {
        switch (phase_) {
        case Phase::connecting: return "connecting (TCP)";
        case Phase::logging_in: return "logging in";
        case Phase::test_unit_ready: return "waiting for TEST UNIT READY";
        case Phase::read_capacity: return "waiting for READ CAPACITY(16)";
        case Phase::inquiry: return "reading VPD page 0x83";
        case Phase::logging_out: return "logging out";
        }
        return "probing";
    }

    // libiscsi addresses a LUN as the kernel does (the first level's 16 bits), so as data.addressing_mode says.
    int lun() const { return static_cast<int>(target_.scsi_lun()); }

    void finish(ProbeOutcome outcome, std::string detail) {
        if (have_result_) return;
        have_result_ = true;
        result_.outcome = outcome;
        result_.detail = scrub(std::move(detail), options_.chap);
        result_.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_);
        if (outcome != ProbeOutcome::healthy) {
            result_.size_bytes = 0;
            result_.block_size = 0;
            result_.identity.reset();
        }
        if (logged_in_ && ctx_) {
            phase_ = Phase::logging_out;
            deadline_ = std::min(deadline_, Clock::now() + logout_grace);
            if (ctx_.logout(&callback<Probe, &Probe::on_logged_out>, this)) return;
        }
        done_ = true;
    }

    void on_connected(int status, void *) {
        if (closing() || have_result_) return;
        if (status != SCSI_STATUS_GOOD) {
            return finish(ProbeOutcome::unreachable, fmt::format("cannot connect to {}: {}",
                                                                    target_.portal.to_string(),
                                                                    ctx_.last_error()));
        }
        phase_ = Phase::logging_in;
        if (!ctx_.login(&callback<Probe, &Probe::on_logged_in>, this)) {
            finish(ProbeOutcome::error, "could not send the login request: " + ctx_.last_error());
        }
    }

    void on_logged_in(int status, void *) {
        if (closing() || have_result_) return;
        if (status != SCSI_STATUS_GOOD) return login_failed();
        logged_in_ = true;
        send_test_unit_ready();
    }

    void login_failed() {
        const std::string why = ctx_.last_error();
        const std::string where = fmt::format("{} on {}", target_.iqn, target_.portal.to_string());
        switch (login_status_code(why)) {
        case 0x0201:
            return finish(ProbeOutcome::auth_failed,
                          fmt::format("login to {} refused: CHAP authentication failed{}", where,
                                      options_.chap != nullptr
                                          ? fmt::format(" for user '{}'", options_.chap->username)
                                          : std::string(" (no CHAP credentials were given)")));
        case 0x0202:
            return finish(ProbeOutcome::auth_failed,
                          fmt::format("login to {} refused: initiator {} is not authorized", where,
                                      options_.initiator));
        case 0x0203:
        case 0x0204:
            return finish(ProbeOutcome::target_not_found,
                          fmt::format("the portal {} does not know the target {} ({})", target_.portal.to_string(),
                                      target_.iqn, why));
        default: break;
        }
        if (why.find("CHAP") != std::string::npos || why.find("uthentication") != std::string::npos) {
            return finish(ProbeOutcome::auth_failed, fmt::format("login to {} failed: {}", where, why));
        }
        finish(ProbeOutcome::error, fmt::format("login to {} failed: {}", where, why));
    }

    // Issues a task and keeps it; a task that could not be queued ends the probe.
    void issue(TaskPtr task, const char *what) {
        if (!task) return finish(ProbeOutcome::error, fmt::format("could not send {}: {}", what, ctx_.last_error()));
        inflight_ = std::move(task);
    }

    void send_test_unit_ready() {
        phase_ = Phase::test_unit_ready;
        issue(ctx_.test_unit_ready(lun(), &callback<Probe, &Probe::on_test_unit_ready>, this), "TEST UNIT READY");
    }

    void on_test_unit_ready(int status, void *command_data) {
        TaskPtr task = take_task(command_data);
        if (closing() || have_result_ || !task) return;
        if (status == SCSI_STATUS_GOOD) {
            phase_ = Phase::read_capacity;
            return issue(ctx_.read_capacity16(lun(), &callback<Probe, &Probe::on_read_capacity>, this), "READ CAPACITY(16)");
        }
        if (status == SCSI_STATUS_CHECK_CONDITION) {
            if (task->sense.key == SCSI_SENSE_UNIT_ATTENTION && ++unit_attentions_ < max_unit_attentions) {
                return send_test_unit_ready();
            }
            if (task->sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
                task->sense.ascq == SCSI_SENSE_ASCQ_LOGICAL_UNIT_NOT_SUPPORTED) {
                return finish(ProbeOutcome::lun_unavailable,
                                 fmt::format("target {} has no LUN {}", target_.iqn, target_.lun));
            }
            return finish(ProbeOutcome::lun_unavailable,
                             fmt::format("LUN {} of {} is not ready: {}", target_.lun, target_.iqn,
                                         sense_text(*task)));
        }
        scsi_failed("TEST UNIT READY", status);
    }

    void on_read_capacity(int status, void *command_data) {
        TaskPtr task = take_task(command_data);
        if (closing() || have_result_ || !task) return;
        if (status == SCSI_STATUS_CHECK_CONDITION) {
            // LUN 0 of tgtd (a controller) and other non-disk LUs reject it: nothing to attach there.
            return finish(ProbeOutcome::lun_unavailable,
                             fmt::format("LUN {} of {} is not a usable disk (READ CAPACITY(16): {})", target_.lun,
                                         target_.iqn, sense_text(*task)));
        }
        if (status != SCSI_STATUS_GOOD) return scsi_failed("READ CAPACITY(16)", status);
        const auto *cap = static_cast<const scsi_readcapacity16 *>(scsi_datain_unmarshall(task.get()));
        if (cap == nullptr || cap->block_length == 0) {
            return finish(ProbeOutcome::error, "the READ CAPACITY(16) answer could not be decoded");
        }
        result_.block_size = cap->block_length;
        result_.size_bytes = (cap->returned_lba + 1) * cap->block_length;
        if (!options_.read_identity) return finish(ProbeOutcome::healthy, {});
        send_inquiry(255);
    }

    void send_inquiry(int alloc_len) {
        phase_ = Phase::inquiry;
        inquiry_alloc_ = alloc_len;
        issue(ctx_.inquiry_vpd(lun(), SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION, alloc_len, &callback<Probe, &Probe::on_inquiry>,
                               this),
              "INQUIRY (VPD 0x83)");
    }

    void on_inquiry(int status, void *command_data) {
        TaskPtr task = take_task(command_data);
        if (closing() || have_result_ || !task) return;
        if (status == SCSI_STATUS_CHECK_CONDITION) {
            return finish(ProbeOutcome::error, fmt::format("LUN {} of {} does not give VPD page 0x83: {}",
                                                              target_.lun, target_.iqn, sense_text(*task)));
        }
        if (status != SCSI_STATUS_GOOD) return scsi_failed("INQUIRY (VPD 0x83)", status);
        if (task->datain.size >= 4) {
            const int page_len = ((task->datain.data[2] << 8) | task->datain.data[3]) + 4;
            if (page_len > inquiry_alloc_ && inquiry_alloc_ < 0xffff) {
                return send_inquiry(std::min(page_len, 0xffff));  // the page did not fit: ask for all of it
            }
        }
        const auto *page = static_cast<const scsi_inquiry_device_identification *>(scsi_datain_unmarshall(task.get()));
        if (page == nullptr) return finish(ProbeOutcome::error, "VPD page 0x83 could not be decoded");
        std::vector<Designator> designators;
        for (const scsi_inquiry_device_designator *d = page->designators; d != nullptr; d = d->next) {
            if (d->designator == nullptr || d->designator_length <= 0) continue;
            designators.push_back(Designator{static_cast<int>(d->designator_type), static_cast<int>(d->association),
                                             static_cast<int>(d->code_set),
                                             std::string(d->designator, static_cast<std::size_t>(d->designator_length))});
        }
        result_.identity = lu_identity_from(designators);
        finish(ProbeOutcome::healthy, {});
    }

    void scsi_failed(const char *what, int status) {
        const char *kind = status == SCSI_STATUS_CANCELLED ? "was cancelled"
                           : status == SCSI_STATUS_TIMEOUT ? "timed out"
                                                           : "failed";
        finish(ProbeOutcome::error,
               fmt::format("{} on LUN {} of {} {} (status {:#x}): {}", what, target_.lun, target_.iqn, kind,
                           static_cast<unsigned>(status), ctx_.last_error()));
    }

    void on_logged_out(int, void *) {
        logged_in_ = false;
        done_ = true;
    }

    const request::Target &target_;
    const ProbeOptions &options_;
    ResolvedHost resolved_;
    Clock::duration spent_{};
    Clock::time_point start_{};
    Phase phase_ = Phase::connecting;
    bool logged_in_ = false;
    bool have_result_ = false;
    int unit_attentions_ = 0;
    int inquiry_alloc_ = 0;
    ProbeResult result_;
};


}  // namespace

std::vector<ProbeResult> probe_targets(const std::vector<request::Target> &targets, const ProbeOptions &options) {
    std::vector<const request::Portal *> portals;
    portals.reserve(targets.size());
    for (const auto &target : targets) portals.push_back(&target.portal);
    // Host names first, all at once, under the probe timeout (libiscsi would resolve them without one).
    const auto resolve_start = Clock::now();
    std::vector<ResolvedHost> resolved = resolve_hosts(portals, options.timeout);
    const auto spent = Clock::now() - resolve_start;
    std::vector<std::unique_ptr<Probe>> probes;
    std::vector<Operation *> ops;
    probes.reserve(targets.size());
    ops.reserve(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const bool looked_up = resolved[i].state != ResolvedHost::State::literal;
        probes.push_back(std::make_unique<Probe>(targets[i], options, std::move(resolved[i]),
                                                 looked_up ? spent : Clock::duration::zero()));
        ops.push_back(probes.back().get());
    }
    LoopStats loop_stats;
    run_operations(ops, in_flight_cap(options.max_in_flight), &loop_stats);
    if (options.stats != nullptr) {
        *options.stats = ProbeStats{loop_stats.max_in_flight, loop_stats.peak_in_flight, loop_stats.socket_waits,
                                    loop_stats.wakeups};
    }
    std::vector<ProbeResult> results;
    results.reserve(probes.size());
    for (auto &probe : probes) {
        probe->release();
        results.push_back(probe->take_result());
    }
    return results;
}

}  // namespace ivd::iscsi
