// The event loop libvirt needs for keepalive (virConnectSetKeepAlive): the host's, when it registered one;
// otherwise libvirt's default implementation, registered once per process and run by one thread of ours.
#pragma once

namespace ivd::libvirt {

// True when an event loop implementation is registered (the host's or ours) and keepalive can be used.
// The first call registers libvirt's default implementation if nobody did, and starts the thread that runs it.
// libvirt cannot unregister an implementation, so from then on this module stays loaded (dlclose leaves it
// mapped, RTLD_NODELETE) and keeps running the loop until the process exits: otherwise every libvirt
// connection of the process (the host's too) would depend on a loop nobody runs.
bool ensure_event_loop() noexcept;

// Keeps this module mapped until the process exits (dlclose becomes a no-op), for threads of ours that may
// still be running when the host unloads the driver. True when it is pinned: code linked into the executable
// always is; false when the loader refused, and then a thread of ours must not outlive an unload.
bool pin_this_module() noexcept;

}  // namespace ivd::libvirt
