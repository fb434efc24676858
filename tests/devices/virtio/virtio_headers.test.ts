// Holds the virtio numbers we restate from the OASIS specification (status and feature bits,
// device IDs, ring flags and layouts, the virtio-pci capabilities and common configuration, and
// virtio-blk's requests and configuration) against Linux's <linux/virtio_*.h>, which drivers are
// built from: a generated C program prints what the compiler says (tests/helpers/c_values.ts).
// <linux/virtio_rng.h> defines nothing of its own; the entropy device's ID is in virtio_ids.h.

import * as blk from "../../../src/devices/virtio/block/config.ts";
import * as net from "../../../src/devices/virtio/net/spec.ts";
import * as vsock from "../../../src/devices/virtio/vsock/spec.ts";
import * as desc from "../../../src/devices/virtio/descriptor.ts";
import * as queue from "../../../src/devices/virtio/queue.ts";
import * as spec from "../../../src/devices/virtio/spec.ts";
import * as pci from "../../../src/devices/virtio/transport/pci/layout.ts";
import { assertMatchesC, type CClaim, claimsOf, namedAfterMacros } from "../../helpers/c_values.ts";

const offsetof = (struct: string, member: string) => `offsetof(struct ${struct}, ${member})`;
const sizeof = (struct: string) => `sizeof(struct ${struct})`;
/** The size of `member` of `struct`, e.g. one element of a ring array. */
const sizeofMember = (struct: string, member: string) =>
  `sizeof(((struct ${struct} *)0)->${member})`;
/** The offset just past `member` of `struct`. */
const endof = (struct: string, member: string) =>
  `${offsetof(struct, member)} + ${sizeofMember(struct, member)}`;

const STATUS_CLAIMS = claimsOf(spec, {
  STATUS_ACKNOWLEDGE: "VIRTIO_CONFIG_S_ACKNOWLEDGE",
  STATUS_DRIVER: "VIRTIO_CONFIG_S_DRIVER",
  STATUS_DRIVER_OK: "VIRTIO_CONFIG_S_DRIVER_OK",
  STATUS_FEATURES_OK: "VIRTIO_CONFIG_S_FEATURES_OK",
  STATUS_DEVICE_NEEDS_RESET: "VIRTIO_CONFIG_S_NEEDS_RESET",
  STATUS_FAILED: "VIRTIO_CONFIG_S_FAILED",
  VIRTIO_F_VERSION_1: "VIRTIO_F_VERSION_1",
});

const DEVICE_ID_CLAIMS = claimsOf(spec.VirtioDeviceType, {
  NET: "VIRTIO_ID_NET",
  BLOCK: "VIRTIO_ID_BLOCK",
  CONSOLE: "VIRTIO_ID_CONSOLE",
  ENTROPY: "VIRTIO_ID_RNG",
  BALLOON: "VIRTIO_ID_BALLOON",
  VSOCK: "VIRTIO_ID_VSOCK",
}, "VirtioDeviceType.");

const RING_CLAIMS = [
  ...claimsOf(desc, {
    VIRTQ_DESC_F_NEXT: "VRING_DESC_F_NEXT",
    VIRTQ_DESC_F_WRITE: "VRING_DESC_F_WRITE",
    VIRTQ_DESC_F_INDIRECT: "VRING_DESC_F_INDIRECT",
    VIRTQ_DESC_SIZE: sizeof("vring_desc"),
    VIRTQ_DESC_ADDR: offsetof("vring_desc", "addr"),
    VIRTQ_DESC_LEN: offsetof("vring_desc", "len"),
    VIRTQ_DESC_FLAGS: offsetof("vring_desc", "flags"),
    VIRTQ_DESC_NEXT: offsetof("vring_desc", "next"),
  }),
  ...claimsOf(queue, {
    VIRTIO_F_INDIRECT_DESC: "VIRTIO_RING_F_INDIRECT_DESC",
    VIRTIO_F_EVENT_IDX: "VIRTIO_RING_F_EVENT_IDX",
    VIRTQ_DESC_ALIGN: "VRING_DESC_ALIGN_SIZE",
    VIRTQ_AVAIL_ALIGN: "VRING_AVAIL_ALIGN_SIZE",
    VIRTQ_USED_ALIGN: "VRING_USED_ALIGN_SIZE",
    VIRTQ_AVAIL_F_NO_INTERRUPT: "VRING_AVAIL_F_NO_INTERRUPT",
    VIRTQ_AVAIL_FLAGS: offsetof("vring_avail", "flags"),
    VIRTQ_AVAIL_IDX: offsetof("vring_avail", "idx"),
    VIRTQ_AVAIL_RING: offsetof("vring_avail", "ring"),
    VIRTQ_AVAIL_ELEM_SIZE: sizeofMember("vring_avail", "ring[0]"),
    VIRTQ_USED_F_NO_NOTIFY: "VRING_USED_F_NO_NOTIFY",
    VIRTQ_USED_FLAGS: offsetof("vring_used", "flags"),
    VIRTQ_USED_IDX: offsetof("vring_used", "idx"),
    VIRTQ_USED_RING: offsetof("vring_used", "ring"),
    VIRTQ_USED_ELEM_SIZE: sizeof("vring_used_elem"),
    VIRTQ_USED_ELEM_ID: offsetof("vring_used_elem", "id"),
    VIRTQ_USED_ELEM_LEN: offsetof("vring_used_elem", "len"),
  }),
];

