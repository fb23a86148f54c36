#!/usr/bin/env bash
# Makes the encoded metadata fixtures of tests/metadata_input.rs from template.xml (UTF-8),
# with GNU iconv, so that keyroll's decoder (encoding_rs) is checked against another
# implementation. The certificate (cert.b64) is the one of tests/data/metadata/idp-metadata.xml
# (provenance in tests/data/SOURCES.md). Run from this folder; the outputs are committed.
set -euo pipefail
cd "$(dirname "$0")"
fill() { # declared-encoding name
  sed -e "s|@ENC@|$1|g" -e "s|@NAME@|$2|g" -e "/@CERT@/{r cert.b64" -e "d}" template.xml
}
make() { # file declared-encoding iconv-encoding name [bom]
  local file=$1 declared=$2 target=$3 name=$4 bom=${5:-}
  { printf "$bom"; fill "$declared" "$name" | iconv -f UTF-8 -t "$target"; } > "$file"
}
make utf-8.xml utf-8 UTF-8 'Universität Zürich – Łódź – Москва – 東京 – 😀'
make iso-8859-1.xml iso-8859-1 ISO-8859-1 'Universität Zürich'
make iso-8859-2.xml ISO-8859-2 ISO-8859-2 'Politechnika Łódzka'
make iso-8859-5.xml iso-8859-5 ISO-8859-5 'Московский университет'
make iso-8859-7.xml iso-8859-7 ISO-8859-7 'Πανεπιστήμιο Αθηνών'
make iso-8859-15.xml ISO_8859-15 ISO-8859-15 'Université € Zürich'
make windows-1250.xml windows-1250 WINDOWS-1250 'Vysoké učení technické v Brně'
make windows-1251.xml windows-1251 WINDOWS-1251 'Московский университет'
make windows-1252.xml Windows-1252 WINDOWS-1252 'Université “Zürich” €'
make shift_jis.xml Shift_JIS SHIFT_JIS '東京大学'
make utf-16le-bom.xml UTF-16 UTF-16LE 'Universität Zürich – Łódź – Москва – 東京 – 😀' '\xFF\xFE'
make utf-16be-bom.xml UTF-16 UTF-16BE 'Universität Zürich – Łódź – Москва – 東京 – 😀' '\xFE\xFF'
make utf-16le.xml UTF-16 UTF-16LE 'Universität Zürich – Łódź – Москва – 東京 – 😀'
make utf-16be.xml UTF-16 UTF-16BE 'Universität Zürich – Łódź – Москва – 東京 – 😀'
