// `crosvm run --net`: crosvm's keys for a NIC on a TAP, and every way of getting them wrong.

import assert from "node:assert/strict";
import { parseRunArgs, parseRunCommand } from "../../src/cli/run_args.ts";
import type { NetConfig } from "../../src/config.ts";
import { assertUsageError } from "../helpers/usage_error.ts";
import { assertOneLineError, crosvm } from "../helpers/cli_process.ts";
import { buildGuest } from "../helpers/guests.ts";
import { kvmTest } from "../helpers/vcpu.ts";

const nets = (...args: string[]): NetConfig[] | undefined =>
  parseRunArgs([...args, "vmlinux"]).nets;

Deno.test("--net: a TAP by name, by descriptor, or made from a host address; in the order given", () => {
  assert.equal(nets(), undefined, "no NIC unless asked");
  assert.deepEqual(
    nets(
      "--net",
      "tap-name=vmtap7",
      "--net",
      "tap-fd=3,mac=52:54:00:AB:cd:01",
      "--net",
      "host-ip=192.168.10.1,netmask=255.255.255.0,mac=52:54:00:00:00:02,mrg-rxbuf,vq-pairs=1",
    ),
    [
      { tap: { name: "vmtap7" } },
      { tap: { fd: 3 }, mac: "52:54:00:AB:cd:01" },
      { tap: { hostIp: "192.168.10.1", netmask: "255.255.255.0" }, mac: "52:54:00:00:00:02" },
    ],
  );
});

Deno.test("the older spellings make the same NICs, in order, each with a warning naming its --net", () => {
  const { config, warnings } = parseRunCommand([
    "--tap-name",
    "vmtap1",
    "--host_ip",
    "10.0.0.1",
    "--netmask",
    "255.255.255.0",
    "--mac",
    "52:54:00:00:00:01",
    "--tap-fd",
    "7",
    "vmlinux",
  ]);
  assert.deepEqual(config.nets, [
    { tap: { name: "vmtap1" } },
    { tap: { hostIp: "10.0.0.1", netmask: "255.255.255.0" }, mac: "52:54:00:00:00:01" },
    { tap: { fd: 7 } },
  ]);
  assert.deepEqual(warnings, [
    "--tap-name is deprecated; use --net tap-name=vmtap1",
    "--host_ip is deprecated; use --net host-ip=10.0.0.1,netmask=255.255.255.0,mac=52:54:00:00:00:01",
    "--tap-fd is deprecated; use --net tap-fd=7",
  ]);
  assertUsageError(
    () => nets("--host-ip", "10.0.0.1", "--mac", "52:54:00:00:00:01"),
    "--host-ip, --netmask and --mac go together",
  );
  assertUsageError(
    () => nets("--net", "tap-name=a", "--vhost-net"),
    "--vhost-net applies to --tap-name, --tap-fd or --host-ip",
  );
});

Deno.test("vq-pairs: a multiqueue TAP by name or host address, not by descriptor; never more pairs than vCPUs", () => {
  assert.deepEqual(nets("--cpus", "4", "--net", "tap-name=mq0,vq-pairs=4"), [
    { tap: { name: "mq0" }, queuePairs: 4 },
  ]);
  const legacy = parseRunCommand(["--cpus", "2", "--tap-name", "a", "--net-vq-pairs", "2", "k"]);
  assert.deepEqual(legacy.config.nets, [{ tap: { name: "a" }, queuePairs: 2 }]);
  assert.deepEqual(legacy.warnings, [
    "--tap-name is deprecated; use --net tap-name=a,vq-pairs=2",
  ]);
  const fitted = parseRunCommand(["--cpus", "2", "--net", "tap-name=a,vq-pairs=3", "k"]);
  assert.deepEqual(fitted.config.nets, [{ tap: { name: "a" } }]);
  assert.deepEqual(fitted.warnings, [
    "NIC 0: vq-pairs=3 is more than the 2 vCPU(s); using one queue pair",
  ]);
});

Deno.test("--net ...,vhost-net: the kernel's back end, through /dev/vhost-net or the device given", () => {
  assert.deepEqual(
    nets(
      "--net",
      "tap-name=a,vhost-net",
      "--net",
      "tap-fd=3,vhost-net=[device=/dev/vhost-net-1]",
      "--net",
      "tap-name=b,vhost-net=true",
      "--net",
      "tap-name=c,vhost-net=false",
      "--net",
      "tap-name=d,vhost-net=[/dev/v]",
    ),
    [
      { tap: { name: "a" }, vhostNet: { device: "/dev/vhost-net" } },
      { tap: { fd: 3 }, vhostNet: { device: "/dev/vhost-net-1" } },
      { tap: { name: "b" }, vhostNet: { device: "/dev/vhost-net" } },
      { tap: { name: "c" } },
      { tap: { name: "d" }, vhostNet: { device: "/dev/v" } },
    ],
  );
});

