// The one hot loop the client leaves to JS: a slice of training steps, each awaited in
// turn. From Python every awaited promise is a trip through Pyodide's event loop (a fixed
// ~0.4 ms, more than a head's whole step), so Python builds the slice's batches and hands
// them over once. Nothing here decides anything: which samples, in which order, how many
// steps, is Python's (browser_py/ort_web.py).

/**
 * Run one training step per batch, in order; return each batch's loss.
 * @param {object} session  onnxruntime-web TrainingSession
 * @param {Float32Array} inputs  the batches' inputs back to back (batch first)
 * @param {BigInt64Array} labels  the batches' labels back to back
 * @param {number[]} sizes  each batch's sample count
 * @param {number[]} sampleShape  one sample's shape at the head's input
 * @param {string} lossName  the training graph's loss output
 */
export async function trainSteps(session, inputs, labels, sizes, sampleShape, lossName) {
  const perSample = sampleShape.reduce((a, b) => a * b, 1);
  const losses = [];
  let x = 0, y = 0;
  for (const n of sizes) {
    const feeds = {
      input: new ort.Tensor("float32", inputs.subarray(x, x + n * perSample), [n, ...sampleShape]),
      labels: new ort.Tensor("int64", labels.subarray(y, y + n), [n]),
    };
    const out = await session.runTrainStep(feeds);
    await session.runOptimizerStep();
    await session.lazyResetGrad();
    losses.push(out[lossName].data[0]);
    x += n * perSample;
    y += n;
  }
  return losses;
}
