// RAII over libiscsi's context and SCSI tasks, used only inside plugin/iscsi: no raw handle leaves this room.
#pragma once

#include "core/error.hpp"
#include "core/secret.hpp"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <memory>
#include <string>

namespace ivd::iscsi {

struct TaskDeleter {
    void operator()(scsi_task *task) const noexcept { scsi_free_scsi_task(task); }
};
// A SCSI task from libiscsi; the caller of an iscsi_*_task() owns it until freed.
using TaskPtr = std::unique_ptr<scsi_task, TaskDeleter>;

// One iSCSI session's context. Only one connection, never auto-reconnecting: a probe that loses its connection
// has its answer, retrying would only hide it.
class Context {
public:
    Context() = default;
    static Result<Context> create(const std::string &initiator);

    Context(Context &&other) noexcept : ctx_(other.ctx_) { other.ctx_ = nullptr; }
    Context &operator=(Context &&other) noexcept;
    Context(const Context &) = delete;
    Context &operator=(const Context &) = delete;
    ~Context() { reset(); }

    // Destroys the context, closing its socket. libiscsi may call pending callbacks (as cancelled) from here.
    void reset() noexcept;
    explicit operator bool() const noexcept { return ctx_ != nullptr; }

    // libiscsi's last error text (never contains CHAP secrets: libiscsi does not format them).
    std::string last_error() const;

    Result<void> set_target_name(const std::string &iqn);
    Result<void> set_discovery_session();
    Result<void> set_chap(const std::string &username, const SecretString &password);

    int fd() const noexcept { return iscsi_get_fd(ctx_); }
    int which_events() const noexcept { return iscsi_which_events(ctx_); }
    int service(int revents) noexcept { return iscsi_service(ctx_, revents); }

    // Each returns false (see last_error()) when the request could not be queued; the callback then never runs.
    bool connect(const std::string &portal, iscsi_command_cb cb, void *data) noexcept;
    bool login(iscsi_command_cb cb, void *data) noexcept;
    bool logout(iscsi_command_cb cb, void *data) noexcept;
    bool discovery(iscsi_command_cb cb, void *data) noexcept;
    TaskPtr test_unit_ready(int lun, iscsi_command_cb cb, void *data) noexcept;
    TaskPtr read_capacity16(int lun, iscsi_command_cb cb, void *data) noexcept;
    TaskPtr inquiry_vpd(int lun, int page, int alloc_len, iscsi_command_cb cb, void *data) noexcept;

private:
    explicit Context(iscsi_context *ctx) : ctx_(ctx) {}
    iscsi_context *ctx_ = nullptr;
};

}  // namespace ivd::iscsi
