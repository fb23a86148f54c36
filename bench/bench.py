#!/usr/bin/env python3
"""Runs each benchmark pair side by side (hyperfine for time, /usr/bin/time for peak RSS),
prints the table and, at full scale, writes bench/RESULTS.md. Called by bench/run."""

import base64
import difflib
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYROLL = os.path.join(ROOT, "target", "release", "keyroll")
NOW = "2026-11-23T12:00:00Z"
NEXT = "81CB9F506E54F19731D89F749FBBCE8FE6476295"
ENTITY = "http://adfs.contoso.com/adfs/services/trust"

PY_INSPECT = r"""
import base64, hashlib, sys, xml.etree.ElementTree as ET
tree = ET.parse(sys.argv[1])
n = 0
for el in tree.iter('{http://www.w3.org/2000/09/xmldsig#}X509Certificate'):
    hashlib.sha1(base64.b64decode(''.join(el.text.split()))).hexdigest()
    n += 1
print(n)
"""

# What a Python user would write for a large aggregate: lxml's iterparse, hashing each
# certificate at its end event and clearing each entity once read, so that memory stays small
# (the usual idiom: the element cleared, and the siblings already read dropped).
LXML_INSPECT = r"""
import base64, hashlib, sys
from lxml import etree
CERT = '{http://www.w3.org/2000/09/xmldsig#}X509Certificate'
ENTITY = '{urn:oasis:names:tc:SAML:2.0:metadata}EntityDescriptor'
n = 0
for _, el in etree.iterparse(sys.argv[1], events=('end',), tag=(CERT, ENTITY)):
    if el.tag == CERT:
        hashlib.sha1(base64.b64decode(''.join(el.text.split()))).hexdigest()
        n += 1
    else:
        el.clear(keep_tail=True)
        while el.getprevious() is not None:
            del el.getparent()[0]
print(n)
"""

