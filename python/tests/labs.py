"""Real tgtd and libvirtd for the Python tests, the way tests/fixtures/{tgtd,libvirt} do it in C++.

TgtdLab: a private tgtd (own control port `-C N`, own IPC socket, a loopback portal of its own); CHAP passwords
go over tgtd's management socket, never through argv. LibvirtLab: the shared libvirtd at qemu:///system (started
only when none answers, under the C++ labs' lock protocol in /run/ivd-libvirt-lab, never stopped here) and one
persistent TCG domain per lab; bytes read through QEMU by exporting the disk's block node over NBD.
"""
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

_serial = 0
# Every tool the labs run answers in well under a second; a hung one fails the test with a TimeoutExpired
# that names it, instead of hanging it.
TOOL_TIMEOUT_S = 60


def _run(argv, **kwargs):
    return subprocess.run(argv, timeout=TOOL_TIMEOUT_S, **kwargs)


def _die_with_parent():
    # As the C++ lab: the daemon dies with the test process, so a killed test never leaves a tgtd behind.
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TgtdLab:
    def __init__(self):
        global _serial
        self.serial = _serial
        _serial += 1
        pid = os.getpid()
        self.control_port = 1000 + (pid * 7 + 5000 + self.serial) % 30000
        self.dir = tempfile.mkdtemp(prefix="ivd-py-tgtd-")
        self.env = dict(os.environ, TGT_IPC_SOCKET=self.dir + "/ipc")
        # 127.A.B.C from the pid, in the upper half of the C++ labs' blocks' neighbourhood: never shared.
        self.host = "127.%d.%d.%d" % (200 + (pid >> 16) % 50, (pid >> 8) & 0xFF, pid & 0xFF)
        self.port = _free_port(self.host)
        self.portal = "%s:%d" % (self.host, self.port)
        self.tids = []
        self.log = open(self.dir + "/tgtd.log", "w")
        self.proc = subprocess.Popen(["tgtd", "-f", "-C", str(self.control_port), "--iscsi",
                                      "portal=" + self.portal], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("tgtd exited at start: " + open(self.dir + "/tgtd.log").read())
            r = _run(self._tgtadm_argv(["--lld", "iscsi", "--op", "show", "--mode", "portal"]),
                     env=self.env, capture_output=True, text=True)
            if r.returncode == 0 and self.portal in r.stdout:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("tgtd not ready in 10 s: " + r.stdout + r.stderr)
            time.sleep(0.02)

    def _tgtadm_argv(self, args):
        return ["tgtadm", "-C", str(self.control_port)] + args

    def tgtadm(self, *args):
        r = _run(self._tgtadm_argv(list(args)), env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("tgtadm %s failed: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r.stdout

    def iqn(self, suffix):
        return "iqn.2003-01.org.ivd-lab:py%d-%d-%s" % (os.getpid(), self.serial, suffix)

    def create_target(self, suffix, initiator_name=None):
        """Every initiator may log in; with initiator_name only that IQN (tgtd: a name ACL and no address ACL,
        since an address ACL of ALL admits everyone whatever the names say)."""
        tid = len(self.tids) + 1
        self.tgtadm("--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", str(tid), "-T", self.iqn(suffix))
        self.tids.append(tid)
        if not initiator_name:
            self.tgtadm("--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", str(tid), "-I", "ALL")
        else:
            self.tgtadm("--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", str(tid), "-Q",
                        initiator_name)
        return tid

    def add_lun(self, tid, lun=1, size=16 << 20):
        path = "%s/t%d-l%d.img" % (self.dir, tid, lun)
        head = ("IVD-PY-LAB pid=%d tid=%d lun=%d\n" % (os.getpid(), tid, lun)).encode()
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(size)
        self.tgtadm("--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", str(tid), "--lun", str(lun),
                    "-b", path)
        return path, head

    def grow_lun(self, tid, lun, path, size):
        """The LU grows on the storage: tgtd reads the size at LU creation, so re-create it over the larger file."""
        self.tgtadm("--lld", "iscsi", "--op", "delete", "--mode", "logicalunit", "--tid", str(tid), "--lun", str(lun))
        with open(path, "r+b") as f:
            f.truncate(size)
        self.tgtadm("--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", str(tid), "--lun", str(lun),
                    "-b", path)

    def add_account(self, user, password):
        """Over tgtd's management socket (tgt 1.0.x usr/tgtadm.h): the password never reaches an argv."""
        body = ("user=%s,password=%s" % (user, password)).encode() + b"\0"
        header_size = struct.calcsize("<ii64sIiQQ6I")
        req = struct.pack("<ii64sIiQQ6I", 7, 0, b"iscsi", header_size + len(body), -1, 0, 0, 0, 0, 0, 0, 0, 0)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect("%s.%d" % (self.env["TGT_IPC_SOCKET"], self.control_port))
            s.sendall(req + body)
            err, length = struct.unpack("<II", s.recv(8, socket.MSG_WAITALL))
            if length > 8:
                s.recv(length - 8, socket.MSG_WAITALL)
        if err:
            raise RuntimeError("tgtd refused the account request (error %d)" % err)

    def bind_account(self, tid, user):
        self.tgtadm("--lld", "iscsi", "--op", "bind", "--mode", "account", "--tid", str(tid), "--user", user)

    def session_count(self, tid):
        out = self.tgtadm("--lld", "iscsi", "--op", "show", "--mode", "conn", "--tid", str(tid))
        return sum(1 for line in out.splitlines() if line.strip().startswith("Session:"))

    def stop(self):
        if self.proc.poll() is None:
            for tid in self.tids:
                _run(self._tgtadm_argv(["--lld", "iscsi", "--op", "delete", "--force", "--mode", "target",
                                        "--tid", str(tid)]), env=self.env, capture_output=True)
            _run(self._tgtadm_argv(["--op", "delete", "--mode", "system"]), env=self.env,
                 capture_output=True)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


STATE_DIR = "/run/ivd-libvirt-lab"
URI = "qemu:///system"


def _lock(name, op):
    os.makedirs(STATE_DIR, exist_ok=True)
    fd = os.open("%s/%s" % (STATE_DIR, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, op)
    return fd


def _virsh_ok():
    return _run(["virsh", "-c", URI, "version"], capture_output=True).returncode == 0


def _ensure_libvirtd():
    """As LibvirtLab::ensure_libvirtd: start libvirtd only when none answers; hold the users lock (shared)."""
    fd = _lock("start.lock", fcntl.LOCK_EX)
    try:
        if not _virsh_ok():
            _run(["groupadd", "-r", "libvirt-qemu"], capture_output=True)
            _run(["useradd", "-r", "-g", "libvirt-qemu", "-d", "/var/lib/libvirt", "-M", "-s",
                  "/usr/sbin/nologin", "libvirt-qemu"], capture_output=True)
            conf = "/etc/libvirt/qemu.conf"
            text = open(conf).read() if os.path.exists(conf) else ""
            keep = [l for l in text.splitlines() if not l.split("=")[0].strip() in ("user", "group", "stdio_handler")]
            with open(conf + ".ivd-py.tmp", "w") as f:
                f.write("\n".join(keep + ['user = "root"', 'group = "root"', 'stdio_handler = "file"']) + "\n")
            os.rename(conf + ".ivd-py.tmp", conf)
            _run(["/usr/sbin/libvirtd", "--daemon"], check=True)
            deadline = time.monotonic() + 60
            while not _virsh_ok():
                if time.monotonic() > deadline:
                    raise RuntimeError("libvirtd does not answer after 60 s")
                time.sleep(0.1)
    finally:
        os.close(fd)
    return _lock("users.lock", fcntl.LOCK_SH)


DOMAIN_XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><features><acpi/></features><on_crash>destroy</on_crash>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<controller type='scsi' index='0' model='virtio-scsi'/><memballoon model='none'/></devices></domain>"""


class LibvirtLab:
    def __init__(self):
        import libvirt
        global _serial
        self.users_fd = _ensure_libvirtd()
        _serial += 1
        # "ivd-lab-<pid>-..." so the C++ labs' orphan sweep removes it if this process dies.
        self.name = "ivd-lab-%d-py%d" % (os.getpid(), _serial)
        self.dir = tempfile.mkdtemp(prefix="ivd-py-libvirt-")
        self.conn = libvirt.open(URI)
        self.dom = self.conn.defineXML(DOMAIN_XML.format(name=self.name))
        self.dom.create()
        self.uuid = self.dom.UUIDString()
        self._nbd = 0

    def xml(self):
        return self.dom.XMLDesc(0)

    def disks(self):
        return ET.fromstring(self.xml()).findall("./devices/disk")

    def disk(self, dev):
        for d in self.disks():
            if d.find("target").get("dev") == dev:
                return d
        return None

    def persistent_disk(self, dev):
        import libvirt
        root = ET.fromstring(self.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        return [d for d in root.findall("./devices/disk") if d.find("target").get("dev") == dev]

    def qmp(self, cmd):
        import libvirt_qemu
        reply = json.loads(libvirt_qemu.qemuMonitorCommand(self.dom, json.dumps(cmd), 0))
        if "error" in reply:
            raise RuntimeError("QMP %s -> %s" % (cmd, reply))
        return reply

    def read_bytes(self, dev, offset, length):
        """Bytes of disk `dev` read THROUGH QEMU: its node exported over NBD, read with qemu-io."""
        disk = self.disk(dev)
        alias = disk.find("alias").get("name")
        node = None
        for b in self.qmp({"execute": "query-block"})["return"]:
            if b.get("qdev") == alias or b.get("device") == "drive-" + alias:
                node = b["inserted"]["node-name"]
        if node is None:
            node = "libvirt-%s-format" % disk.find("source").get("index")
        self._nbd += 1
        sock = "%s/nbd-%d.sock" % (self.dir, self._nbd)
        name = "ivd-read-%d" % self._nbd
        self.qmp({"execute": "nbd-server-start", "arguments": {"addr": {"type": "unix", "data": {"path": sock}}}})
        try:
            self.qmp({"execute": "block-export-add", "arguments": {"type": "nbd", "id": name, "node-name": node,
                                                                   "name": name, "writable": False}})
            try:
                r = _run(["qemu-io", "-r", "-f", "raw", "nbd+unix:///%s?socket=%s" % (name, sock), "-c",
                          "read -v %d %d" % (offset, length)], capture_output=True, text=True)
            finally:
                self.qmp({"execute": "block-export-del", "arguments": {"id": name}})
        finally:
            self.qmp({"execute": "nbd-server-stop"})
        if r.returncode != 0 or "read failed" in r.stdout:
            raise RuntimeError("qemu-io read failed: %s %s" % (r.stdout, r.stderr))
        data = bytearray()
        for line in r.stdout.splitlines():
            if len(line) > 10 and line[8] == ":":
                n = min(16, offset + length - int(line[:8], 16))  # "%08x:  " then n times "%02x "
                data += bytes(int(x, 16) for x in line[10:10 + 3 * n].split())
        return bytes(data[:length])

    def secrets(self):
        return self.conn.listAllSecrets(0)

    def secrets_for(self, volume_id):
        """Secrets whose usage names this volume (libvirtd is shared: other tests add and remove their own)."""
        return [s for s in self.secrets() if volume_id in (s.usageID() or "")]

    def stop(self):
        try:
            if self.dom.isActive():
                self.dom.destroy()
            self.dom.undefine()
        finally:
            self.conn.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            os.close(self.users_fd)
