# The hardware RNG: `rng_current=` (the kernel's current hwrng), `rng_a=` (64 bytes of
# /dev/hwrng, hex) and `rng_b=` (the next 64, hex).
echo "rng_current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
for r in a b; do
  echo "rng_$r=$(head -c 64 /dev/hwrng 2>/dev/null | od -An -tx1 -v | tr -d ' \n')"
done