# The I/O floor: read each file and write it back as keyroll does (temporary file in the
# same folder, fsync, rename), with no parsing at all.
IO_FLOOR = r"""
import os, sys, glob
for path in glob.glob(os.path.join(sys.argv[1], '*', 'web.config')):
    data = open(path, 'rb').read()
    tmp = os.path.join(os.path.dirname(path), '.floor.tmp')
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout


def hyperfine(name, commands, work, runs, prepare=None, warmup=1):
    out = os.path.join(work, f"{name}.json")
    args = ["hyperfine", "--shell=bash", "--warmup", str(warmup), "--runs", str(runs), "--export-json", out, "--style", "basic"]
    if prepare:
        args += ["--prepare", prepare]
    for label, cmd in commands:
        args += ["-n", label, cmd]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    results = json.load(open(out))["results"]
    return {r["command"]: r for r in results}


def sign_aggregate(work, aggregate):
    """The aggregate with an ID on its root, signed by xmlsec1 with a new 2048-bit key."""
    key, cert = os.path.join(work, "signer.key"), os.path.join(work, "signer.pem")
    sh(f"openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=bench-signer "
       f"-keyout {key} -out {cert} 2>/dev/null")
    template = os.path.join(work, "aggregate-template.xml")
    text = open(aggregate, encoding="utf-8").read()
    start = text.index("<md:EntitiesDescriptor")
    end = text.index(">", start) + 1
    signature = (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        '<ds:Reference URI="#_federation"><ds:Transforms>'
        '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>'
        '</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>')
    root = text[start:end].replace("<md:EntitiesDescriptor", '<md:EntitiesDescriptor ID="_federation"', 1)
    open(template, "w", encoding="utf-8").write(text[:start] + root + "\n  " + signature + text[end:])
    signed = os.path.join(work, "aggregate-signed.xml")
    sh(f"xmlsec1 --sign --privkey-pem {key},{cert} "
       f"--id-attr:ID urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor --output {signed} {template}")
    return signed


def peak_rss_kib(cmd):
    err = subprocess.run(["/usr/bin/time", "-f", "%M", "bash", "-c", cmd], capture_output=True, text=True).stderr
    return int(err.strip().splitlines()[-1])


def bytes_outside(before_dir, after_dir, thumbprint):
    """Bytes changed outside the intended insertion, summed over all files: the after-text
    minus the inserted <add …> (and the line it sits on) is compared with the before-text."""
    changed = 0
    files = 0
    for before_path in glob.glob(os.path.join(before_dir, "apps", "*", "web.config")):
        after_path = os.path.join(after_dir, os.path.relpath(before_path, before_dir))
        before = open(before_path, "rb").read()
        after = open(after_path, "rb").read()
        # Remove the new entry: its element plus the whitespace and one line break before it.
        pattern = re.compile(rb"(\r?\n)?[ \t]*<add\b[^>]*" + re.escape(thumbprint.encode()) + rb"[^>]*>", re.I)
        stripped = pattern.sub(b"", after, count=1)
        if stripped == before:
            continue
        files += 1
        matcher = difflib.SequenceMatcher(None, before, stripped, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op != "equal":
                changed += max(i2 - i1, j2 - j1)
    return changed, files


def main():
    work, scale = sys.argv[1], float(sys.argv[2])
    # The virtual environment's Python, with lxml (bench/run installs it).
    lxml_python = sys.argv[3]
    full = scale >= 1.0
    runs = 5 if full else 3
    rows = []
    notes = []

    # 1. scan
    scan_dir = os.path.join(work, "scan")
    files = int(sh(f"find {scan_dir} -type f -not -path '*/.git/*' | wc -l"))
    k_count = len(json.loads(sh(f"cd {scan_dir} && {KEYROLL} scan --format json .") or "{}")["entries"])
    # ripgrep over the same files keyroll reads, for the words it looks for, .gitignore
    # honoured: the *.config files, and (since issue 28: registries whose keys live in a
    # database) the C# and SQL sources, where the VS2013 template's registry and K2's
    # table show. rg_count is the configs alone, the number keyroll's entries are held to.
    rg_cmd = (f"cd {scan_dir} && rg -l -g '*.config' -g '*.cs' -g '*.sql' -e trustedIssuers "
              f"-e IssuingAuthorityKeys -e issuerNameRegistry -e 'Identity.ClaimIssuer' .")
    rg_count = len(sh(f"cd {scan_dir} && rg -l -g '*.config' trustedIssuers .").split())
    res = hyperfine(
        "scan",
        [("keyroll", f"cd {scan_dir} && {KEYROLL} scan --format json . > /dev/null"),
         ("rg", f"{rg_cmd} > /dev/null")],
        work, runs, warmup=2)
    k, r = res["keyroll"]["mean"], res["rg"]["mean"]
    rows.append(("scan", f"{files:,} files, {k_count:,} entries found (rg lists {rg_count:,} files)",
                 f"{k:.3f} s", "rg -l over the same files (*.config, *.cs, *.sql) for the same words", f"{r:.3f} s",
                 f"throughput {r / k:.2f}x rg", "≥ 1x rg", r / k >= 1))

    # 2. edit
    edit, pristine = os.path.join(work, "edit"), os.path.join(work, "edit-pristine")
    # `sync` so that no run pays for flushing the copy that reset it.
    reset = f"rm -rf {edit} && cp -r {pristine} {edit} && sync"
    configs = glob.glob(os.path.join(pristine, "apps", "*", "web.config"))
    xml_cmd = (f"xmlstarlet ed -L -s //trustedIssuers -t elem -n addNew -v '' "
               f"-i //addNew -t attr -n thumbprint -v {NEXT} -i //addNew -t attr -n name -v '{ENTITY}' "
               f"-r //addNew -v add {edit}/apps/*/web.config")
    keyroll_cmd = f"{KEYROLL} apply --config {edit}/keyroll.toml --now {NOW} > /dev/null 2>&1"
    plan_cmd = f"{KEYROLL} plan --config {edit}/keyroll.toml --now {NOW} > /dev/null 2>&1"
    floor_file = os.path.join(work, "io_floor.py")
    open(floor_file, "w").write(IO_FLOOR)
    res = hyperfine(
        "edit",
        [("keyroll", keyroll_cmd), ("xmlstarlet", xml_cmd), ("io-floor", f"python3 {floor_file} {edit}/apps"),
         ("keyroll-plan", plan_cmd)],
        work, runs, prepare=reset)
    outside = {}
    for label, cmd in (("keyroll", keyroll_cmd), ("xmlstarlet", xml_cmd)):
        sh(reset)
        sh(cmd)
        outside[label] = bytes_outside(pristine, edit, NEXT)
    k, x, f = res["keyroll"]["mean"], res["xmlstarlet"]["mean"], res["io-floor"]["mean"]
    kp = res["keyroll-plan"]["mean"]
    rows.append(("edit", f"{len(configs):,} configs, +1 key each",
                 f"{k:.3f} s", "xmlstarlet ed -L", f"{x:.3f} s",
                 f"{x / k:.2f}x faster than xmlstarlet", "faster than xmlstarlet", k < x))
    rows.append(("edit", "same", f"{k:.3f} s", "I/O floor (read, write temp, fsync, rename)", f"{f:.3f} s",
                 f"{k / f:.2f}x the floor", "≤ 5x the floor", k <= 5 * f))
    rows.append(("edit", "same, all but the writes (`keyroll plan`: parse, scan, plan, patch, verify)",
                 f"{kp:.3f} s", "xmlstarlet ed -L", f"{x:.3f} s",
                 f"{x / kp:.2f}x faster than xmlstarlet", "(explains the row above)", kp < x))
    # Where the time goes: system calls of each tool on the same workload.
    for label, cmd in (("keyroll apply", keyroll_cmd), ("xmlstarlet ed -L", xml_cmd)):
        sh(reset)
        out = subprocess.run(["strace", "-c", "-f", "-o", os.path.join(work, "strace.txt"), "bash", "-c", cmd],
                             capture_output=True, text=True)
        lines = open(os.path.join(work, "strace.txt")).read().splitlines()
        top = [l for l in lines[2:8] if l.strip() and not l.startswith("-")]
        notes.append(f"System calls of {label} (strace -c -f, top 6 by time):\n\n```\n" + "\n".join(lines[:2] + top) + "\n```")
    notes.append(f"Bytes changed outside the intended insertion: keyroll {outside['keyroll'][0]:,} in {outside['keyroll'][1]} files; "
                 f"xmlstarlet {outside['xmlstarlet'][0]:,} in {outside['xmlstarlet'][1]} files.")

    # 3. inspect: the multi-line aggregate, the same document on one line (as AD FS writes)
    # and one whose entities all share three certificates (as hosted services publish),
    # each against Python (lxml's iterparse, and ElementTree) and the floor of reading and
    # hashing the whole file (sha1sum) in the same run; quarter-size copies show that four
    # times the input takes about four times the time (linear), whatever the shape.
    py_file = os.path.join(work, "py_inspect.py")
    open(py_file, "w").write(PY_INSPECT)
    lxml_file = os.path.join(work, "lxml_inspect.py")
    open(lxml_file, "w").write(LXML_INSPECT)
    for label, name in (("multi-line", "aggregate"), ("one line", "aggregate-one-line"),
                        ("shared certificates", "aggregate-shared")):
        aggregate = os.path.join(work, f"{name}.xml")
        quarter = os.path.join(work, f"{name}-quarter.xml")
        size = os.path.getsize(aggregate)
        k_certs = len(json.loads(sh(f"{KEYROLL} inspect --format json {aggregate}"))["certificates"])
        py_certs = int(sh(f"python3 {py_file} {aggregate}"))
        lxml_certs = int(sh(f"{lxml_python} {lxml_file} {aggregate}"))
        assert lxml_certs == py_certs, f"lxml counts {lxml_certs} certificates, ElementTree {py_certs}"
        res = hyperfine(
            f"inspect-{name}",
            [("keyroll", f"{KEYROLL} inspect --format json {aggregate} > /dev/null"),
             ("lxml", f"{lxml_python} {lxml_file} {aggregate} > /dev/null"),
             ("python", f"python3 {py_file} {aggregate} > /dev/null"),
             ("sha1sum", f"sha1sum {aggregate} > /dev/null"),
             ("keyroll-quarter", f"{KEYROLL} inspect --format json {quarter} > /dev/null")],
            work, runs)
        k, p, kh = res["keyroll"]["mean"], res["python"]["mean"], res["keyroll-quarter"]["mean"]
        lx, floor = res["lxml"]["mean"], res["sha1sum"]["mean"]
        growth = k / kh
        input_growth = size / os.path.getsize(quarter)
        k_rss = peak_rss_kib(f"{KEYROLL} inspect --format json {aggregate} > /dev/null") * 1024
        p_rss = peak_rss_kib(f"python3 {py_file} {aggregate} > /dev/null") * 1024
        lx_rss = peak_rss_kib(f"{lxml_python} {lxml_file} {aggregate} > /dev/null") * 1024
        rows.append(("inspect", f"{size / 1e6:.1f} MB aggregate, {label}, {k_certs:,} rows ({py_certs:,} certificates)",
                     f"{k:.3f} s", "python3 lxml iterparse + base64 + SHA-1", f"{lx:.3f} s",
                     f"{lx / k:.2f}x faster than lxml", "≥ 2x faster than lxml", lx / k >= 2))
        rows.append(("inspect", f"{label}, same", f"{k:.3f} s", "python3 ElementTree + base64 + SHA-1", f"{p:.3f} s",
                     f"{p / k:.2f}x faster than Python", "< 2 s and faster than Python", k < 2 and k < p))
        rows.append(("inspect", f"{label}, same", f"{k:.3f} s", "floor: sha1sum of the file", f"{floor:.3f} s",
                     f"{k / floor:.2f}x the floor", "≤ 4x the floor", k <= 4 * floor))
        rows.append(("inspect", f"{label}: {input_growth:.2f}x the input of the quarter-size copy",
                     f"{k:.3f} s", "keyroll on the quarter-size copy", f"{kh:.3f} s",
                     f"{growth:.2f}x the time", "linear: ≤ 1.25x the input growth", growth <= 1.25 * input_growth))
        rows.append(("inspect", f"{label}, peak RSS", f"{k_rss / 1e6:.0f} MB",
                     f"lxml peak RSS (ElementTree {p_rss / 1e6:.0f} MB)", f"{lx_rss / 1e6:.0f} MB",
                     f"{k_rss / size:.2f}x the file size", "< 1.5x the file size", k_rss < 1.5 * size))

    # 4. A signed aggregate: the multi-line one signed by xmlsec1 (RSA-SHA256 over the
    # exclusive canonical form of the root, as federations sign), verified by keyroll on the
    # stream: what verification adds to inspect, and xmlsec1's own verification beside it.
    signed = sign_aggregate(work, os.path.join(work, "aggregate.xml"))
    verdict = json.loads(sh(f"{KEYROLL} inspect --format json {signed}"))["signature"]["verdict"]
    assert verdict["status"] == "valid", verdict
    aggregate = os.path.join(work, "aggregate.xml")
    xmlsec_verify = ("xmlsec1 --verify --insecure --enabled-key-data x509 "
                     f"--id-attr:ID urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor {signed}")
    res = hyperfine(
        "inspect-signed",
        [("keyroll-signed", f"{KEYROLL} inspect --format json {signed} > /dev/null"),
         ("keyroll-unsigned", f"{KEYROLL} inspect --format json {aggregate} > /dev/null"),
         ("xmlsec1", f"{xmlsec_verify} > /dev/null 2>&1")],
        work, runs)
    ks, ku, xv = res["keyroll-signed"]["mean"], res["keyroll-unsigned"]["mean"], res["xmlsec1"]["mean"]
    size = os.path.getsize(signed)
    ks_rss = peak_rss_kib(f"{KEYROLL} inspect --format json {signed} > /dev/null") * 1024
    rows.append(("inspect", f"{size / 1e6:.1f} MB signed aggregate (multi-line, RSA-SHA256, exc-c14n), verified on the stream",
                 f"{ks:.3f} s", "keyroll on the same aggregate unsigned", f"{ku:.3f} s",
                 f"verification adds {ks - ku:.3f} s ({ks / ku:.2f}x)", "(what verification costs)", True))
    rows.append(("inspect", "signed, same", f"{ks:.3f} s", "xmlsec1 --verify (signature only, no keys read)", f"{xv:.3f} s",
                 f"{xv / ks:.2f}x faster than xmlsec1", "faster than xmlsec1", ks < xv))
    rows.append(("inspect", "signed, peak RSS", f"{ks_rss / 1e6:.0f} MB", "the file", f"{size / 1e6:.0f} MB",
                 f"{ks_rss / size:.2f}x the file size", "< 1.5x the file size", ks_rss < 1.5 * size))

    header = "| workload | input | keyroll | baseline | baseline time | ratio | target | met |\n|---|---|---|---|---|---|---|---|\n"
    table = header + "".join(
        f"| {w} | {i} | {kt} | {b} | {bt} | {ratio} | {t} | {'yes' if ok else '**no**'} |\n"
        for w, i, kt, b, bt, ratio, t, ok in rows)
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    machine = (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
               f"{int(mem) / 1024 / 1024:.1f} GiB memory, {platform.system()} {platform.release()}")
    tools = "; ".join(sh(c).strip().splitlines()[0] for c in (
        "hyperfine --version", "rg --version", "echo xmlstarlet $(xmlstarlet --version | head -1)", "python3 --version",
        f"{lxml_python} -c 'import lxml.etree as e; print(\"lxml\", e.__version__, \"(libxml2\", \".\".join(map(str, e.LIBXML_VERSION)) + \")\")'",
        "sha1sum --version"))
    print()
    print(table)
    for n in notes:
        print(n)
    if full:
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as out:
            out.write(f"# Benchmark results\n\nRun {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `bench/run` on "
                      f"{machine}.\n{sh(KEYROLL + ' --version').strip()}; {tools}.\n"
                      f"Means of {runs} runs after warm-up (hyperfine); peak RSS from /usr/bin/time.\n\n")
            out.write(table + "\n" + "\n\n".join(notes) + "\n")
            analysis = os.path.join(ROOT, "bench", "ANALYSIS.md")
            if os.path.exists(analysis):
                out.write("\n" + open(analysis).read())
            # The Action's install step and the cold build (bench/action writes that file).
            action = os.path.join(ROOT, "bench", "ACTION.md")
            if os.path.exists(action):
                out.write("\n<!-- bench/action -->\n" + open(action).read().rstrip("\n") + "\n<!-- /bench/action -->\n")
        print("wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
