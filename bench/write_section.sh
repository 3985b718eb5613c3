#!/usr/bin/env bash
# bench/write_section.sh NAME FILE: puts FILE (a markdown section starting
# with "## NAME") into docs/BENCHMARKS.md, replacing the section of that
# name up to the next "## " heading, or appending it. Other sections stay.
set -euo pipefail
name=$1
section=$2
doc=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/docs/BENCHMARKS.md
mkdir -p "$(dirname "$doc")"
[[ -f $doc ]] || printf '# Benchmarks\n\n' >"$doc"
new=$(mktemp)
awk -v section="$section" -v name="$name" '
  BEGIN { while ((getline line < section) > 0) text = text line "\n" }
  $0 ~ ("^## " name "[[:space:]]*$") { printf "%s", text; skipping = 1; written = 1; next }
  skipping && /^## / { skipping = 0 }
  !skipping { print }
  END {
    if (!written) { if (NR > 0) print ""; printf "%s", text }
  }
' "$doc" >"$new"
# Squeeze runs of blank lines the splice may leave.
cat -s "$new" >"$doc"
rm -f "$new"
echo "bench: wrote the $name section of $doc" >&2
