#!/bin/sh
# Reads its input arguments as JSON from $RUNPLANE_INPUT, prints a few lines
# (the execution log) and writes its result as JSON to $RUNPLANE_OUTPUT.
set -eu
count=$(sed -n 's/.*"count": *\([0-9][0-9]*\).*/\1/p' "$RUNPLANE_INPUT")
count=${count:-3}
i=1
while [ "$i" -le "$count" ]; do
  echo "line $i of $count on $(uname -s)"
  i=$((i + 1))
done
printf '{"received": %s, "lines": %d}\n' "$(cat "$RUNPLANE_INPUT")" "$count" > "$RUNPLANE_OUTPUT"
