# The power button (`agent.action=powerbtn`): finds the input device Linux's ACPI button driver
# made for PNP0C0C, prints `powerbtn_ready=<eventN>` and waits for a KEY_POWER press on it, then
# `powerbtn=pressed`; the agent then powers off, as a desktop's power-key handler would. Before and
# after, `powerbtn_ged=`/`powerbtn_ged_after=`: the GED's line of /proc/interrupts.
# A `struct input_event` on x86_64 is 24 bytes: 16 of time, u16 type, u16 code, s32 value; read
# as 12 u16 words, type is the 9th, code the 10th, the value's low word the 11th. The device stays
# open on descriptor 4 (an evdev reader gets only the events sent while it is open), and `dd`
# takes one whole event at a time (od alone would sit on its output buffer).
EV_KEY=1
KEY_POWER=116
dev=
for d in /sys/class/input/event*; do
  [ "$(cat "$d/device/name" 2>/dev/null)" = "Power Button" ] && dev=${d##*/}
done
if [ -z "$dev" ]; then
  echo "powerbtn=no-device"
  exit
fi
# The Generic Event Device's interrupt, as /proc/interrupts lists it (its count, chip and name).
ged() { grep -i ged /proc/interrupts | tr -s ' ' | cut -c1-60; }
echo "powerbtn_ged=$(ged)"
echo "powerbtn_ready=$dev"
exec 4<"/dev/input/$dev"
while :; do
  # shellcheck disable=SC2046
  set -- $(dd bs=24 count=1 <&4 2>/dev/null | od -An -v -tu2)
  [ $# -ge 11 ] || break
  if [ "$9" = "$EV_KEY" ] && [ "${10}" = "$KEY_POWER" ] && [ "${11}" = 1 ]; then
    echo "powerbtn=pressed"
    echo "powerbtn_ged_after=$(ged)"
    break
  fi
done
