// A decoded picture's RGBA bytes as the model's input: float32 planes R, G, B (values 0-255,
// row-major). ort.Tensor.fromImage gives the same values, but it is awaited (a trip through
// Pyodide's event loop per photo) and normalises each value on the way.

/**
 * @param {Uint8ClampedArray} rgba  width x height pixels, 4 bytes each
 * @returns {Float32Array}  3 x width x height values
 */
export function rgbPlanes(rgba) {
  const n = rgba.length >> 2;
  const out = new Float32Array(3 * n);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    out[i] = rgba[j];
    out[n + i] = rgba[j + 1];
    out[2 * n + i] = rgba[j + 2];
  }
  return out;
}