Deno.test("--vhost-net makes the NICs of the older spellings vhost-net ones, with a warning", () => {
  const { config, warnings } = parseRunCommand([
    "--vhost-net",
    "--tap-name",
    "vmtap1",
    "--net",
    "tap-name=x",
    "vmlinux",
  ]);
  assert.deepEqual(config.nets, [
    { tap: { name: "vmtap1" }, vhostNet: { device: "/dev/vhost-net" } },
    { tap: { name: "x" } },
  ]);
  assert.deepEqual(warnings, [
    "--vhost-net is deprecated; use --net ...,vhost-net",
    "--tap-name is deprecated; use --net tap-name=vmtap1,vhost-net",
  ]);
});

const BAD: [string, string][] = [
  ["tap-name=a,tap-fd=3", "exactly one of tap-name, tap-fd, or host-ip"],
  ["tap-name=a,host-ip=10.0.0.1,netmask=255.0.0.0", "exactly one"],
  ["mac=52:54:00:00:00:01", "exactly one"],
  ["tap-fd=-1", "tap-fd must be from 0"],
  ["tap-fd=x", "tap-fd must be an integer"],
  ["tap-name=a,mac=52:54:00:00:00", "mac 52:54:00:00:00 is not six hex bytes"],
  ["tap-name=a,mac=52-54-00-00-00-01", "is not six hex bytes"],
  ["host-ip=10.0.0.1,mac=52:54:00:00:00:01", "host-ip needs netmask"],
  ["netmask=255.0.0.0,mac=52:54:00:00:00:01", "netmask needs host-ip"],
  ["host-ip=10.0.0.256,netmask=255.0.0.0,mac=52:54:00:00:00:01", "host-ip 10.0.0.256 is not IPv4"],
  ["host-ip=10.0.0.1,netmask=255.0.255.0,mac=52:54:00:00:00:01", "is not an IPv4 netmask"],
  ["host-ip=10.0.0.1,netmask=255.255.255.0", "host-ip needs mac"],
  ["tap-fd=3,vq-pairs=2", "tap-fd is one queue; vq-pairs needs tap-name or host-ip"],
  ["tap-name=a,vq-pairs=0", "vq-pairs must be from 1"],
  ["tap-name=a,vq-pairs=32769", "vq-pairs must be"],
  ["tap-name=a,vhost-net,vq-pairs=2", "only one queue pair is supported yet with vhost-net"],
  ["tap-name=a,vhost-net=[device=]", "device has an empty value"],
  ["tap-name=a,vhost-net=[path=/dev/x]", 'unknown key "path"'],
  ["tap-name=a,vhost-net=[device=/dev/x", "unterminated ["],
  ["tap-name=a,bogus=1", "bogus"],
];
for (const [value, says] of BAD) {
  Deno.test(`--net ${value} is one line: ${says}`, () => {
    assertUsageError(() => nets("--net", value), "--net", says);
  });
}

kvmTest(
  "a tap-fd that is not a TAP, or a TAP name too long, is one line before the VM starts",
  async () => {
    const guest = await buildGuest("hello");
    // Descriptor 0 of the child is the pipe its stdin is.
    const notTap = await crosvm(["run", "--net", "tap-fd=0", guest]);
    assertOneLineError(
      notTap,
      /^crosvm: error: NIC 0: tap-fd 0 is not a TAP descriptor \(E[A-Z]+\)$/,
    );
    const long = await crosvm(["run", "--net", "tap-name=a-name-of-16-chars", guest]);
    assertOneLineError(long, /NIC 0: TAP name 'a-name-of-16-chars' is not 1 to 15 bytes$/);
  },
);

kvmTest(
  "vhost-net through a device that is missing or is not vhost is one line naming it, before the VM starts",
  async () => {
    const guest = await buildGuest("hello");
    const missing = await crosvm([
      "run",
      "--net",
      "tap-name=vhosttest0,vhost-net=[device=/nonexistent/vhost-net]",
      guest,
    ]);
    assertOneLineError(
      missing,
      /^crosvm: error: NIC 0: cannot open vhost-net device \/nonexistent\/vhost-net: ENOENT$/,
    );
    const notVhost = await crosvm([
      "run",
      "--net",
      "tap-name=v0,vhost-net=[device=/dev/null]",
      guest,
    ]);
    assertOneLineError(
      notVhost,
      /^crosvm: error: NIC 0: \/dev\/null is not a vhost device \(VHOST_GET_FEATURES: ENOTTY\)$/,
    );
  },
);
