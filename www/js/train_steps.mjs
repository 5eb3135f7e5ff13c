// The one hot loop the client leaves to JS: a slice of training steps, each awaited in
// turn. From Python every awaited promise is a trip through Pyodide's event loop (a fixed
// ~0.4 ms, more than a head's whole step), and copying each batch out of Python cost about
// as much again; so the training set is copied to JS once per fit and Python hands over a
// slice's sample indices. Nothing is decided here: which samples, in which order, how many
// steps, is Python's (browser_py/trainer.py, browser_py/ort_web.py).

/**
 * Run one training step per batch, in order; return each batch's loss.
 * @param {object} session  onnxruntime-web TrainingSession
 * @param {Float32Array} rows  every sample's inputs, back to back
 * @param {BigInt64Array} labels  every sample's label
 * @param {Int32Array} order  the batches' sample indices, back to back
 * @param {number[]} sizes  each batch's sample count
 * @param {number[]} sampleShape  one sample's shape at the head's input
 * @param {string} lossName  the training graph's loss output
 */
export async function trainSteps(session, rows, labels, order, sizes, sampleShape, lossName) {
  const perSample = sampleShape.reduce((a, b) => a * b, 1);
  const losses = [], buffers = new Map();
  let at = 0;
  for (const n of sizes) {
    // one input buffer per batch size, refilled: onnxruntime-web copies a step's inputs
    // into its own memory before runTrainStep returns (the browser test checks bit for bit)
    if (!buffers.has(n)) buffers.set(n, [new Float32Array(n * perSample), new BigInt64Array(n)]);
    const [x, y] = buffers.get(n);
    for (let j = 0; j < n; j++) {
      const i = order[at + j];
      x.set(rows.subarray(i * perSample, (i + 1) * perSample), j * perSample);
      y[j] = labels[i];
    }
    at += n;
    const out = await session.runTrainStep({
      input: new ort.Tensor("float32", x, [n, ...sampleShape]),
      labels: new ort.Tensor("int64", y, [n]),
    });
    await session.runOptimizerStep();
    await session.lazyResetGrad();
    losses.push(out[lossName].data[0]);
  }
  return losses;
}