/** Queue sizes to hold the ring-size functions against the header's `vring_size`. */
const QUEUE_SIZES = [1, 2, 256, queue.VIRTQ_MAX_SIZE];
/** (event, new, old) index triples for `vring_need_event`, wrap-around at 2^16 included. */
const NEED_EVENT_CASES: readonly (readonly [number, number, number])[] = [
  [0, 1, 0],
  [1, 1, 0],
  [4, 5, 2],
  [2, 5, 2],
  [5, 5, 2],
  [0xffff, 2, 0xfffe],
  [1, 2, 0xfffe],
  [3, 2, 0xfffe],
  [7, 7, 7],
];

/** The ring helpers restate the header's inline functions; their results are claims too. */
const RING_FUNCTION_CLAIMS: CClaim[] = [
  ...QUEUE_SIZES.map((n) => ({
    name: `descTableSize(${n}) + availRingSize(${n}) + usedRingSize(${n})`,
    value: queue.descTableSize(n) + queue.availRingSize(n) + queue.usedRingSize(n),
    // With alignment 1 nothing pads the rings; the used ring starts where used_event ends.
    c: [`vring_size(${n}, 1)`],
  })),
  ...QUEUE_SIZES.map((n) => ({
    name: `availRingSize(${n})`,
    value: queue.availRingSize(n),
    // vring_used_event: used_event is avail->ring[num].
    c: [endof("vring_avail", `ring[${n}]`)],
  })),
  ...NEED_EVENT_CASES.map(([event, next, old]) => ({
    name: `needEvent(${event}, ${next}, ${old})`,
    value: Number(queue.needEvent(event, next, old)),
    c: [`vring_need_event(${event}, ${next}, ${old})`],
  })),
];

/** virtio_pci.h's macro name (after `VIRTIO_PCI_COMMON_`) and struct member of each register. */
const COMMON_CFG_FIELDS: Record<keyof typeof pci.CommonCfg, readonly [string, string | null]> = {
  DEVICE_FEATURE_SELECT: ["DFSELECT", "device_feature_select"],
  DEVICE_FEATURE: ["DF", "device_feature"],
  DRIVER_FEATURE_SELECT: ["GFSELECT", "guest_feature_select"],
  DRIVER_FEATURE: ["GF", "guest_feature"],
  CONFIG_MSIX_VECTOR: ["MSIX", "msix_config"],
  NUM_QUEUES: ["NUMQ", "num_queues"],
  DEVICE_STATUS: ["STATUS", "device_status"],
  CONFIG_GENERATION: ["CFGGENERATION", "config_generation"],
  QUEUE_SELECT: ["Q_SELECT", "queue_select"],
  QUEUE_SIZE: ["Q_SIZE", "queue_size"],
  QUEUE_MSIX_VECTOR: ["Q_MSIX", "queue_msix_vector"],
  QUEUE_ENABLE: ["Q_ENABLE", "queue_enable"],
  QUEUE_NOTIFY_OFF: ["Q_NOFF", "queue_notify_off"],
  QUEUE_DESC_LO: ["Q_DESCLO", "queue_desc_lo"],
  QUEUE_DESC_HI: ["Q_DESCHI", "queue_desc_hi"],
  QUEUE_DRIVER_LO: ["Q_AVAILLO", "queue_avail_lo"],
  QUEUE_DRIVER_HI: ["Q_AVAILHI", "queue_avail_hi"],
  QUEUE_DEVICE_LO: ["Q_USEDLO", "queue_used_lo"],
  QUEUE_DEVICE_HI: ["Q_USEDHI", "queue_used_hi"],
  // Virtio 1.2 additions: struct virtio_pci_common_cfg predates them (newer headers put them in
  // struct virtio_pci_modern_common_cfg), so only the offset macros name them everywhere.
  QUEUE_NOTIFY_DATA: ["Q_NDATA", null],
  QUEUE_RESET: ["Q_RESET", null],
};

