/**
 * Crash-consistency rounds in the test bed (issue 13): one L1 scenario boots L2 again and again
 * on the same ext4 disk and raw disk; in each round the guest appends records with fsync to a
 * file and with O_DIRECT and fsync to the raw disk, and reports each one acknowledged
 * (agent/acked.sh) until L1 SIGKILLs, at a random moment, the VMM (odd rounds) or a jailed
 * virtio-blk device process (even rounds). Then L1 checks the images as the next boot would
 * find them: `e2fsck -fn` as the kill left it (reported), the journal replayed (as a mount
 * does), `e2fsck -fn` again (must be clean), every record any round saw acknowledged read back
 * with debugfs, and this round's records in their blocks of the raw disk. One `crash_round=`
 * line per round; {@link crashRoundResults} reads them.
 *
 * @module
 */

import { onConsoleLines } from "./harness.ts";
import { VMM_PROCESS_FUNCTIONS } from "./l1_processes.ts";

/** The disk every round writes to, in L1's /tmp (its own name: scenarios run side by side). */
const IMAGE = "/tmp/crash-rounds.img";
/** The second disk, raw: each record also lands in a 4 KiB block of its own, O_DIRECT. */
const RAW_IMAGE = "/tmp/crash-rounds-raw.img";
/** The rounds' acknowledged records so far: `<token> <count>` lines. */
const ACKED = "/tmp/crash-rounds.acked";
/** The kill comes at a random moment up to this long after the guest began writing. */
const MAX_KILL_DELAY_MS = 4000;
/** How long the jail of a killed VM may take to go (bubblewrap's --die-with-parent). */
const JAIL_GONE_TRIES = 20;
/**
 * A round's VMM is killed by L1 after this long whatever happened (busybox's `timeout`, which
 * keeps the VMM's pid): an L2 boot that never gets to its writes (seen about once in 40 rounds
 * under nested SVM on TCG: the vCPU thread runs in L1's KVM and the guest prints nothing) is then
 * a round of its own kind, `hung`, with the same checks of the images, not the end of the run.
 */
const ROUND_LIMIT_SECONDS = 120;

/** One round as L1 reported it. */
export interface CrashRound {
  round: number;
  /** What was killed: the VMM or the device process. */
  target: "vmm" | "device";
  delayMs: number;
  /** Records the guest saw acknowledged in this round. */
  acked: number;
  /** The VMM's exit status (137 when it was killed; 1 when its device was). */
  vmmStatus: number;
  /** Processes of the VM's jail still there after the kill. */
  jailLeft: number;
  /** The guest never got to its writes: L1 killed the VMM at {@link ROUND_LIMIT_SECONDS}. */
  hung: boolean;
  /** `e2fsck -fn` before the journal's replay, and after it. */
  fsckRaw: number;
  fsck: number;
  /**
   * Acknowledged records not in the file system: this round's, and earlier rounds'; and this
   * round's not in their blocks of the raw disk.
   */
  lost: number;
  lostEarlier: number;
  lostRaw: number;
}

/**
 * The scenario's script: `rounds` rounds, each running `boot(token, image, raw)`: a VMM booting
 * the agent with `agent.action=acked agent.acked_raw=vdb agent.token=<token>` and two disks,
 * `image` (ext4, vda) and `raw` (vdb).
 */
