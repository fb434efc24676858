# Shell functions for the benchmarks' L1 scripts (boot_l1.sh, blk_l1.sh), sourced by them; busybox
# sh. The REPLY setters read /proc with builtins only (no command substitution, so no fork).

# "<pid> <parent>" for each descendant of process $1, parents first.
descendants() {
  local task kids kid
  for task in /proc/"$1"/task/*; do
    kids=
    read -r kids 2>/dev/null <"$task/children"
    for kid in $kids; do
      echo "$kid $1"
      descendants "$kid"
    done
  done
}

comm_of() { # PID: REPLY=its command name
  REPLY=
  read -r REPLY 2>/dev/null <"/proc/$1/comm"
}

stat_of() { # PID N: REPLY=field N of /proc/PID/stat (N >= 3, after the command name)
  local stat
  REPLY=
  read -r stat 2>/dev/null <"/proc/$1/stat" || return
  set -- "$2" ${stat##*) }
  shift $(($1 - 2))
  REPLY=$1
}

field_of() { # PID FILE KEY: REPLY=the first word after KEY in /proc/PID/FILE, or 0
  local key value rest
  REPLY=0
  while read -r key value rest; do
    [ "$key" = "$3" ] && REPLY=$value && return
  done 2>/dev/null <"/proc/$1/$2"
}
