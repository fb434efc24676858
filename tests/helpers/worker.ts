/** Starts a module Worker, sends it `message`, and resolves with its first reply. */
export async function askWorker<T>(module: URL, message: unknown): Promise<T> {
  const worker = new Worker(module, { type: "module" });
  try {
    return await new Promise<T>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<T>) => resolve(event.data);
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        reject(new Error(`worker ${module.pathname} failed: ${event.message}`));
      };
      worker.postMessage(message);
    });
  } finally {
    worker.terminate();
  }
}
