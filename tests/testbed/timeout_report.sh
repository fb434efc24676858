#!/bin/sh
# Usage: timeout_report.sh SID
# What L1 prints of a scenario that ran out of time, just before it kills it: one line per
# thread of each process in session SID (the scenario's), "@@L1 TIMEOUT PID/TID COMM STATE
# WCHAN", so that the failure shows where each one was waiting. Reads only /proc.
sid=$1
for p in /proc/[0-9]*; do
  read -r stat 2>/dev/null <"$p/stat" || continue
  # After "(comm) ": state, ppid, pgrp, session.
  set -- ${stat##*) }
  [ "$4" = "$sid" ] || continue
  for t in "$p"/task/[0-9]*; do
    read -r stat 2>/dev/null <"$t/stat" || continue
    set -- ${stat##*) }
    read -r comm 2>/dev/null <"$t/comm"
    read -r wchan 2>/dev/null <"$t/wchan"
    echo "@@L1 TIMEOUT ${p#/proc/}/${t##*/} $comm $1 ${wchan:--}"
  done
done
