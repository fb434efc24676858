# /agent/blkbench.sh in the L2 initramfs of the block benchmark (bench/blk.ts appends it, with
# the blkbench program, to the test agent's initramfs; `agent.action=blkbench` runs it). Runs
# the three phases on /dev/vda with O_DIRECT, queue depth 1: `agent.blk_mib=` MiB written then
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
