#!/usr/bin/python3
"""The disconnect's reference walk, two ways, in one run: asking each domain for its state before reading its XML
(what the plugin did until 2026-11-26) against libvirt's filtered lists (what it does now). Defines N inactive
domains on the given libvirtd for the run and undefines them after. Prints JSON (medians over interleaved rounds).

  /usr/bin/python3 tests/bench/reference_walk.py [--uri qemu:///system] [--domains 50] [--rounds 15]
"""
import argparse
import json
import os
import statistics
import time

import libvirt

DOMAIN_XML = ("<domain type='qemu'><name>{}</name><memory unit='MiB'>64</memory>"
              "<os><type arch='x86_64'>hvm</type></os><devices/></domain>")


def per_domain_state(conn):
    for dom in conn.listAllDomains(0):
        if dom.isActive():
            dom.XMLDesc(0)
        if dom.isPersistent():
            dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def filtered_lists(conn):
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        dom.XMLDesc(0)
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT):
        dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default="qemu:///system")
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    conn = libvirt.open(args.uri)
    names = [f"ivd-refwalk-{os.getpid()}-{i}" for i in range(args.domains)]
    try:
        for name in names:
            conn.defineXML(DOMAIN_XML.format(name))
        ms = {"per_domain_state": [], "filtered_lists": []}
        walks = {"per_domain_state": per_domain_state, "filtered_lists": filtered_lists}
        for r in range(args.rounds):
            order = list(walks) if r % 2 == 0 else list(reversed(list(walks)))
            for key in order:
                start = time.perf_counter()
                walks[key](conn)
                ms[key].append((time.perf_counter() - start) * 1e3)
        old, new = statistics.median(ms["per_domain_state"]), statistics.median(ms["filtered_lists"])
        print(json.dumps({"bench": "reference_walk", "domains_on_libvirtd": len(conn.listAllDomains(0)),
                          "rounds": args.rounds, "median_ms": {"per_domain_state": round(old, 2),
                                                               "filtered_lists": round(new, 2)},
                          "ratio": round(old / new, 2), "load_average": os.getloadavg()[0]}))
    finally:
        for name in names:
            try:
                conn.lookupByName(name).undefine()
            except libvirt.libvirtError:
                pass


if __name__ == "__main__":
    main()
