#!/usr/bin/env python3
"""Generates the benchmark workloads deterministically (fixed seed; nothing downloaded).

    python3 bench/gen.py OUT_DIR [--scale 1.0]

OUT_DIR/scan/       a tree of 100,000 files: 2,000 .config files with trusted issuers, source
                    files, binaries, and .gitignore'd bin/ and obj/ folders (a git repo, so
                    ripgrep honours .gitignore as keyroll does)
OUT_DIR/edit/       1,000 WIF configs (mixed BOM/CRLF/LF/tabs) trusting the current AD FS
                    key, metadata that adds the next one, keyroll.toml; edit-pristine/ is
                    the copy each run starts from
OUT_DIR/aggregate.xml  a ~60 MB SAML aggregate: 20,000 EntityDescriptors, 40,000
                    certificates, line-wrapped base64, some KeyDescriptors without `use`
OUT_DIR/aggregate-one-line.xml  the same document on one line, as AD FS writes its
                    metadata: no indentation, no line breaks, base64 unwrapped
OUT_DIR/aggregate-shared.xml  the same size and entities, every entity's two keys taken
                    from three certificates (a hosted service's shape: one certificate
                    published by thousands of tenants' entities)
OUT_DIR/*-quarter.xml  each of the three with a quarter of the entities, so that the time
                    for four times the input shows whether reading is linear

Certificates are the repository's real fixture certificates with their serial numbers
rewritten (same length), so each is distinct and still parses.
"""

import base64
import os
import random
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20261123
ENTITY = "http://adfs.contoso.com/adfs/services/trust"


def fixture_certs():
    """Distinct DER certificates from the test fixtures that keyroll parses."""
    seen, out = set(), []
    folder = os.path.join(ROOT, "tests", "data", "metadata")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".xml") or "multiple_descriptors" in name:
            continue
        text = open(os.path.join(folder, name), encoding="utf-8").read()
        for b64 in re.findall(r"X509Certificate>([^<]+)</", text):
            der = base64.b64decode("".join(b64.split()))
            if der not in seen and der[:1] == b"\x30":
                seen.add(der)
                out.append(der)
    return out


def der_len(data, i):
    """Length and header size of the DER element at i."""
    first = data[i + 1]
    if first < 0x80:
        return first, 2
    n = first & 0x7F
    return int.from_bytes(data[i + 2 : i + 2 + n], "big"), 2 + n


def with_serial(der, rng):
    """The same certificate with a new serial number of the same length."""
    _, outer = der_len(der, 0)
    tbs = outer
    _, tbs_header = der_len(der, tbs)
    i = tbs + tbs_header
    if der[i] == 0xA0:  # [0] EXPLICIT version
        length, header = der_len(der, i)
        i += header + length
    assert der[i] == 0x02, "serial INTEGER"
    length, header = der_len(der, i)
    start = i + header
    serial = bytes([rng.randrange(1, 0x80)]) + bytes(rng.randrange(256) for _ in range(length - 1))
    return der[:start] + serial + der[start + length :]


def wrapped(b64, width=64):
    return "\n".join(b64[i : i + width] for i in range(0, len(b64), width))


def write(path, data, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)


WORDS = "public private static void return using namespace class var let const async await token issuer certificate signing config value string int bool".split()


def source_text(rng, size):
    words = []
    total = 0
    while total < size:
        w = rng.choice(WORDS)
        words.append(w)
        total += len(w) + 1
    return " ".join(words) + "\n"


def wif_config(thumbprints, style):
    bom, nl, unit = style
    adds = "".join(
        f'{unit * 5}<add thumbprint="{t}" name="{ENTITY}" />{nl}' for t in thumbprints
    )
    u = unit
    text = (
        f'<?xml version="1.0" encoding="utf-8"?>{nl}<configuration>{nl}'
        # Declared as a real app must (WIF refuses to start otherwise, and keyroll says so).
        f'{u}<configSections>{nl}{u}{u}<section name="system.identityModel" type="System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=B77A5C561934E089" />{nl}{u}</configSections>{nl}'
        f'{u}<appSettings>{nl}{u}{u}<add key="webpages:Version" value="3.0.0.0" />{nl}{u}</appSettings>{nl}'
        f"{u}<system.identityModel>{nl}{u}{u}<identityConfiguration>{nl}"
        f'{u * 3}<issuerNameRegistry type="System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel">{nl}'
        f"{u * 4}<trustedIssuers>{nl}{adds}{u * 4}</trustedIssuers>{nl}"
        f"{u * 3}</issuerNameRegistry>{nl}{u}{u}</identityConfiguration>{nl}{u}</system.identityModel>{nl}</configuration>{nl}"
    )
    return ("\ufeff" if bom else "") + text


STYLES = [(bom, nl, unit) for bom in (True, False) for nl in ("\r\n", "\n") for unit in ("\t", "  ", "    ")]


