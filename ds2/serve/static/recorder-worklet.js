// Collects the microphone's samples (first channel) into blocks of BLOCK and posts each block
// (a Float32Array, transferred) to the main thread; the message "flush" posts what is left, then
// {flushed: true}.
const BLOCK = 1024;

class RecorderProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.filled = 0;
    this.port.onmessage = (e) => {
      if (e.data === 'flush') {
        this.post();
        this.port.postMessage({ flushed: true });
      }
    };
  }

  post() {
    if (this.filled === 0) return;
    const out = this.block.slice(0, this.filled);
    this.port.postMessage(out, [out.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      const x = input[0];
      let i = 0;
      while (i < x.length) {
        const n = Math.min(x.length - i, BLOCK - this.filled);
        this.block.set(x.subarray(i, i + n), this.filled);
        this.filled += n;
        i += n;
        if (this.filled === BLOCK) this.post();
      }
    }
    return true;
  }
}

registerProcessor('recorder', RecorderProcessor);
