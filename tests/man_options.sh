# Every long option a tool prints in --help is documented in its man page
# under its whole name (--lr is not documented by --lr-decay), and every
# tool's --help and --version exit 0 on stdout.
. "${top_srcdir:-.}/tests/setup"

# documented OPT PAGE: the man page PAGE names OPT whole.  Man pages escape
# hyphens as \-: unescaped, an option is its name followed by anything that
# cannot continue a name.
documented() {
    sed 's/\\-/-/g' "$2" | grep -q -E -e "$1([^a-z0-9-]|\$)"
}
printf '.BI \\-\\-lr\\-decay " FACTOR"\n.B \\-\\-top\\-k\n--seed-file\n' > "$T/page.1"
undocumented() { ! documented "$@"; }
check "matcher: --lr-decay does not document --lr" undocumented --lr "$T/page.1"
check "matcher: --top-k found" documented --top-k "$T/page.1"
check "matcher: --top not found" undocumented --top "$T/page.1"
check "matcher: --seed not found" undocumented --seed "$T/page.1"
found=0
for tool in tokenize word2vec charlm-train charlm-generate charlm-score seq2seq sentiment forecast; do
    [ -x "$BIN/$tool" ] || continue
    found=$((found + 1))
    page=$top_srcdir/man/$tool.1
    check "$tool has a man page" test -f "$page"
    check "$tool --help exits 0" "$BIN/$tool" --help > "$T/help"
    check "$tool --version exits 0" "$BIN/$tool" --version > "$T/version"
    check "$tool --version names libnlp" grep -q 'libnlp' "$T/version"
    [ -f "$page" ] || continue
    for opt in $(grep -o -- '--[a-z][a-z0-9-]*' "$T/help" | sort -u); do
        check "$tool: $opt in man page" documented "$opt" "$page"
    done
done
[ "$found" -gt 0 ] || skip_ "no tools built yet"
Exit
