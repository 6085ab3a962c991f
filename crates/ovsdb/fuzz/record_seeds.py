#!/usr/bin/env python3
"""Records real ovsdb-server byte streams as seeds for the ovsdb fuzz targets.

Starts ovsdb-server and a userspace ovs-vswitchd in a network namespace of its own with
state in a temp dir (as testbed::TestSwitch does), adds the netdev OpenFlow15 bridge
br-int, then opens JSON-RPC sessions on the database socket that send what weir's client
sends (monitor / monitor_cond / monitor_cond_since with weir's monitor ids and columns,
echo, list_dbs), changes the database with ovs-vsctl while each session listens, and
saves every byte the server sent. Daemons are stopped by pid, the namespace deleted.

Usage (as root): record_seeds.py [FUZZ_DIR]   (default: this script's directory)
Writes seeds/framing/seed-<session> (read sizes + stream) and seeds/monitor_update/
seed-<session> (session selector + stream) under FUZZ_DIR, and the same for a few
streams written from ovsdb-server(7) where a standalone server cannot produce them
(non-zero last-txn-ids, a monitor_cond_since resume with found=true, a server echo).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# The Interface columns weir's InterfaceMonitor requests (crates/ovsdb/src/interfaces.rs).
INTERFACE_COLUMNS = ["name", "type", "options", "ofport", "ofport_request", "mtu_request", "mtu",
                     "mac_in_use", "error", "link_state", "external_ids"]
# The columns `weir ovs show` monitors (crates/ovsdb/src/show.rs), plus Mirror.
SHOW_REQUESTS = {
    "Open_vSwitch": {"columns": ["manager_options", "bridges", "ovs_version"]},
    "Bridge": {"columns": ["name", "controller", "fail_mode", "datapath_type", "ports", "mirrors",
                           "protocols", "other_config", "external_ids"]},
    "Port": {"columns": ["name", "tag", "trunks", "interfaces", "external_ids"]},
    "Interface": {"columns": ["name", "type", "options", "error", "bfd_status", "ofport"]},
    "Controller": {"columns": ["target", "is_connected"]},
    "Manager": {"columns": ["target", "is_connected"]},
    "Mirror": {"columns": ["name", "select_all", "select_src_port", "select_dst_port",
                           "output_port", "external_ids"]},
}
ZERO = "00000000-0000-0000-0000-000000000000"


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


class Switch:
    def __init__(self):
        self.ns = f"wfz{os.getpid()}"
        self.tmp = tempfile.TemporaryDirectory(prefix=f"{self.ns}-")
        self.dir = self.tmp.name
        run("ip", "netns", "add", self.ns)
        run("ip", "-n", self.ns, "link", "set", "lo", "up")
        env = [f"{v}={self.dir}" for v in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR")]
        inns = ["ip", "netns", "exec", self.ns, "env", *env]
        d = self.dir
        run("ovsdb-tool", "create", f"{d}/conf.db")
        run(*inns, "ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options", f"--pidfile={d}/ovsdb-server.pid",
            f"--unixctl={d}/ovsdb-server.ctl", f"--log-file={d}/ovsdb-server.log", "-vconsole:off",
            "--detach", "--no-chdir")
        self.vsctl("--no-wait", "init")
        run(*inns, "ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/ovs-vswitchd.pid",
            f"--unixctl={d}/ovs-vswitchd.ctl", f"--log-file={d}/ovs-vswitchd.log", "-vconsole:off",
            "--detach", "--no-chdir")
        self.vsctl("--may-exist", "add-br", "br-int", "--", "set", "bridge", "br-int",
                   "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow15",
                   "other_config:disable-in-band=true")

    @property
    def db_socket(self):
        return f"{self.dir}/db.sock"

    def vsctl(self, *args):
        return run("ovs-vsctl", f"--db=unix:{self.dir}/db.sock", *args)

    def stop(self):
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            try:
                pid = int(open(f"{self.dir}/{daemon}.pid").read().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", self.ns], check=False)
        self.tmp.cleanup()


class Session:
    """One JSON-RPC connection; keeps every byte the server sends."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.received = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.next_id = 1

    def _read(self):
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return
            self.received += chunk

    def call(self, method, params):
        msg = {"id": self.next_id, "method": method, "params": params}
        self.next_id += 1
        self.sock.sendall(json.dumps(msg, separators=(",", ":")).encode())
        time.sleep(0.3)

    def close(self):
        time.sleep(0.5)
        self.sock.shutdown(socket.SHUT_RDWR)
        self.reader.join(5)
        self.sock.close()
        return bytes(self.received)


