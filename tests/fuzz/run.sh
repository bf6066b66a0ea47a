#!/bin/sh
# Runs libFuzzer targets for a while each and fails on any finding.
#
#   run.sh SECONDS FUZZDIR TARGET...
#
# Each TARGET is a built tests/fuzz/fuzz_NAME.  It fuzzes for SECONDS
# starting from a copy of FUZZDIR/corpus/NAME (so the tree is not modified)
# plus the reproducers of past findings in FUZZDIR/regressions/NAME, which
# run first.  A crash, sanitizer report, failed check, leak, timeout (10 s
# for one input) or excess memory (2 GB) is a finding: the input is copied
# to tests/fuzz/findings/ under the current (build) directory and printed in
# base64, and the script goes on with the other targets, then exits 1.
# Prints one line per target with libFuzzer's counts, then
# "fuzz: N passed, N failed".
set -u

if [ $# -lt 3 ]; then
    echo "Usage: run.sh SECONDS FUZZDIR TARGET..." >&2
    exit 2
fi
seconds=$1
fuzzdir=$2
shift 2

work=$(mktemp -d "${TMPDIR:-/tmp}/nlp-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export UBSAN_OPTIONS

stat() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

passed=0
failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    dir=$work/$name
    mkdir -p "$dir/corpus" "$dir/artifacts"
    if [ -d "$fuzzdir/corpus/$name" ]; then
        cp -R "$fuzzdir/corpus/$name/." "$dir/corpus/"
    fi
    seeds=$(ls "$dir/corpus" | wc -l)
    # The first directory is the working corpus, where libFuzzer adds inputs.
    regdir=$fuzzdir/regressions/$name
    regressions=0
    if [ -d "$regdir" ]; then
        regressions=$(ls "$regdir" | wc -l)
    else
        regdir=
    fi
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        "$dir/corpus" ${regdir:+"$regdir"} > "$dir/log" 2>&1
    rc=$?
    runs=$(stat number_of_executed_units "$dir/log")
    rate=$(stat average_exec_per_sec "$dir/log")
    added=$(stat new_units_added "$dir/log")
    rss=$(stat peak_rss_mb "$dir/log")
    findings=$(ls "$dir/artifacts" | wc -l)
    if [ "$rc" -eq 0 ] && [ "$findings" -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz $name: PASS: ${runs:-?} executions in ${seconds} s (${rate:-?}/s)," \
             "$seeds seeds + $regressions regressions, ${added:-?} new inputs, peak RSS ${rss:-?} MB"
    else
        failed=$((failed + 1))
        echo "fuzz $name: FAIL (exit $rc) after ${runs:-?} executions; libFuzzer's report:"
        grep -v '^#[0-9]' "$dir/log" | tail -n 60
        mkdir -p tests/fuzz/findings
        for f in "$dir/artifacts"/*; do
            [ -f "$f" ] || continue
            cp "$f" "tests/fuzz/findings/$name-$(basename "$f")"
            echo "finding: tests/fuzz/findings/$name-$(basename "$f") (reproduce: $bin FILE); base64:"
            base64 "$f" | head -c 4096
            echo
        done
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
