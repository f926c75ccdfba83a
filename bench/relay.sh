#!/usr/bin/env bash
# bench/relay.sh [BEFORE [AFTER]]: the relay's own cost per request in two builds, side by
# side: user-space instructions per exchange (exact, so noise-free: valgrind's cachegrind, since
# this machine's virtual CPU has no hardware counters for perf) and CPU time per exchange
# (getrusage; paired ratios), from bench/bench-relay.c.
#
# BEFORE and AFTER are commits (default 8af29e3, the relay just before its transport layer, and
# HEAD). Each is exported with `git archive` into a scratch directory, built `debugoptimized`
# with -Dtests=false (as `make build`), and bench-relay.c is compiled against its library. A
# repetition runs both builds back to back, in an order that alternates; each build runs twice,
# with N1 and N2 exchanges, and the difference is divided by N2 - N1 so that start-up is not in
# the figure. Reported: instructions:u per exchange of each build and their ratio, and the
# median [min..max] of the per-repetition ratios of CPU time per exchange (user + system; the
# system part is the loopback TCP of both ends and the relay, the same work in both builds).
# Instructions are counted once per build (they do not change between runs), with
# BENCH_IN1/BENCH_IN2 exchanges. Traffic stays on 127.0.0.1 inside this process. Needs valgrind.
#
# Environment: BENCH_REPS (5), BENCH_N1 (50000), BENCH_N2 (250000), BENCH_IN1 (2000),
# BENCH_IN2 (12000), BENCH_KEEP=1 keeps the scratch directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
before=${1:-8af29e3}
after=${2:-HEAD}
reps=${BENCH_REPS:-5}
n1=${BENCH_N1:-50000}
n2=${BENCH_N2:-250000}
in1=${BENCH_IN1:-2000}
in2=${BENCH_IN2:-12000}

command -v valgrind >/dev/null || { echo "relay.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/pilotfish-bench-relay.XXXXXX)
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"; }
trap cleanup EXIT

build() { # NAME COMMIT
        local d=$tmp/$1
        mkdir -p "$d/src"
        git -C "$root" archive "$2" | tar -x -C "$d/src"
        (cd "$d/src" && meson setup "$d/build" --buildtype=debugoptimized -Dtests=false >"$d/setup.log" 2>&1) ||
                { cat "$d/setup.log" >&2; exit 1; }
        ninja -C "$d/build" src/libpilotfish.a >"$d/ninja.log" 2>&1 || { tail -20 "$d/ninja.log" >&2; exit 1; }
        cc -std=c17 -O2 -D_GNU_SOURCE -I"$d/src/src" -I"$d/build" -o "$d/bench-relay" "$here/bench-relay.c" \
                "$d/build/src/libpilotfish.a" $(pkg-config --libs libmnl libfyaml) -pthread
        echo "$1: $(git -C "$root" rev-parse --short "$2")" >&2
}

# cpu NAME N: "user_ns sys_ns" per exchange of one run of N exchanges.
cpu() {
        "$tmp/$1/bench-relay" "$2" | sed -n 's/.*user_ns_per_exchange=\([0-9.]*\) sys_ns_per_exchange=\([0-9.]*\).*/\1 \2/p'
}

# cpu_per_exchange NAME: CPU ns per exchange (user + system) of a run of N2, less start-up
# measured with N1 (the figures are per exchange already, so weighted back to totals).
cpu_per_exchange() {
        local a b
        read -r -a a <<<"$(cpu "$1" "$n1")"
        read -r -a b <<<"$(cpu "$1" "$n2")"
        awk -v u1="${a[0]}" -v s1="${a[1]}" -v u2="${b[0]}" -v s2="${b[1]}" -v n1="$n1" -v n2="$n2" \
                'BEGIN { printf "%.1f\n", ((u2 + s2) * n2 - (u1 + s1) * n1) / (n2 - n1) }'
}

# instr NAME N: user-space instructions (cachegrind's I refs) of a run of N exchanges.
instr() {
        valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$tmp/$1/bench-relay" "$2" \
                2>&1 >/dev/null | sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}

instr_per_exchange() {
        local a b
        a=$(instr "$1" "$in1")
        b=$(instr "$1" "$in2")
        awk -v a="$a" -v b="$b" -v d=$((in2 - in1)) 'BEGIN { printf "%.1f\n", (b - a) / d }'
}

build before "$before"
build after "$after"

ib=$(instr_per_exchange before)
ia=$(instr_per_exchange after)
echo "instructions per exchange: before $ib, after $ia" >&2

declare -a tb ta ratios
for ((r = 1; r <= reps; r++)); do
        if ((r % 2)); then order="before after"; else order="after before"; fi
        for which in $order; do
                ns=$(cpu_per_exchange "$which")
                if [ "$which" = before ]; then tb+=("$ns"); else ta+=("$ns"); fi
        done
        ratios+=("$(awk -v a="${ta[-1]}" -v b="${tb[-1]}" 'BEGIN { printf "%.3f", a / b }')")
        echo "rep $r: before ${tb[-1]} ns, after ${ta[-1]} ns, after/before ${ratios[-1]}" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo ".." hi }'; }

echo "| build | user-space instructions per exchange | CPU ns per exchange, median [min..max] |"
echo "|---|---|---|"
echo "| before ($before) | $ib | $(median "${tb[@]}") [$(range "${tb[@]}")] |"
echo "| after ($after) | $ia | $(median "${ta[@]}") [$(range "${ta[@]}")] |"
echo "RELAY reps=$reps instr_after_vs_before=$(awk -v a="$ia" -v b="$ib" 'BEGIN { printf "%.4f", a / b }')" \
        "cpu_after_vs_before=$(median "${ratios[@]}")[$(range "${ratios[@]}")]"