def last_txn_id(stream):
    """The last transaction id of an update3 stream or monitor_cond_since reply."""
    last = None
    dec = json.JSONDecoder()
    text, i = stream.decode(), 0
    while i < len(text):
        v, i = dec.raw_decode(text, i)
        if v.get("method") == "update3":
            last = v["params"][1]
        elif isinstance(v.get("result"), list) and len(v["result"]) == 3:
            last = v["result"][1]
    return last


# Written from ovsdb-server(7) §4.1.12-4.1.16 and RFC 7047 §4.1.11: what a clustered server
# sends (a standalone one always reports the zero last-txn-id and never finds it).
TXN1 = "6f1c2d3e-4b5a-4978-8a9b-0c1d2e3f4a5b"
TXN2 = "7a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d"
IFACE = "e4ee5538-6c5e-4234-9e11-f0f0f5b1163c"
DOC_STREAMS = {
    "cond_since_resume_found": (0x0a, [
        {"id": 2, "result": [False, TXN1, {"Interface": {IFACE: {"initial": {
            "name": "pod-a", "type": "internal", "ofport": 10,
            "external_ids": ["map", [["k8s.pod", "default/a"], ["ip", "10.0.0.10"]]]}}}}],
         "error": None},
        {"id": None, "method": "update3", "params": ["weir-monitor-1", TXN2, {"Interface": {IFACE: {
            "modify": {"external_ids": ["map", [["ip", "10.0.0.11"]]], "mtu_request": 1400}}}}]},
        {"id": "echo", "method": "echo", "params": []},
        {"id": 3, "result": [True, TXN2, {"Interface": {IFACE: {"modify": {"ofport": 11}}}}],
         "error": None},
        {"id": None, "method": "update3", "params": ["weir-monitor-1", TXN1, {"Interface": {IFACE: {
            "delete": None}}}]},
    ]),
    "update2_set_and_map_diffs": (0x01, [
        {"id": 1, "result": {"Bridge": {IFACE: {"initial": {
            "name": "br-int", "ports": ["set", [["uuid", TXN1], ["uuid", TXN2]]],
            "other_config": ["map", [["disable-in-band", "true"]]], "flow_tables": ["map", [[0, ["uuid", TXN1]]]]}}}},
         "error": None},
        {"id": None, "method": "update2", "params": ["weir-monitor-2", {"Bridge": {IFACE: {"modify": {
            "ports": ["uuid", TXN1], "other_config": ["map", [["disable-in-band", "true"], ["hwaddr", "x"]]],
            "fail_mode": "secure", "protocols": ["set", ["OpenFlow15", "OpenFlow14"]],
            "datapath_type": "netdev", "mcast_snooping_enable": True}}}}]},
    ]),
}


def settle():
    time.sleep(0.7)


