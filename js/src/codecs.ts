/**
 * Binary typed arrays in widget state: `{view, dtype, shape}` (mirror of nonlin_explorer/ui/codecs.py).
 * ipywidgets delivers each buffer as a DataView; decode it once into a typed array, views never see raw
 * buffers.
 */

export type DType = 'float32' | 'uint8';

export interface BinaryArray<D extends DType = DType> {
  view: DataView | ArrayBuffer | ArrayBufferView | null;
  dtype: D;
  shape: number[];
}

type ArrayFor<D extends DType> = D extends 'float32' ? Float32Array : Uint8Array;

const BYTES: Record<DType, number> = { float32: 4, uint8: 1 };

/** Decode a binary array of the expected dtype; an empty array when it is missing. */
export function decode<D extends DType>(data: BinaryArray<D> | undefined | null, dtype: D): ArrayFor<D> {
  const make = (buffer: ArrayBufferLike, offset: number, length: number) =>
    (dtype === 'float32'
      ? new Float32Array(buffer, offset, length)
      : new Uint8Array(buffer, offset, length)) as ArrayFor<D>;
  if (!data || !data.view) {
    return make(new ArrayBuffer(0), 0, 0);
  }
  if (data.dtype !== dtype) {
    throw new Error(`expected a ${dtype} array, got ${data.dtype}`);
  }
  const view = data.view;
  const buffer = view instanceof ArrayBuffer ? view : view.buffer;
  const offset = view instanceof ArrayBuffer ? 0 : view.byteOffset;
  const bytes = view instanceof ArrayBuffer ? view.byteLength : view.byteLength;
  const size = BYTES[dtype];
  const length = Math.floor(bytes / size);
  if (offset % size !== 0) {
    // Typed arrays need aligned offsets: copy the bytes once.
    return make(buffer.slice(offset, offset + length * size), 0, length);
  }
  return make(buffer, offset, length);
}
