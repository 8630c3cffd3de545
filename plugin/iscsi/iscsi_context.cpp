#include "iscsi/iscsi_context.hpp"

namespace ivd::iscsi {

Result<Context> Context::create(const std::string &initiator) {
    iscsi_context *ctx = iscsi_create_context(initiator.c_str());
    if (ctx == nullptr) return make_error(Status::no_memory, "libiscsi could not create a context");
    Context context(ctx);
    iscsi_set_noautoreconnect(ctx, 1);
    return context;
}

Context &Context::operator=(Context &&other) noexcept {
    if (this != &other) {
        reset();
        ctx_ = other.ctx_;
        other.ctx_ = nullptr;
    }
    return *this;
}

void Context::reset() noexcept {
    if (ctx_ == nullptr) return;
    iscsi_context *ctx = ctx_;
    ctx_ = nullptr;  // callbacks fired during destroy must see a context that is going away
    iscsi_destroy_context(ctx);
}

std::string Context::last_error() const {
    const char *text = ctx_ != nullptr ? iscsi_get_error(ctx_) : nullptr;
    return text != nullptr && *text != '\0' ? std::string(text) : std::string("unknown libiscsi error");
}

Result<void> Context::set_target_name(const std::string &iqn) {
    if (iscsi_set_targetname(ctx_, iqn.c_str()) != 0) {
        return make_error(Status::invalid_argument, "libiscsi refused the target name: " + last_error());
    }
    if (iscsi_set_session_type(ctx_, ISCSI_SESSION_NORMAL) != 0) {
        return make_error(Status::internal, "libiscsi refused the session type: " + last_error());
    }
    return {};
}

Result<void> Context::set_discovery_session() {
    if (iscsi_set_session_type(ctx_, ISCSI_SESSION_DISCOVERY) != 0) {
        return make_error(Status::internal, "libiscsi refused the discovery session type: " + last_error());
    }
    return {};
}

Result<void> Context::set_chap(const std::string &username, const SecretString &password) {
    // SecretString keeps a NUL after its bytes, so reveal().data() is a C string; libiscsi copies it into the
    // context, which iscsi_destroy_context() zeroes before freeing.
    const char *bytes = password.empty() ? "" : password.reveal().data();
    if (iscsi_set_initiator_username_pwd(ctx_, username.c_str(), bytes) != 0) {
        return make_error(Status::invalid_argument, "libiscsi refused the CHAP user name or password length");
    }
    return {};
}

bool Context::connect(const std::string &portal, iscsi_command_cb cb, void *data) noexcept {
    return iscsi_connect_async(ctx_, portal.c_str(), cb, data) == 0;
}

bool Context::login(iscsi_command_cb cb, void *data) noexcept { return iscsi_login_async(ctx_, cb, data) == 0; }

bool Context::logout(iscsi_command_cb cb, void *data) noexcept { return iscsi_logout_async(ctx_, cb, data) == 0; }

bool Context::discovery(iscsi_command_cb cb, void *data) noexcept {
    return iscsi_discovery_async(ctx_, cb, data) == 0;
}

TaskPtr Context::test_unit_ready(int lun, iscsi_command_cb cb, void *data) noexcept {
    return TaskPtr(iscsi_testunitready_task(ctx_, lun, cb, data));
}

TaskPtr Context::read_capacity16(int lun, iscsi_command_cb cb, void *data) noexcept {
    return TaskPtr(iscsi_readcapacity16_task(ctx_, lun, cb, data));
}

TaskPtr Context::inquiry_vpd(int lun, int page, int alloc_len, iscsi_command_cb cb, void *data) noexcept {
    return TaskPtr(iscsi_inquiry_task(ctx_, lun, 1, page, alloc_len, cb, data));
}

}  // namespace ivd::iscsi