def gen_scan(out, rng, total_files, configs):
    root = os.path.join(out, "scan")
    write(os.path.join(root, ".gitignore"), "bin/\nobj/\n")
    thumb = "5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379"
    apps = configs // 10
    per_app = total_files // apps
    count = 1
    for a in range(apps):
        app = os.path.join(root, f"src/App{a:04d}")
        for c in range(10):
            write(os.path.join(app, f"Area{c}", "Web.config"), wif_config([thumb], STYLES[(a + c) % len(STYLES)]))
            count += 1
        made = 10
        # Build output that must be skipped: bin/ and obj/ hold configs and binaries.
        for d in ("bin", "obj"):
            write(os.path.join(app, d, "App.dll.config"), wif_config([thumb], STYLES[0]))
            write(os.path.join(app, d, "App.dll"), bytes(rng.randrange(256) for _ in range(2048)) + b"\0")
            made += 2
        for f in range(per_app - made):
            kind = f % 50
            if kind == 0:
                write(os.path.join(app, "lib", f"native{f}.dll"), b"MZ\0\0" + bytes(rng.randrange(256) for _ in range(1500)))
            elif kind < 20:
                write(os.path.join(app, "Scripts", f"file{f}.js"), source_text(rng, rng.randrange(500, 3000)))
            else:
                write(os.path.join(app, "Controllers", f"File{f}.cs"), source_text(rng, rng.randrange(500, 3000)))
        count += per_app - 10
    subprocess.run(["git", "init", "-q", root], check=True)


def gen_edit(out, rng, n):
    demo = open(os.path.join(ROOT, "examples/demo/metadata/FederationMetadata.xml"), encoding="utf-8").read()
    for name in ("edit", "edit-pristine"):
        root = os.path.join(out, name)
        write(os.path.join(root, "metadata.xml"), demo)
        write(
            os.path.join(root, "keyroll.toml"),
            f'[[issuer]]\nname = "contoso-adfs"\nmetadata = ["metadata.xml"]\nentity_id = "{ENTITY}"\n\n'
            '[[target]]\nfiles = ["apps/*/web.config"]\nissuers = ["contoso-adfs"]\n',
        )
        for i in range(n):
            write(os.path.join(root, "apps", f"app{i:04d}", "web.config"), wif_config(["5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379"], STYLES[i % len(STYLES)]))


def gen_aggregate(out, rng, entities, target_bytes, suffix="", shared=False):
    """An aggregate of `entities` entities, two keys each. Each key a certificate of its own
    (a new serial), or with `shared` one of three certificates used by every entity, as a
    hosted service publishes one certificate for thousands of tenants' entities."""
    certs = fixture_certs()
    name = "aggregate-shared" if shared else "aggregate"
    path = os.path.join(out, f"{name}{suffix}.xml")
    padding = " " * 0
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- generated by keyroll bench/gen.py -->\n'
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Name="urn:bench:federation">\n'
    ]
    body_budget = target_bytes // entities
    for e in range(entities):
        keys = []
        for k in range(2):
            der = certs[(e + k) % 3] if shared else with_serial(rng.choice(certs), rng)
            use = ["signing", "encryption", None][(e + k) % 3]
            attr = f' use="{use}"' if use else ""
            keys.append(
                f"      <md:KeyDescriptor{attr}>\n        <ds:KeyInfo>\n          <ds:X509Data>\n            <ds:X509Certificate>\n"
                f"{wrapped(base64.b64encode(der).decode())}\n            </ds:X509Certificate>\n          </ds:X509Data>\n        </ds:KeyInfo>\n      </md:KeyDescriptor>\n"
            )
        role = "IDPSSODescriptor" if e % 2 else "SPSSODescriptor"
        entity = (
            f'  <md:EntityDescriptor entityID="https://sp{e}.example.org/shibboleth">\n'
            f'    <md:{role} protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\n'
            + "".join(keys)
            + f'      <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sp{e}.example.org/sso"/>\n'
            f"    </md:{role}>\n"
        )
        pad = body_budget - len(entity) - 200
        org = f"    <md:Organization>\n      <md:OrganizationName xml:lang=\"en\">Organization {e}</md:OrganizationName>\n"
        if pad > 0:
            org += f"      <md:OrganizationDisplayName xml:lang=\"en\">{('Example University ' * (pad // 19 + 1))[:pad]}</md:OrganizationDisplayName>\n"
        org += f"      <md:OrganizationURL xml:lang=\"en\">https://sp{e}.example.org/</md:OrganizationURL>\n    </md:Organization>\n"
        parts.append(entity + org + "  </md:EntityDescriptor>\n")
    parts.append("</md:EntitiesDescriptor>\n")
    text = "".join(parts) + padding
    write(path, text)
    # Indentation and line breaks are only whitespace between elements and inside the base64,
    # so dropping them leaves the same entities and certificates.
    if not shared:
        write(os.path.join(out, f"aggregate-one-line{suffix}.xml"), "".join(line.strip() for line in text.splitlines()))


def main():
    out = sys.argv[1]
    scale = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--scale" else 1.0
    rng = random.Random(SEED)
    gen_scan(out, rng, int(100_000 * scale), max(10, int(2_000 * scale) // 10 * 10))
    gen_edit(out, rng, max(1, int(1_000 * scale)))
    gen_aggregate(out, rng, max(1, int(20_000 * scale)), int(60_000_000 * scale))
    # Quarter-size copies: 4x the input must take about 4x the time, for every shape.
    gen_aggregate(out, rng, max(1, int(5_000 * scale)), int(15_000_000 * scale), suffix="-quarter")
    gen_aggregate(out, rng, max(1, int(20_000 * scale)), int(60_000_000 * scale), shared=True)
    gen_aggregate(out, rng, max(1, int(5_000 * scale)), int(15_000_000 * scale), suffix="-quarter", shared=True)


if __name__ == "__main__":
    main()