export function crashRoundsScript(
  rounds: number,
  boot: (token: string, image: string, raw: string) => string,
): string {
  // The count is the line's leading digits: a console line ends in CR LF ("20\r" would make awk
  // compare NR <= n as text), and the VMM's own last line can follow a cut one ("acked=43[INFO]
  // vm ended: error" when the device died while the guest was printing; a cut count only ever
  // says less than the guest had).
  const quietAcks = `case "$line" in
    acked=*)
      tail=\${line#acked=}
      count=\${tail%%[!0-9]*}
      [ -n "$count" ] && acked=$count
      tail=\${tail#"$count"}
      tail=\${tail%"$cr"}
      [ -n "$tail" ] && echo "$tail"
      ;;
    *) echo "$line" ;;
  esac`;
  const kill = `echo "$(descendants $vmm | tr '\\n' ' ')" >$work/jail
      if [ "$target" = vmm ]; then victim=$vmm; else victim=$(device_of $vmm); fi
      echo "$victim" >$work/victim
      kill -KILL $victim`;
  const vmm = `busybox timeout -s KILL ${ROUND_LIMIT_SECONDS} ${boot("$token", IMAGE, RAW_IMAGE)}`;
  const console = onConsoleLines(vmm, [[
    "acked_ready",
    `( { sleep $delay; ${kill}; } & )`,
  ]], quietAcks);
  return `${VMM_PROCESS_FUNCTIONS}
# The jailed device below PID: the outermost process of its jail, the VMM's child.
device_of() { device_pids $1 | head -n 1; }
# Of the records on stdin, one a line, how many of round TOKEN's first COUNT are missing.
missing() {
  awk -v t="$1" -v n="$2" 'NR <= n && $1 == t && $2 == NR { ok++ } END { print n - ok }'
}
# The records of round TOKEN in the file system's log file.
logged() { debugfs -R "cat /acked-$1" ${IMAGE} 2>/dev/null; }
cr=$(printf '\\r')
rm -f ${IMAGE} ${RAW_IMAGE} ${ACKED} && touch ${ACKED}
mkfs.ext4 -q ${IMAGE} 64M || exit 1
truncate -s 16M ${RAW_IMAGE}
work=$(mktemp -d)
round=1
while [ $round -le ${rounds} ]; do
  token=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \\n')-$round
  if [ $((round % 2)) -eq 1 ]; then target=vmm; else target=device; fi
  ms=$((RANDOM % ${MAX_KILL_DELAY_MS}))
  delay=$((ms / 1000)).$(printf %03d $((ms % 1000)))
  acked=0
  rm -f $work/jail $work/victim
  ${console}
  vmm_status=$?
  left=0 i=0
  while :; do
    left=0
    for p in $(cat $work/jail 2>/dev/null); do [ -e /proc/$p ] && left=$((left + 1)); done
    [ $left -eq 0 ] || [ $i -ge ${JAIL_GONE_TRIES} ] && break
    sleep 0.25
    i=$((i + 1))
  done
  e2fsck -fn ${IMAGE} >$work/fsck-raw 2>&1
  fsck_raw=$?
  e2fsck -p -E journal_only ${IMAGE} >/dev/null 2>&1
  e2fsck -fn ${IMAGE} >$work/fsck 2>&1
  fsck=$?
  [ $fsck -eq 0 ] || cat $work/fsck
  lost_earlier=0
  while read -r t n; do lost_earlier=$((lost_earlier + $(logged $t | missing $t $n))); done <${ACKED}
  lost=$(logged $token | missing $token $acked)
  lost_raw=$(head -c $((acked * 4096)) ${RAW_IMAGE} | missing $token $acked)
  echo "$token $acked" >>${ACKED}
  hung=1 && [ -e $work/victim ] && hung=0
  echo "crash_round=$round target=$target victim=$(cat $work/victim 2>/dev/null) delay_ms=$ms acked=$acked vmm_status=$vmm_status hung=$hung jail_left=$left fsck_raw=$fsck_raw fsck=$fsck lost=$lost lost_raw=$lost_raw lost_earlier=$lost_earlier"
  rm -rf "$dir"
  round=$((round + 1))
done`;
}

/** The `crash_round=` lines of a scenario's output, parsed. */
export function crashRoundResults(output: string): CrashRound[] {
  return [...output.matchAll(/^crash_round=(\d+) (.*)$/gm)].map((m) => {
    const fields = new Map(m[2].split(" ").map((kv) => kv.split("=") as [string, string]));
    const num = (key: string) => Number(fields.get(key));
    return {
      round: Number(m[1]),
      target: fields.get("target") === "device" ? "device" : "vmm",
      delayMs: num("delay_ms"),
      acked: num("acked"),
      vmmStatus: num("vmm_status"),
      jailLeft: num("jail_left"),
      hung: fields.get("hung") === "1",
      fsckRaw: num("fsck_raw"),
      fsck: num("fsck"),
      lost: num("lost"),
      lostEarlier: num("lost_earlier"),
      lostRaw: num("lost_raw"),
    };
  });
}

/**
 * The one-line summary of `rounds`: kills of each kind, boots that hung, records, lost writes,
 * e2fsck errors.
 */
export function crashRoundsSummary(rounds: readonly CrashRound[]): string {
  const count = (f: (r: CrashRound) => boolean) => rounds.filter(f).length;
  const acked = rounds.reduce((sum, r) => sum + r.acked, 0);
  const lost = rounds.reduce((sum, r) => sum + r.lost + r.lostEarlier + r.lostRaw, 0);
  const killed = (target: CrashRound["target"]) => count((r) => !r.hung && r.target === target);
  return `${rounds.length} SIGKILL rounds (${killed("vmm")} of the VMM, ` +
    `${killed("device")} of the device process, ${count((r) => r.hung)} of a VMM whose L2 ` +
    `boot hung, after ${ROUND_LIMIT_SECONDS} s), ${acked} acknowledged ` +
    `records (each in the file system and on the raw disk), ${lost} lost, ${
      count((r) => r.fsck !== 0)
    } e2fsck errors after journal replay ` +
    `(${count((r) => r.fsckRaw !== 0)} complaints before it)`;
}