def record(out):
    sw = Switch()
    try:
        time.sleep(1)
        # weir's InterfaceMonitor: monitor_cond_since on Interface, pods coming and going.
        s = Session(sw.db_socket)
        s.call("list_dbs", [])
        s.call("monitor_cond_since", ["Open_vSwitch", "weir-monitor-1",
                                      {"Interface": {"columns": INTERFACE_COLUMNS}}, ZERO])
        sw.vsctl("add-port", "br-int", "pod-a", "--", "set", "Interface", "pod-a", "type=internal",
                 "ofport_request=10", "external_ids:k8s.pod=default/a",
                 "external_ids:ip=10.0.0.10", "external_ids:attached-mac=6a:2c:11:00:00:0a")
        settle()
        sw.vsctl("set", "Interface", "pod-a", "external_ids:ip=10.0.0.11", "mtu_request=1400")
        settle()
        sw.vsctl("add-port", "br-int", "vx0", "--", "set", "Interface", "vx0", "type=vxlan",
                 "options:remote_ip=192.0.2.2", "options:key=flow", "options:dst_port=4790")
        settle()
        sw.vsctl("add-port", "br-int", "missing0", "--", "set", "Interface", "missing0", "type=system")
        settle()
        s.call("echo", ["weir"])
        # Answers weir's other calls get: a transact result, an error, a small schema.
        s.call("transact", ["Open_vSwitch", {"op": "select", "table": "Bridge", "where": [],
                                             "columns": ["name", "ports", "external_ids"]}])
        s.call("transact", ["Open_vSwitch", {"op": "insert", "table": "Bridge", "row": {"name": 5}}])
        s.call("monitor_cond", ["Open_vSwitch", "weir-monitor-9", {"No_Such_Table": {}}])
        s.call("get_schema", ["_Server"])
        sw.vsctl("remove", "Interface", "pod-a", "external_ids", "ip")
        settle()
        sw.vsctl("del-port", "br-int", "pod-a")
        settle()
        cond_since = s.close()
        open(f"{out}/monitor_cond_since.stream", "wb").write(cond_since)

        # Changes while disconnected, then a reconnect from the last transaction seen: the
        # reply has found=true and only what changed since.
        sw.vsctl("add-port", "br-int", "pod-b", "--", "set", "Interface", "pod-b", "type=internal",
                 "external_ids:k8s.pod=default/b")
        sw.vsctl("del-port", "br-int", "missing0")
        settle()
        s = Session(sw.db_socket)
        s.call("monitor_cond_since", ["Open_vSwitch", "weir-monitor-1",
                                      {"Interface": {"columns": INTERFACE_COLUMNS}},
                                      last_txn_id(cond_since)])
        sw.vsctl("set", "Interface", "pod-b", "external_ids:k8s.pod=default/b2")
        settle()
        open(f"{out}/monitor_cond_since_resume.stream", "wb").write(s.close())

        # `weir ovs show`-style monitor_cond of several tables, with a `where` on Port, while
        # controllers, managers, VLAN tags and mirrors change.
        s = Session(sw.db_socket)
        reqs = dict(SHOW_REQUESTS)
        reqs["Port"] = dict(SHOW_REQUESTS["Port"], where=[["name", "!=", "vx0"]])
        s.call("monitor_cond", ["Open_vSwitch", "weir-monitor-2", reqs])
        sw.vsctl("set-controller", "br-int", "tcp:127.0.0.1:6653", "punix:/tmp/weir-fuzz.sock")
        settle()
        sw.vsctl("add-port", "br-int", "tap1", "tag=7", "--", "set", "Interface", "tap1", "type=internal")
        settle()
        sw.vsctl("set", "Port", "tap1", "trunks=10,20,30", "external_ids:owner=weir")
        settle()
        sw.vsctl("--", "--id=@p", "get", "Port", "tap1", "--", "--id=@m", "create", "Mirror",
                 "name=m0", "select_src_port=@p", "output_port=@p", "external_ids:weir=1",
                 "--", "add", "Bridge", "br-int", "mirrors", "@m")
        settle()
        sw.vsctl("set-manager", "ptcp:0:127.0.0.1")
        settle()
        sw.vsctl("clear", "Bridge", "br-int", "mirrors")
        settle()
        sw.vsctl("del-controller", "br-int")
        settle()
        sw.vsctl("del-manager")
        settle()
        open(f"{out}/monitor_cond.stream", "wb").write(s.close())

        # RFC 7047 monitor (`update` notifications with whole rows and "old" columns).
        s = Session(sw.db_socket)
        s.call("monitor", ["Open_vSwitch", "weir-monitor-3", {
            "Bridge": {"columns": ["name", "ports", "fail_mode", "other_config"]},
            "Port": {"columns": ["name", "interfaces", "tag"]},
            "Interface": [{"columns": ["name", "type", "ofport", "external_ids"],
                           "select": {"initial": True, "insert": True, "delete": True, "modify": True}}],
        }])
        sw.vsctl("add-port", "br-int", "pod-c", "--", "set", "Interface", "pod-c", "type=internal",
                 "external_ids:k8s.pod=default/c")
        settle()
        sw.vsctl("set", "Bridge", "br-int", "other_config:hwaddr=\"02:00:00:00:00:01\"")
        settle()
        sw.vsctl("del-port", "br-int", "pod-c")
        settle()
        sw.vsctl("del-port", "br-int", "tap1")
        settle()
        open(f"{out}/monitor.stream", "wb").write(s.close())
    finally:
        sw.stop()


# Which monitor_update session (fuzz_targets/monitor_update.rs, byte 0) replays a stream.
SELECTORS = {"monitor": [0x00], "monitor_cond": [0x01, 0x05], "monitor_cond_since": [0x02, 0x0a],
             "monitor_cond_since_resume": [0x0a]}
# framing read sizes: whole, then reads of 1, 7 and 64 bytes in turn.
READS = [b"\x00", b"\x03\x00\x06\x3f"]


def main(fuzz_dir):
    with tempfile.TemporaryDirectory() as out:
        record(out)
        streams = {name[:-len(".stream")]: open(f"{out}/{name}", "rb").read() for name in os.listdir(out)}
    for name, (selector, msgs) in DOC_STREAMS.items():
        streams[name] = "".join(json.dumps(m, separators=(",", ":")) for m in msgs).encode()
        SELECTORS[name] = [selector]
    for target in ("framing", "monitor_update"):
        os.makedirs(f"{fuzz_dir}/seeds/{target}", exist_ok=True)
    for name, stream in streams.items():
        for i, reads in enumerate(READS):
            open(f"{fuzz_dir}/seeds/framing/seed-{name}-{i}", "wb").write(reads + stream)
        for sel in SELECTORS[name]:
            open(f"{fuzz_dir}/seeds/monitor_update/seed-{name}-{sel:02x}", "wb").write(bytes([sel]) + stream)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
