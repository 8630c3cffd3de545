// SendTargets discovery on one portal (libiscsi's discovery session), with discovery CHAP, under one deadline
// that includes resolving the portal's host name.
#include "iscsi/send_targets.hpp"

#include "iscsi/iscsi_context.hpp"
#include "iscsi/libiscsi_support.hpp"
#include "iscsi/operation_loop.hpp"
#include "iscsi/resolve.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <optional>

namespace ivd::iscsi {

namespace {

class Discovery final : public Operation {
public:
    // `connect_to`: `portal` with its host name already resolved (see resolve_hosts); `spent`: how long that took.
    Discovery(const request::Portal &portal, request::Portal connect_to, const std::string &initiator,
              const request::ChapCredentials *chap, std::chrono::milliseconds timeout, Clock::duration spent)
        : portal_(portal), connect_to_(std::move(connect_to)), initiator_(initiator), chap_(chap), timeout_(timeout),
          spent_(spent) {}

    void start() override {
        deadline_ = Clock::now() - spent_ + timeout_;
        if (initiator_.empty()) return fail(Status::invalid_argument, "no initiator name to log in with");
        auto ctx = Context::create(initiator_);
        if (!ctx) return fail(ctx.error().status, ctx.error().message);
        ctx_ = std::move(ctx.value());
        if (auto r = ctx_.set_discovery_session(); !r) return fail(r.error().status, r.error().message);
        if (chap_ != nullptr) {
            if (auto r = ctx_.set_chap(chap_->username, chap_->password); !r) {
                return fail(r.error().status, r.error().message);
            }
        }
        errno = 0;
        if (!ctx_.connect(libiscsi_portal(connect_to_), &callback<Discovery, &Discovery::on_connected>, this)) {
            const int err = errno;
            std::string why = fmt::format("cannot connect to {}: {}", portal_.to_string(), ctx_.last_error());
            if (wait_for_socket_if_exhausted(err, why)) return;
            fail(Status::unreachable, std::move(why));
        }
    }

    Result<std::vector<DiscoveredTarget>> take_result() {
        if (error_) return std::move(*error_);
        if (!have_result_) return make_error(Status::internal, "discovery ended without an answer");
        return std::move(targets_);
    }

    void on_deadline() override {
        if (have_result_) {
            done_ = true;
            return;
        }
        fail(Status::timeout, fmt::format("SendTargets discovery on {} got no answer within {} ms while {}",
                                          portal_.to_string(), timeout_.count(), step_));
    }

    void on_service_error(const std::string &why) override {
        logged_in_ = false;
        if (have_result_) {
            done_ = true;
            return;
        }
        fail(connected_ ? Status::backend : Status::unreachable,
             fmt::format("SendTargets discovery on {} failed while {}: {}", portal_.to_string(), step_, why));
    }

    void on_cannot_start(const std::string &why) override {
        fail(Status::internal, fmt::format("SendTargets discovery on {} could not run: {}", portal_.to_string(), why));
    }

    void out_of_memory() noexcept override {
        if (!have_result_) {
            have_result_ = true;
            error_.emplace();
            error_->status = Status::no_memory;
            error_->message = "out of memory";  // short enough not to allocate
        }
        done_ = true;
    }

    // libiscsi completions arrive through callback<>, which calls the private on_* handlers.
    template <class T, void (T::*Handler)(int, void *)>
    friend void iscsi::callback(iscsi_context *, int, void *, void *) noexcept;

private:
    bool closing() const noexcept { return !ctx_; }

    void fail(Status status, std::string message) {
        if (have_result_) return;
        have_result_ = true;
        error_ = make_error(status, scrub(std::move(message), chap_));
        done_ = true;
    }

    void on_connected(int status, void *) {
        if (closing() || have_result_) return;
        if (status != SCSI_STATUS_GOOD) {
            return fail(Status::unreachable,
                           fmt::format("cannot connect to {}: {}", portal_.to_string(), ctx_.last_error()));
        }
        connected_ = true;
        step_ = "logging in";
        if (!ctx_.login(&callback<Discovery, &Discovery::on_logged_in>, this)) {
            fail(Status::backend, "could not send the discovery login: " + ctx_.last_error());
        }
    }

