#!/bin/sh
# The first run of a new user (issue 12): the README's quick start and
# `make demo` need no network and no environment variable.  The Divina
# Commedia ships in corpora/ with the manifest's checksum, corpora/fetch.sh
# finds it before any mirror or download, the README's first command is one
# line without curl, and the demo's pipeline works end to end (in
# miniature, in a clean temporary directory, with NLP_CORPORA unset and
# curl/wget replaced by stand-ins that fail): train to the default model
# path, then generate and score with no -m.
. "${top_srcdir:-.}/tests/setup"
TRAIN=$BIN/charlm-train
GEN=$BIN/charlm-generate
SCORE=$BIN/charlm-score
FETCH=$top_srcdir/corpora/fetch.sh
MANIFEST=$top_srcdir/corpora/MANIFEST
CORPUS=$top_srcdir/corpora/divina_commedia.txt

# ---- the shipped corpus --------------------------------------------------------
check "corpora/divina_commedia.txt is shipped" test -s "$CORPUS"
want=$(awk '$1 == "divina_commedia.txt" { print $2 }' "$MANIFEST")
got=$(sha256sum < "$CORPUS" | awk '{ print $1 }')
check "its sha256 is the manifest's ($want)" test -n "$want" -a "$got" = "$want"
check "it is the Divina Commedia" has '^Nel mezzo del cammin di nostra vita$' "$CORPUS"

# ---- fetch.sh finds it offline ---------------------------------------------------
# Stand-ins for the download tools: any call is logged and fails.
mkdir "$T/nonet"
for tool in curl wget; do
    printf '#!/bin/sh\necho "%s $*" >> "%s/downloads"\nexit 7\n' "$tool" "$T" > "$T/nonet/$tool"
    chmod +x "$T/nonet/$tool"
done
offline() { env -u NLP_CORPORA -u NLP_DATA PATH="$T/nonet:$PATH" "$@"; }
mkdir "$T/elsewhere"
path=$(cd "$T/elsewhere" && offline sh "$FETCH" divina_commedia.txt 2> "$T/fetch.err")
check "fetch.sh offline, no NLP_CORPORA: exit 0" test $? -eq 0
check "fetch.sh prints the shipped copy" test "$path" -ef "$CORPUS"
check "fetch.sh: nothing on stderr" test ! -s "$T/fetch.err"
path=$(offline sh "$FETCH" -d "$T/data" divina_commedia.txt)
check "fetch.sh -d DIR: the shipped copy too" test "$path" -ef "$CORPUS"
check "fetch.sh -d DIR: nothing copied" test ! -e "$T/data"
path=$(NLP_CORPORA=$T/no-such-mirror PATH="$T/nonet:$PATH" sh "$FETCH" -d "$T/data" divina_commedia.txt)
check "the shipped copy comes before \$NLP_CORPORA" test "$path" -ef "$CORPUS"
check "no download tool was called" test ! -e "$T/downloads"
# The other corpora are still fetched: with no mirror, they are downloaded.
offline sh "$FETCH" -d "$T/data" analogy/questions-words.txt > /dev/null 2> "$T/fetch2.err"
check "other corpora: still downloaded (here: refused by the stand-in)" \
    has "^curl .*questions-words.txt" "$T/downloads"
check "other corpora: the failure is named" has "questions-words.txt: download failed" "$T/fetch2.err"
check "fetch.sh --list still lists it" sh -c 'sh "$1" --list | grep -qx divina_commedia.txt' sh "$FETCH"
# A shipped copy that was changed is refused, not used.
mkdir "$T/corpora"
cp "$FETCH" "$MANIFEST" "$T/corpora/"
{ cat "$CORPUS"; echo "extra line"; } > "$T/corpora/divina_commedia.txt"
check "a changed shipped copy is refused" \
    sh -c '! sh "$1" divina_commedia.txt > /dev/null 2> "$2"' sh "$T/corpora/fetch.sh" "$T/changed.err"
