#!/bin/sh
# Finds or fetches corpora named in corpora/MANIFEST and checks their sha256.
# A corpus shipped with the project (a file NAME beside this script, e.g.
# corpora/divina_commedia.txt) is used where it is, with no network and no
# environment variable.  The others are fetched into a data directory: from
# the local mirror $NLP_CORPORA when it is set, else from the public origin
# URL (gunzipped first when the origin ends in .gz).
#
#   corpora/fetch.sh [-d DIR] NAME...     prints the path of each file
#   corpora/fetch.sh --list               lists the known names
#
# DIR defaults to $NLP_DATA or corpora/data beside this script.  A file already
# there with the right checksum is not fetched again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
manifest=$here/MANIFEST
dest=${NLP_DATA:-$here/data}
prog=fetch.sh

die() { echo "$prog: $*" >&2; exit 1; }

if [ "${1:-}" = "--list" ]; then
    grep -v '^#' "$manifest" | awk 'NF {print $1}'
    exit 0
fi
if [ "${1:-}" = "-d" ]; then
    [ $# -ge 2 ] || die "-d needs a directory"
    dest=$2; shift 2
fi
[ $# -ge 1 ] || die "usage: fetch.sh [-d DIR] NAME... (or --list)"

sha_of() { sha256sum "$1" | awk '{print $1}'; }

for name in "$@"; do
    line=$(grep -v '^#' "$manifest" | awk -v n="$name" '$1 == n' | head -n 1)
    [ -n "$line" ] || die "$name: not in $manifest"
    want=$(echo "$line" | awk '{print $2}')
    url=$(echo "$line" | awk '{print $3}')
    shipped=$here/$name
    if [ -f "$shipped" ]; then
        got=$(sha_of "$shipped")
        [ "$got" = "$want" ] || die "$shipped: sha256 mismatch (got $got, want $want): the shipped copy was changed"
        echo "$shipped"; continue
    fi
    out=$dest/$name
    if [ -f "$out" ] && [ "$(sha_of "$out")" = "$want" ]; then
        echo "$out"; continue
    fi
    mkdir -p "$(dirname "$out")"
    tmp=$out.part.$$
    trap 'rm -f "$tmp"' EXIT INT TERM
    if [ -n "${NLP_CORPORA:-}" ]; then
        [ -f "$NLP_CORPORA/$name" ] || die "$name: not in mirror $NLP_CORPORA"
        cp "$NLP_CORPORA/$name" "$tmp"
    else
        [ "$url" != "-" ] || die "$name: no public origin; set NLP_CORPORA to a mirror directory"
        if command -v curl >/dev/null 2>&1; then
            curl -fsSL "$url" -o "$tmp" || die "$name: download failed: $url"
        elif command -v wget >/dev/null 2>&1; then
            wget -q -O "$tmp" "$url" || die "$name: download failed: $url"
        else
            die "$name: neither curl nor wget is installed"
        fi
        case $url in
        *.gz) gunzip -c < "$tmp" > "$tmp.raw" && mv "$tmp.raw" "$tmp" ;;
        esac
    fi
    got=$(sha_of "$tmp")
    [ "$got" = "$want" ] || die "$name: sha256 mismatch (got $got, want $want)"
    mv "$tmp" "$out"
    trap - EXIT INT TERM
    echo "$out"
done
