"""Run by packaging/test-packages.sh with the installed packages (python3 -I: nothing from the source tree).

Loads Nova's real LibvirtDriver through Nova's own load_compute_driver from a nova.conf that names the installed
module by its bare name, and checks that nova-rootwrap (as installed) admits the command that starts the
integration's privsep daemon. Prints one "ok: ..." line per check; any failure raises (non-zero exit).

usage: python3 -I nova_installed_check.py DRIVER_DIR SCRATCH_DIR
"""
import os
import sys

NOVA_CONF = """[DEFAULT]
compute_driver = libvirt_volume_modules.LibvirtDriver
state_path = {scratch}
[libvirt]
virt_type = qemu
volume_drivers = iscsi=iscsi_volume_driver.so
[volume_module_iscsi]
path = network
initiator_name = iqn.1993-08.org.debian:01:package-check
state_dir = {scratch}/state
lock_dir = {scratch}/locks
"""


def check_module(driver_dir):
    import volume_driver
    assert volume_driver.__file__.startswith("/usr/lib/python3/dist-packages/"), volume_driver.__file__
    module = volume_driver.load("iscsi_volume_driver.so")
    assert module.path == os.path.join(driver_dir, "iscsi_volume_driver.so"), module.path
    assert module.abi_version == 2, module.abi_version
    print("ok: volume_driver loads %s by its bare name (ABI v%d)" % (module.path, module.abi_version))


def check_nova_driver(driver_dir, scratch):
    conf_path = os.path.join(scratch, "nova.conf")
    with open(conf_path, "w") as f:
        f.write(NOVA_CONF.format(scratch=scratch))
    import nova.conf
    from nova import objects
    from nova.virt import driver as virt_driver
    from nova.virt import virtapi
    objects.register_all()
    nova.conf.CONF(["--config-file", conf_path], project="nova", default_config_files=[])
    drv = virt_driver.load_compute_driver(virtapi.VirtAPI(), None)
    from nova_volume_modules.driver import LibvirtDriver
    assert isinstance(drv, LibvirtDriver), type(drv)
    runner = drv.volume_module_runners["iscsi"]
    assert runner.module.path == os.path.join(driver_dir, "iscsi_volume_driver.so"), runner.module.path
    assert type(drv._get_volume_driver({"driver_volume_type": "iscsi"})).__name__ == "LibvirtModuleVolumeDriver"
    connector = runner.local("connector_properties")
    assert connector["initiator"] == "iqn.1993-08.org.debian:01:package-check", connector
    print("ok: Nova's load_compute_driver gives nova.virt.libvirt_volume_modules.LibvirtDriver serving iscsi with "
          "the installed module")


def check_rootwrap_admits_the_daemon():
    """What nova-compute runs: `sudo nova-rootwrap /etc/nova/rootwrap.conf privsep-helper ...` with the command
    oslo.privsep builds for our context; rootwrap must admit it with the filters installed (none of ours)."""
    from oslo_privsep import priv_context
    from oslo_rootwrap import wrapper
    from nova_volume_modules import privsep
    priv_context.init(root_helper=["sudo", "nova-rootwrap", "/etc/nova/rootwrap.conf"])
    cmd = privsep.vm_pctxt.helper_command("/tmp/tmpab12cd/privsep.sock")
    assert cmd[:3] == ["sudo", "nova-rootwrap", "/etc/nova/rootwrap.conf"], cmd
    userargs = cmd[3:]
    assert userargs[0] == "privsep-helper" and privsep.vm_pctxt.pypath in userargs, userargs
    found = wrapper.match_filter(wrapper.load_filters(["/etc/nova/rootwrap.d"]), userargs,
                                 exec_dirs=["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"])
    print("ok: nova-rootwrap admits the daemon's command (%s) through filter %s"
          % (" ".join(userargs[:1] + userargs[-4:-2]), found.name))


def main():
    driver_dir, scratch = sys.argv[1], sys.argv[2]
    check_module(driver_dir)
    check_nova_driver(driver_dir, scratch)
    check_rootwrap_admits_the_daemon()


if __name__ == "__main__":
    main()