check "changed copy: message" has "divina_commedia.txt: sha256 mismatch" "$T/changed.err"

# ---- the README's quick start ------------------------------------------------------
README=$top_srcdir/README
sed -n '/^Quick start/,/^Tools/p' "$README" | grep '^    ' | sed 's/^    //' > "$T/commands"
check "the quick start has two commands" test "$(wc -l < "$T/commands")" -eq 2
sed -n 1p "$T/commands" > "$T/first"
sed -n 2p "$T/commands" > "$T/second"
check "first: installs the packages" has '^apt-get update && apt-get install -y ' "$T/first"
check "first: builds" has '&& autoreconf -fi && ./configure && make -j2 &&' "$T/first"
check "first: runs the demo" has '&& make demo$' "$T/first"
check "first: no curl or wget (no download)" sh -c '! grep -q -w -e curl -e wget "$1"' sh "$T/first"
check "first: no NLP_CORPORA" sh -c '! grep -q NLP_CORPORA "$1"' sh "$T/first"
check "second: runs the tests" has '^make check' "$T/second"
# The packages are those CI installs on a fresh machine.
ci=$top_srcdir/.ci/run
if [ -f "$ci" ]; then
    sed -n 's/^packages="\(.*\)"$/\1/p' "$ci" | tr ' ' '\n' | sort > "$T/ci.pkgs"
    sed 's/.*apt-get install -y \([^&]*\)&&.*/\1/' "$T/first" | tr ' ' '\n' | sed '/^$/d' | sort > "$T/readme.pkgs"
    check "first: the packages of .ci/run" compare "$T/ci.pkgs" "$T/readme.pkgs"
fi

# ---- the demo's pipeline, in miniature ----------------------------------------------
for t in "$TRAIN" "$GEN" "$SCORE"; do
    [ -x "$t" ] || { echo "note: $t not built; the pipeline is not run" >&2; Exit; }
done
mkdir "$T/run"
corpus=$(offline sh "$FETCH" divina_commedia.txt)
# A small model on the first cantos, for a few steps: this checks the
# plumbing, not the quality (make demo trains for two minutes).
head -n 1500 "$corpus" > "$T/inferno.txt"
tail -n 300 "$corpus" > "$T/paradiso.txt"
(cd "$T/run" && offline "$TRAIN" --layers 1 --hidden 32 --embed 8 --batch 8 --seq-len 32 \
    --threads 1 --max-steps 40 --time-limit 0 -q -o charlm.model < "$T/inferno.txt")
check "charlm-train -o charlm.model on the shipped corpus" test $? -eq 0 -a -s "$T/run/charlm.model"
(cd "$T/run" && offline "$GEN" --prime 'Nel mezzo' --temperature 0.7 --length 200 --seed 1 \
    > "$T/sample.txt" 2> "$T/sample.err")
check "charlm-generate with no -m: exit 0" test $? -eq 0
check "charlm-generate: nothing on stderr" test ! -s "$T/sample.err"
check "the sample starts with the prime" has '^Nel mezzo' "$T/sample.txt"
check "the sample ends with a line break" test "$(tail -c 1 "$T/sample.txt" | od -An -c | tr -d ' ')" = '\n'
check "the sample is valid UTF-8" sh -c '! grep -aqv "^.*$" "$1"' sh "$T/sample.txt"
check "the sample has 9 + 200 characters (+ the final line break)" \
    sh -c 'n=$(wc -m < "$1"); [ "$n" -eq 210 ] || [ "$n" -eq 209 ]' sh "$T/sample.txt"
(cd "$T/run" && offline "$SCORE" < "$T/paradiso.txt" > "$T/score.txt" 2> "$T/score.err")
check "charlm-score with no -m: exit 0" test $? -eq 0
check "charlm-score: a bits-per-character figure" has '^bits-per-character: [0-9][0-9.]*$' "$T/score.txt"
check "charlm-score: nothing on stderr" test ! -s "$T/score.err"

Exit
