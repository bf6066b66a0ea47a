# Every long option a tool prints in --help is documented in its man page,
# and every tool's --help and --version exit 0 on stdout.
. "${top_srcdir:-.}/tests/setup"
found=0
for tool in tokenize word2vec charlm-train charlm-generate charlm-score seq2seq sentiment; do
    [ -x "$BIN/$tool" ] || continue
    found=$((found + 1))
    page=$top_srcdir/man/$tool.1
    check "$tool has a man page" test -f "$page"
    check "$tool --help exits 0" "$BIN/$tool" --help > "$T/help"
    check "$tool --version exits 0" "$BIN/$tool" --version > "$T/version"
    check "$tool --version names libnlp" grep -q 'libnlp' "$T/version"
    [ -f "$page" ] || continue
    for opt in $(grep -o -- '--[a-z][a-z0-9-]*' "$T/help" | sort -u); do
        # Man pages escape hyphens as \-.
        esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
        check "$tool: $opt in man page" grep -q -e "$esc" -e "$opt" "$page"
    done
done
[ "$found" -gt 0 ] || skip_ "no tools built yet"
Exit
