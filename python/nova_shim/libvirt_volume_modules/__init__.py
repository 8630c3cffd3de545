"""nova.virt.libvirt_volume_modules: what `compute_driver = libvirt_volume_modules.LibvirtDriver` imports.
Installed into nova/virt/ (Nova loads compute drivers only from that package); the code lives in
nova_volume_modules."""
from nova_volume_modules.driver import LibvirtDriver  # noqa: F401

__all__ = ["LibvirtDriver"]
