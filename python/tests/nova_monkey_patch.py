"""pytest plugin (-p nova_monkey_patch): eventlet monkey patching first, as nova-compute does; Nova's libvirt
Host dispatches its events through green threads that block forever on an unpatched queue."""
import nova.monkey_patch  # noqa: F401
