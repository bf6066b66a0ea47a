#!/bin/sh
# The training options every trainer shares (bin/train_cli) are documented by
# one text, man/train-options.inc, found verbatim in the man page of every
# tool whose --help shows them; and the defaults that text names (the page's
# ".ds train-*" strings) are the ones the tool's --help prints.
. "${top_srcdir:-.}/tests/setup"
inc=$top_srcdir/man/train-options.inc
[ -f "$inc" ] || framework_failure_ "$inc missing"

# The bracketed default of option $1 in the help text $2 (an option's entry
# runs from its line to the next option or heading).
help_default() {
    awk -v opt="$1" '
        /^(  |   |    |     |      )(-[a-zA-Z], )?--[a-z]/ {
            cur = $0; sub(/^ +(-[a-zA-Z], )?/, "", cur); sub(/[ =].*/, "", cur)
            text[cur] = $0; next
        }
        /^                   / && cur != "" { text[cur] = text[cur] " " $0; next }
        { cur = "" }
        END {
            s = text[opt]; d = ""
            while (match(s, /\[[^]]*\]/)) { d = substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH) }
            print d
        }' "$2"
}

found=0
for tool in charlm-train seq2seq sentiment forecast; do
    [ -x "$BIN/$tool" ] || continue
    "$BIN/$tool" --help > "$T/help" 2>&1 || { check "$tool --help" false; continue; }
    grep -q '^Training (the same in every libnlp trainer):' "$T/help" || continue
    found=$((found + 1))
    page=$top_srcdir/man/$tool.1
    check "$tool has a man page" test -f "$page"
    [ -f "$page" ] || continue
    sed -n '/^\.\\" train-options begin/,/^\.\\" train-options end/p' "$page" > "$T/block"
    check "$tool.1 holds man/train-options.inc verbatim" compare "$inc" "$T/block"
    for key in $(grep -o '\\\*\[train-[a-z-]*\]' "$inc" | sed 's/^\\\*\[train-//; s/\]$//' | sort -u); do
        value=$(sed -n "s/^\\.ds train-$key //p" "$page")
        want=$(help_default "--$key" "$T/help")
        check "$tool.1: --$key default '$value' = --help's '$want'" \
            test -n "$want" -a "$value" = "$want"
    done
done
[ "$found" -gt 0 ] || framework_failure_ "no trainer shows the shared options in --help"
Exit
