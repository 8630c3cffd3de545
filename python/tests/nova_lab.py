"""Nova's real LibvirtDriver, loaded by nova.virt.driver.load_compute_driver from a nova.conf like the one in
README ("Using it with OpenStack Nova").

Stubbed, because they need Nova's database or message bus and nothing else: objects.Instance.save,
LibvirtDriver._build_device_metadata (reads BDMs from the database), LibvirtDriver._set_host_enabled (updates
the compute service record), LibvirtDriver._register_all_undefined_instance_details (init_host: lists the
host's instances from the database). Everything else is Nova's own code against the real libvirtd.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
SHIM_DIR = os.path.join(PYTHON_DIR, "nova_shim")

NOVA_CONF = """[DEFAULT]
compute_driver = libvirt_volume_modules.LibvirtDriver
host = ivd-py-compute
state_path = {dir}
instances_path = {dir}/instances
my_ip = 127.0.0.1

[libvirt]
virt_type = qemu
connection_uri = qemu:///system
volume_drivers = iscsi={module_name}
volume_driver_dir = {module_dir}
volume_module_privsep = {privsep}
# Bounded for the lab (Nova: 8 x 20 s per detach): the device-removed event comes in milliseconds here; a lost
# one costs 10 s, a device that never goes fails with DeviceDetachFailed in 30 s, well inside a test's deadline.
device_detach_attempts = 3
device_detach_timeout = 10

[volume_module_iscsi]
path = network
initiator_name = {initiator}
probe_timeout_ms = 1000
state_dir = {dir}/ivd-state
lock_dir = {dir}/ivd-locks

[volume_modules_privileged]
helper_command = env PYTHONPATH={pythonpath} privsep-helper --config-file {dir}/nova.conf
"""


def write_conf(directory, module_path, initiator, privsep=True):
    os.makedirs(directory + "/instances", exist_ok=True)
    text = NOVA_CONF.format(dir=directory, module_name=os.path.basename(module_path),
                            module_dir=os.path.dirname(module_path), initiator=initiator,
                            privsep="true" if privsep else "false", pythonpath=PYTHON_DIR)
    with open(directory + "/nova.conf", "w") as f:
        f.write(text)
    return directory + "/nova.conf"


def configure(conf_path):
    """Parses nova.conf as nova-compute does and makes nova.virt.libvirt_volume_modules importable."""
    import nova.conf
    import nova.virt
    from nova import objects
    objects.register_all()
    nova.conf.CONF(["--config-file", conf_path], project="nova", default_config_files=[])
    if SHIM_DIR not in nova.virt.__path__:
        nova.virt.__path__.append(SHIM_DIR)  # what the package install does by placing the files in nova/virt/


def stub_db():
    from nova import objects
    from nova.virt.libvirt import driver as libvirt_driver
    objects.Instance.save = lambda self, *a, **k: None
    libvirt_driver.LibvirtDriver._build_device_metadata = lambda self, context, instance: None
    libvirt_driver.LibvirtDriver._set_host_enabled = lambda self, enabled, reason=None: None
    libvirt_driver.LibvirtDriver._register_all_undefined_instance_details = lambda self: None


def load_driver():
    """A fresh driver instance, as a nova-compute start makes it."""
    from nova.virt import driver as virt_driver
    from nova.virt import virtapi
    drv = virt_driver.load_compute_driver(virtapi.VirtAPI(), None)
    drv._host.initialize()  # the libvirt event thread (detach waits for the device-removed event)
    return drv


def instance_for(domain_uuid):
    from nova import objects
    return objects.Instance(uuid=domain_uuid, id=1, host="ivd-py-compute", flavor=objects.Flavor(extra_specs={}),
                            system_metadata={}, image_ref="", vm_state="active", power_state=1)
