/**
 * The control socket's requests carried out on a {@link Vm}: the socket is a thin layer over the
 * VM's own control API, and its replies say what the API said.
 *
 * @module
 */

import { VmControlError } from "../vm/events.ts";
import type { Vm } from "../vm/vm.ts";
import type { ControlRequest, ControlResponse } from "./protocol.ts";
import type { RequestHandler } from "./server.ts";

const OK: ControlResponse = { kind: "ok" };

/** Serves requests with `vm`; a refusal becomes `{"Err": errno}` or `{"ErrString": ...}`. */
export function vmRequestHandler(vm: Vm): RequestHandler {
  return async (request) => {
    try {
      return await carryOut(vm, request);
    } catch (e) {
      if (!(e instanceof VmControlError)) throw e;
      return e.errno === undefined
        ? { kind: "err-string", message: e.message }
        : { kind: "err", errno: e.errno };
    }
  };
}

async function carryOut(vm: Vm, request: ControlRequest): Promise<ControlResponse> {
  switch (request.kind) {
    case "exit":
      // The reply goes out first; the VM then ends (the socket with it).
      void vm.stop();
      return OK;
    case "suspend":
      await vm.suspend({ full: request.full });
      return OK;
    case "resume":
      await vm.resume({ full: request.full });
      return OK;
    case "powerbtn":
      await vm.powerButton();
      return OK;
    case "balloon-adjust":
      await vm.setBalloon(request.numBytes, { wait: request.wait });
      return OK;
    case "balloon-stats": {
      const { stats, balloonActual } = await vm.balloonStats();
      return { kind: "balloon-stats", stats, balloonActual };
    }
    case "disk-resize":
      await vm.resizeDisk(request.index, request.newSize);
      return OK;
  }
}
