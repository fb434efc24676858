# /agent/blkbench.sh in the L2 initramfs of the block benchmark (bench/blk.ts appends it, with
# the blkbench program, to the test agent's initramfs; `agent.action=blkbench` runs it). Runs
# the phases on /dev/vda with O_DIRECT, queue depth 1: `agent.blk_mib=` MiB written then
# read sequentially in 1 MiB blocks, `agent.blk_ops=` random 4 KiB reads. After each phase
# (and once before) `@Q` gives the disk's request counters as the guest's block layer sees
# them: reads, read sectors, read ms, writes, write sectors, write ms (/sys/block/vda/stat).
# Keep the output short: every console byte is a VM exit.
dev=/dev/vda
i=0
while [ ! -b $dev ] && [ $i -lt 50 ]; do
  sleep 0.1
  i=$((i + 1))
done
q() {
  set -- $(cat /sys/block/vda/stat)
  echo "@Q $1 $3 $4 $5 $7 $8"
}
q
mib=$(param blk_mib)
/agent/blkbench write $dev "${mib:-256}" && q
/agent/blkbench read $dev "${mib:-256}" && q
ops=$(param blk_ops)
/agent/blkbench rand $dev "${ops:-20000}" && q
# `agent.blk_depth=1`: the same at depth through native AIO, random 4 KiB reads and writes at
# depth 1, 8 and 32, sequential 1 MiB reads and writes at depth 4 (bench/blk.ts DEPTH_PHASES).
[ "$(param blk_depth)" = 1 ] || exit 0
for depth in 1 8 32; do
  /agent/blkbench randread $dev "${ops:-20000}" $depth && q
  /agent/blkbench randwrite $dev "${ops:-20000}" $depth && q
done
/agent/blkbench seqread $dev "${mib:-256}" 4 && q
/agent/blkbench seqwrite $dev "${mib:-256}" 4 && q
