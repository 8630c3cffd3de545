"""Nova integration of volume driver modules: nova.virt.libvirt_volume_modules.LibvirtDriver serves the
driver_volume_types named in `[libvirt] volume_drivers` through modules loaded with the volume_driver binding.
The package nova.virt.libvirt_volume_modules (python/nova_shim) re-exports it, since Nova imports compute
drivers only from nova.virt."""
