#!/bin/sh
# The scenario runner of the test bed's L1 (l1_init.sh runs it with its output on the console;
# harness.test.ts runs it on the host): runs the scenarios the host harness wrote into
# $WORK/scenarios/NNN/ in $WORK/lanes lanes at once, and frames their output for harness.ts:
#
#   @@SCENARIO NAME BEGIN
#   @@OUT NAME TEXT                         each line the scenario printed (lanes interleave)
#   @@SCENARIO NAME END status=N timeout=0|1
#
# Each lane takes the next scenario no lane has taken, in order. One with a `needs` file (the
# ids of scenarios whose files in L1 it uses, one per line) first waits until they have ended.
# Those with an `alone` file run after every lane has finished, one at a time with nothing
# beside them: they look at state all of L1 shares (every jailed process, the kernel log).
# A scenario runs in a session of its own, in /tmp, stdin /dev/null, and is killed, the whole
# session, after its `timeout` seconds, once timeout_report.sh has printed where its processes
# were. $RUNNER_TMP (default /tmp) holds the runner's own files: the lanes' claims, each
# finished scenario's `.done.ID`, and each running one's `.deadline.ID` ("NAME UPTIME_S", when
# it should have ended with a minute to spare) for l1_init.sh's stall report. `interactive`
# scenarios read and write the console itself, untimed and unframed but for the markers.
# The markers are the interface to harness.ts; keep them in step with it.
tmp=${RUNNER_TMP:-/tmp}
# What ends a scenario's output: no line it prints can hold it.
end_mark="@@RUNNER-END-$(cat /proc/sys/kernel/random/uuid) "

# Prints each line of stdin as its scenario's, as it comes (one write each, so lanes interleave
# whole lines), until the end mark: then the END marker.
frame() { # NAME
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
    *"$end_mark"*)
      before=${line%%"$end_mark"*}
      [ -z "$before" ] || printf '@@OUT %s %s\n' "$1" "$before"
      printf '@@SCENARIO %s END %s\n' "$1" "${line#*"$end_mark"}"
      return
      ;;
    esac
    printf '@@OUT %s %s\n' "$1" "$line"
  done
}

# Runs scenario DIR (id ID) for at most LIMIT seconds; prints its output, then the end mark
# with its status, after recording the status in $WORK/results/ID.
supervise() { # DIR ID LIMIT
  cd /tmp || exit 1
  setsid sh "$1/command" </dev/null 2>&1 &
  pid=$!
  rm -f "$tmp/.timed_out.$2" "$tmp/.report.$2"
  # Out of time: first where its processes wait, then kill them all. The watchdog holds none of
  # the output's pipe (its sleep outlives it): the report goes into the output afterwards.
  (
    sleep "$3"
    touch "$tmp/.timed_out.$2"
    sh "$PROJECT/tests/testbed/timeout_report.sh" $pid >"$tmp/.report.$2" 2>&1
    kill -KILL -$pid
  ) </dev/null >/dev/null 2>&1 &
  watchdog=$!
  wait $pid
  status=$?
  kill $watchdog 2>/dev/null
  timed_out=0
  if [ -f "$tmp/.timed_out.$2" ]; then
    timed_out=1
    cat "$tmp/.report.$2"
  fi
  echo "$status $timed_out" >"$WORK/results/$2"
  echo "${end_mark}status=$status timeout=$timed_out"
}

# Runs the scenario in DIR once those it needs have ended.
run() { # DIR
  id=$(basename "$1")
  name=$(cat "$1/name")
  limit=$(cat "$1/timeout")
  if [ -f "$1/needs" ]; then
    while read -r need; do
      while [ ! -f "$tmp/.done.$need" ]; do sleep 1; done
    done <"$1/needs"
  fi
  echo "@@SCENARIO $name BEGIN"
  read -r now _ </proc/uptime
  echo "$name $((${now%.*} + limit + 60))" >"$tmp/.deadline.$id"
  if [ -f "$1/interactive" ]; then
    (cd /tmp && setsid sh "$1/command" </dev/console >/dev/console 2>&1)
    status=$?
    echo "$status 0" >"$WORK/results/$id"
    echo "@@SCENARIO $name END status=$status timeout=0"
  else
    supervise "$1" "$id" "$limit" | frame "$name"
  fi
  rm -f "$tmp/.deadline.$id"
  touch "$tmp/.done.$id"
}

# One lane: every scenario that may run beside others and no other lane took first.
lane() {
  for dir in "$WORK"/scenarios/*/; do
    [ -f "$dir/command" ] && [ ! -f "$dir/alone" ] || continue
    mkdir "$tmp/.claim.$(basename "$dir")" 2>/dev/null || continue
    run "$dir"
  done
}

mkdir -p "$WORK/results"
lanes=$(cat "$WORK/lanes" 2>/dev/null || echo 1)
i=0
while [ "$i" -lt "$lanes" ]; do
  lane &
  i=$((i + 1))
done
wait
for dir in "$WORK"/scenarios/*/; do
  [ -f "$dir/command" ] && [ -f "$dir/alone" ] && run "$dir"
done
