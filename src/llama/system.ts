// What the native build can use, and the choice of GPU layers for 'auto'.
import { binding, bindingBackends, type NativeSystemInfo } from './binding.js';
import { readGguf } from '../gguf/reader.js';

export type GpuLayers = number | 'auto' | 'max';

export function systemInfo(): NativeSystemInfo {
  return binding().systemInfo();
}

export interface CpuCode {
  /**
   * The CPU variant in use in a prebuilt binary (x64, sse42, haswell, skylakex,
   * icelake, zen4, ...: ggml picks the best this CPU runs, UNDERSTUDY_CPU_VARIANT
   * forces one), 'built in' for a source build's own -march=native code.
   */
  variant: string | null;
  /** The file the CPU code was loaded from (a libggml-cpu-<variant>.so, or the addon). */
  module: string | null;
  /** The instruction sets it uses, as ggml names them (AVX2, AVX512, ...). */
  features: string[];
}

/** Which CPU code the addon runs: for `understudy doctor`, the bench and bug reports. */
export function cpuCode(): CpuCode {
  const b = bindingBackends();
  const features = Object.entries(b.cpu?.features ?? {}).map(([name, value]) => (value === '1' ? name : `${name}=${value}`));
  return { variant: b.cpuVariant ?? (b.dynamic ? null : 'built in'), module: b.cpu?.module ?? null, features };
}

// Room left on the device for the KV cache, compute buffers and the driver.
const HEADROOM_BYTES = 1024 ** 3;

/**
 * Number of layers to offload: llama.cpp takes -1 for all. 'auto' offloads all
 * layers when the file fits in the free memory of the roomiest GPU with headroom
 * to spare, a proportional share when it does not, and none on a CPU-only build.
 */
export async function resolveGpuLayers(choice: GpuLayers, path: string, fileSize: number): Promise<number> {
  const info = systemInfo();
  if (!info.supportsGpuOffload) return 0;
  if (choice === 'max') return -1;
  if (typeof choice === 'number') return choice;
  const free = Math.max(0, ...info.devices.filter((d) => d.type === 'gpu' || d.type === 'igpu').map((d) => d.memoryFree));
  if (free <= HEADROOM_BYTES) return 0;
  if (fileSize + HEADROOM_BYTES <= free) return -1;
  const header = await readGguf(path);
  const arch = String(header.metadata.get('general.architecture')?.value ?? '');
  const layers = Number(header.metadata.get(`${arch}.block_count`)?.value ?? 0);
  if (!layers) return 0;
  return Math.floor((layers * (free - HEADROOM_BYTES)) / fileSize);
}
