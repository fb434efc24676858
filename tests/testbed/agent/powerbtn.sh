# The power button (`agent.action=powerbtn`): finds the input device Linux's ACPI button driver
# made for PNP0C0C, prints `powerbtn_ready=<eventN>` and waits for a KEY_POWER press on it, then
# `powerbtn=pressed`; the agent then powers off, as a desktop's power-key handler would.
# A `struct input_event` on x86_64 is 24 bytes: 16 of time, u16 type, u16 code, s32 value; read
# as 12 u16 words, type is the 9th, code the 10th, the value's low word the 11th.
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
echo "powerbtn_ready=$dev"
od -An -v -tu2 -w24 "/dev/input/$dev" | while read -r _ _ _ _ _ _ _ _ type code value _; do
  if [ "$type" = "$EV_KEY" ] && [ "$code" = "$KEY_POWER" ] && [ "$value" = 1 ]; then
    echo "powerbtn=pressed"
    break
  fi
done
