#!/usr/bin/env python3
"""Rebuilds crates/context/data/netdb.bin.gz, the IP-to-AS and IP-to-country table that ships
inside CloudSentinel, from two packages on the npm registry:

  @ip-location-db/asn                     IP ranges to AS number and name (CC BY 4.0: RouteViews,
                                          DB-IP's IP to ASN Lite, the five RIRs' data via NRO)
  @ip-location-db/geo-whois-asn-country   IP ranges to country (CC0; NRO statistics CC BY 4.0)

  scripts/refresh_netdb.py [DIR]

DIR holds the unpacked packages (`asn/` and `geo-whois-asn-country/`, each with its *-num.csv
files); without it the script runs `npm pack` for both into a temporary directory. The licences
and attribution are in crates/context/data/NOTICE; update its version line after a refresh.

Format (all integers little endian, varints LEB128 unsigned):
  b"CSNETDB1"
  u32 name count, then per AS: varint AS number, varint byte length, UTF-8 name
  u32 IPv4 range count, then per range: varint start minus the previous start, varint AS
      number (0: none), two ASCII bytes of country ("--": none); a range ends where the next
      begins, unassigned space is a range with AS 0 and country "--"
  u32 IPv6 range count, the same, with starts as the upper 64 bits of the address (no routed
      allocation is smaller than a /64)
"""
import csv
import gzip
import io
import os
import pathlib
import struct
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "context" / "data" / "netdb.bin.gz"


def unpack(dest: pathlib.Path) -> pathlib.Path:
    for pkg, name in (("@ip-location-db/asn", "asn"),
                      ("@ip-location-db/geo-whois-asn-country", "geo-whois-asn-country")):
        tgz = subprocess.run(["npm", "pack", pkg, "--silent"], cwd=dest, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        with tarfile.open(dest / tgz) as t:
            t.extractall(dest / "x", filter="data")
        os.rename(dest / "x" / "package", dest / name)
        print(f"{pkg}: {tgz}", file=sys.stderr)
    return dest


def read_ranges(path: pathlib.Path, value):
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            out.append((int(row[0]), int(row[1]), value(row)))
    out.sort()
    return out


def merge(asn_ranges, country_ranges, shift):
    """One list of (start, asn, country) over both tables, adjacent equal ranges joined."""
    points = set()
    for s, e, _ in asn_ranges + country_ranges:
        points.add(s >> shift)
        points.add((e >> shift) + 1)
    points = sorted(points)

    def walker(ranges):
        i = 0

        def at(p):
            nonlocal i
            while i < len(ranges) and (ranges[i][1] >> shift) < p:
                i += 1
            if i < len(ranges) and (ranges[i][0] >> shift) <= p <= (ranges[i][1] >> shift):
                return ranges[i][2]
            return None
        return at

    asn_at, country_at = walker(asn_ranges), walker(country_ranges)
    out = []
    for p in points:
        a = asn_at(p)
        item = (p, a[0] if a else 0, country_at(p) or "--")
        if out and out[-1][1:] == item[1:]:
            continue
        out.append(item)
    return out


def varint(n: int) -> bytes:
    b = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            b.append(byte | 0x80)
        else:
            b.append(byte)
            return bytes(b)


def encode_ranges(ranges) -> bytes:
    b = io.BytesIO()
    b.write(struct.pack("<I", len(ranges)))
    prev = 0
    for start, asn, country in ranges:
        b.write(varint(start - prev))
        b.write(varint(asn))
        c = country.upper().encode("ascii")
        b.write(c if len(c) == 2 else b"--")
        prev = start
    return b.getvalue()


def main():
    if len(sys.argv) > 1:
        src = pathlib.Path(sys.argv[1])
        tmp = None
    else:
        tmp = tempfile.TemporaryDirectory()
        src = unpack(pathlib.Path(tmp.name))
    asn_dir, cc_dir = src / "asn", src / "geo-whois-asn-country"
    names = {}

    def asn_value(row):
        asn = int(row[2])
        names.setdefault(asn, row[3] if len(row) > 3 else "")
        return (asn,)

    tables = {}
    for fam, shift in (("ipv4", 0), ("ipv6", 64)):
        a = read_ranges(asn_dir / f"asn-{fam}-num.csv", asn_value)
        c = read_ranges(cc_dir / f"geo-whois-asn-country-{fam}-num.csv", lambda r: r[2])
        tables[fam] = merge(a, c, shift)
        print(f"{fam}: {len(a)} AS ranges, {len(c)} country ranges -> {len(tables[fam])} merged",
              file=sys.stderr)
    body = io.BytesIO()
    body.write(b"CSNETDB1")
    body.write(struct.pack("<I", len(names)))
    for asn in sorted(names):
        n = names[asn].encode("utf-8")
        body.write(varint(asn) + varint(len(n)) + n)
    body.write(encode_ranges(tables["ipv4"]))
    body.write(encode_ranges(tables["ipv6"]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "wb") as f:
        # mtime 0: the same data gives the same file
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as g:
            g.write(body.getvalue())
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size} bytes ({len(body.getvalue())} raw), "
          f"{len(names)} AS names", file=sys.stderr)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