const commonCfgTable = Object.fromEntries(
  Object.entries(COMMON_CFG_FIELDS).map(([name, [macro, member]]) => [
    name,
    [
      `VIRTIO_PCI_COMMON_${macro}`,
      ...(member === null ? [] : [offsetof("virtio_pci_common_cfg", member)]),
    ],
  ]),
);

const VIRTIO_PCI_CLAIMS = [
  ...claimsOf(spec, {
    ISR_CONFIG: "VIRTIO_PCI_ISR_CONFIG",
    VIRTIO_MSI_NO_VECTOR: "VIRTIO_MSI_NO_VECTOR",
  }),
  ...namedAfterMacros(pci, /^VIRTIO_PCI_CAP_\w+_CFG$/),
  ...claimsOf(pci, {
    CAP_LEN: ["VIRTIO_PCI_CAP_LEN", offsetof("virtio_pci_cap", "cap_len")],
    CAP_CFG_TYPE: ["VIRTIO_PCI_CAP_CFG_TYPE", offsetof("virtio_pci_cap", "cfg_type")],
    CAP_BAR: ["VIRTIO_PCI_CAP_BAR", offsetof("virtio_pci_cap", "bar")],
    CAP_INSTANCE: offsetof("virtio_pci_cap", "id"),
    CAP_OFFSET: ["VIRTIO_PCI_CAP_OFFSET", offsetof("virtio_pci_cap", "offset")],
    CAP_LENGTH: ["VIRTIO_PCI_CAP_LENGTH", offsetof("virtio_pci_cap", "length")],
    VIRTIO_PCI_CAP_SIZE: sizeof("virtio_pci_cap"),
    CAP_NOTIFY_OFF_MULTIPLIER: [
      "VIRTIO_PCI_NOTIFY_CAP_MULT",
      offsetof("virtio_pci_notify_cap", "notify_off_multiplier"),
    ],
    VIRTIO_PCI_NOTIFY_CAP_SIZE: sizeof("virtio_pci_notify_cap"),
    CAP_PCI_CFG_DATA: offsetof("virtio_pci_cfg_cap", "pci_cfg_data"),
    VIRTIO_PCI_CFG_CAP_SIZE: sizeof("virtio_pci_cfg_cap"),
    // queue_reset (le16) is the last register of the 1.2 structure.
    COMMON_CFG_SIZE: "VIRTIO_PCI_COMMON_Q_RESET + sizeof(__le16)",
  }),
  ...claimsOf(pci.CommonCfg, commonCfgTable, "CommonCfg."),
];

/** Each BlkConfigOffset key is its struct virtio_blk_config member's name in capitals. */
const blkConfigTable = Object.fromEntries(
  Object.keys(blk.BlkConfigOffset).map((
    key,
  ) => [key, offsetof("virtio_blk_config", key.toLowerCase())]),
);

const BLK_CLAIMS = [
  ...namedAfterMacros(blk, /^VIRTIO_BLK_/),
  ...claimsOf(blk, {
    BLK_REQ_HEADER_SIZE: sizeof("virtio_blk_outhdr"),
    BLK_REQ_TYPE: offsetof("virtio_blk_outhdr", "type"),
    BLK_REQ_SECTOR: offsetof("virtio_blk_outhdr", "sector"),
    BLK_SEGMENT_SIZE: sizeof("virtio_blk_discard_write_zeroes"),
    BLK_SEGMENT_NUM_SECTORS: offsetof("virtio_blk_discard_write_zeroes", "num_sectors"),
    BLK_SEGMENT_FLAGS: offsetof("virtio_blk_discard_write_zeroes", "flags"),
    // Up to write_zeroes_may_unmap and its padding, unused1[3]; secure erase is not offered.
    BLK_CONFIG_SIZE: endof("virtio_blk_config", "unused1"),
  }),
  ...claimsOf(blk.BlkConfigOffset, blkConfigTable, "BlkConfigOffset."),
];