    void on_logged_in(int status, void *) {
        if (closing() || have_result_) return;
        if (status != SCSI_STATUS_GOOD) {
            const std::string why = ctx_.last_error();
            const int code = login_status_code(why);
            if (code == 0x0201 || code == 0x0202 || why.find("CHAP") != std::string::npos) {
                return fail(Status::auth,
                               fmt::format("discovery login on {} refused: authentication failed{}",
                                           portal_.to_string(),
                                           chap_ != nullptr ? fmt::format(" for user '{}'", chap_->username)
                                                               : std::string(" (no discovery CHAP was given)")));
            }
            return fail(Status::backend,
                           fmt::format("discovery login on {} failed: {}", portal_.to_string(), why));
        }
        logged_in_ = true;
        step_ = "waiting for SendTargets";
        if (!ctx_.discovery(&callback<Discovery, &Discovery::on_discovered>, this)) {
            fail(Status::backend, "could not send SendTargets: " + ctx_.last_error());
        }
    }

    void on_discovered(int status, void *command_data) {
        if (closing() || have_result_) return;
        if (status != SCSI_STATUS_GOOD) {
            return fail(Status::backend,
                           fmt::format("SendTargets on {} failed: {}", portal_.to_string(), ctx_.last_error()));
        }
        // The list is libiscsi's and only valid during this callback: copy it out now.
        for (auto *a = static_cast<const iscsi_discovery_address *>(command_data); a != nullptr; a = a->next) {
            if (a->target_name == nullptr) continue;
            DiscoveredTarget target{a->target_name, {}, {}};
            for (const iscsi_target_portal *tp = a->portals; tp != nullptr; tp = tp->next) {
                if (tp->portal == nullptr) continue;
                std::string_view text(tp->portal);
                int tpgt = -1;
                if (const auto comma = text.rfind(','); comma != std::string_view::npos) {
                    const std::string_view tag = text.substr(comma + 1);
                    if (!tag.empty() && tag.size() <= 5 &&
                        std::all_of(tag.begin(), tag.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                        tpgt = std::stoi(std::string(tag));
                    }
                    text = text.substr(0, comma);
                }
                // A portal we cannot parse is left out: the others of the target are still worth having.
                if (auto parsed = request::parse_portal(text)) {
                    target.portals.push_back(std::move(parsed).value());
                    target.tpgts.push_back(tpgt);
                }
            }
            targets_.push_back(std::move(target));
        }
        have_result_ = true;
        step_ = "logging out";
        deadline_ = std::min(deadline_, Clock::now() + logout_grace);
        if (!ctx_.logout(&callback<Discovery, &Discovery::on_logged_out>, this)) done_ = true;
    }

    void on_logged_out(int, void *) {
        logged_in_ = false;
        done_ = true;
    }

    const request::Portal &portal_;
    request::Portal connect_to_;
    const std::string &initiator_;
    const request::ChapCredentials *chap_;
    std::chrono::milliseconds timeout_;
    Clock::duration spent_{};
    const char *step_ = "connecting (TCP)";
    bool connected_ = false;
    bool logged_in_ = false;
    bool have_result_ = false;
    std::optional<Error> error_;
    std::vector<DiscoveredTarget> targets_;
};

}  // namespace

Result<std::vector<DiscoveredTarget>> send_targets(const request::Portal &portal, const std::string &initiator,
                                                   const request::ChapCredentials *discovery_chap,
                                                   std::chrono::milliseconds timeout) {
    const auto resolve_start = Clock::now();
    const ResolvedHost resolved = resolve_hosts({&portal}, timeout).front();
    const auto spent = Clock::now() - resolve_start;
    if (resolved.state == ResolvedHost::State::timed_out || resolved.state == ResolvedHost::State::failed) {
        return make_error(resolved.state == ResolvedHost::State::timed_out ? Status::timeout : Status::unreachable,
                          fmt::format("SendTargets discovery on {}: {}", portal.to_string(), resolved.problem));
    }
    const bool looked_up = resolved.state == ResolvedHost::State::resolved;
    Discovery discovery(portal, connectable(portal, resolved), initiator, discovery_chap, timeout,
                        looked_up ? spent : Clock::duration::zero());
    Operation *const op = &discovery;
    run_operations({&op, 1}, 1);
    discovery.release();
    return discovery.take_result();
}

}  // namespace ivd::iscsi