const NET_CLAIMS = [
  ...namedAfterMacros(net, /^VIRTIO_NET_/),
  ...Object.entries(net.NetFeature).map(([name, value]) => ({
    name: `NetFeature.${name}`,
    value,
    c: [`VIRTIO_NET_F_${name}`],
  })),
  ...claimsOf(net.NetConfig, {
    MAC: offsetof("virtio_net_config", "mac"),
    STATUS: offsetof("virtio_net_config", "status"),
    MAX_VIRTQUEUE_PAIRS: offsetof("virtio_net_config", "max_virtqueue_pairs"),
    MTU: offsetof("virtio_net_config", "mtu"),
    SIZE: endof("virtio_net_config", "mtu"),
  }, "NetConfig."),
  ...claimsOf(net.NetHeader, {
    FLAGS: offsetof("virtio_net_hdr_v1", "flags"),
    GSO_TYPE: offsetof("virtio_net_hdr_v1", "gso_type"),
    HDR_LEN: offsetof("virtio_net_hdr_v1", "hdr_len"),
    GSO_SIZE: offsetof("virtio_net_hdr_v1", "gso_size"),
    CSUM_START: offsetof("virtio_net_hdr_v1", "csum_start"),
    CSUM_OFFSET: offsetof("virtio_net_hdr_v1", "csum_offset"),
    NUM_BUFFERS: offsetof("virtio_net_hdr_v1", "num_buffers"),
    SIZE: sizeof("virtio_net_hdr_v1"),
  }, "NetHeader."),
  ...claimsOf(net.NetCtrlHeader, {
    CLASS: offsetof("virtio_net_ctrl_hdr", "class"),
    COMMAND: offsetof("virtio_net_ctrl_hdr", "cmd"),
    SIZE: sizeof("virtio_net_ctrl_hdr"),
  }, "NetCtrlHeader."),
];

Deno.test("virtio-net features, config and header match <linux/virtio_net.h>", async () => {
  await assertMatchesC(["linux/virtio_net.h"], NET_CLAIMS);
});

const VSOCK_CLAIMS = [
  ...namedAfterMacros(vsock, /^VIRTIO_VSOCK_/),
  ...namedAfterMacros(vsock, /^VMADDR_CID_/),
  ...claimsOf(vsock.VsockConfig, {
    GUEST_CID: offsetof("virtio_vsock_config", "guest_cid"),
    SIZE: sizeof("virtio_vsock_config"),
  }, "VsockConfig."),
  ...claimsOf(vsock.VsockHeader, {
    SRC_CID: offsetof("virtio_vsock_hdr", "src_cid"),
    DST_CID: offsetof("virtio_vsock_hdr", "dst_cid"),
    SRC_PORT: offsetof("virtio_vsock_hdr", "src_port"),
    DST_PORT: offsetof("virtio_vsock_hdr", "dst_port"),
    LEN: offsetof("virtio_vsock_hdr", "len"),
    TYPE: offsetof("virtio_vsock_hdr", "type"),
    OP: offsetof("virtio_vsock_hdr", "op"),
    FLAGS: offsetof("virtio_vsock_hdr", "flags"),
    BUF_ALLOC: offsetof("virtio_vsock_hdr", "buf_alloc"),
    FWD_CNT: offsetof("virtio_vsock_hdr", "fwd_cnt"),
    SIZE: sizeof("virtio_vsock_hdr"),
  }, "VsockHeader."),
];

Deno.test("virtio-vsock's header, config, ops and the host CID match <linux/virtio_vsock.h>", async () => {
  await assertMatchesC(
    ["sys/socket.h", "linux/vm_sockets.h", "linux/virtio_vsock.h"],
    VSOCK_CLAIMS,
  );
});

Deno.test("device status bits and VIRTIO_F_VERSION_1 match <linux/virtio_config.h>", async () => {
  await assertMatchesC(["linux/virtio_config.h"], STATUS_CLAIMS);
});

Deno.test("every device type we name has its ID from <linux/virtio_ids.h>", async () => {
  await assertMatchesC(["linux/virtio_ids.h"], DEVICE_ID_CLAIMS);
});

Deno.test("ring flags, feature bits, alignments and layouts match <linux/virtio_ring.h>", async () => {
  await assertMatchesC(["linux/virtio_ring.h"], RING_CLAIMS);
});

Deno.test("ring sizes and needEvent agree with vring_size and vring_need_event", async () => {
  await assertMatchesC(["linux/virtio_ring.h"], RING_FUNCTION_CLAIMS);
});

Deno.test("capabilities, common cfg and ISR/MSI-X values match <linux/virtio_pci.h>", async () => {
  await assertMatchesC(["linux/virtio_pci.h"], VIRTIO_PCI_CLAIMS);
});

Deno.test("virtio-blk features, requests and config match <linux/virtio_blk.h>", async () => {
  await assertMatchesC(["linux/virtio_blk.h"], BLK_CLAIMS);
});
