"""`ds2 serve`: a recognition server for a trained model, with a page that listens to the microphone.

Concurrent streams are batched on the fly (DS2 section 7, Batch Dispatch): the steps that are
ready across streams run as one forward pass of the model (ds2.serve.dispatch).

Protocol (what the page at `/`, `bench/serve_load.py` and the tests speak):

WebSocket `/ws`, one utterance per connection:
  1. client -> text  {"type": "start", "sample_rate": 48000, "format": "pcm16"}
                     format: "pcm16" (little-endian int16, the default) or "float32" (little-endian);
                     mono; any rate from 8000 to 192000 (the server resamples to the model's)
  2. server -> text  {"type": "ready", "streaming": true, "sample_rate": 16000, "max_seconds": 60}
                     streaming: false for a bidirectional model, which answers only at the end
  3. client -> binary audio samples in the announced format, any number of messages of any size
                     (up to the server's message limit)
  4. server -> text  {"type": "partial", "text": "the quick"} whenever the partial text changes
                     (streaming models only)
  5. client -> text  {"type": "end"}
  6. server -> text  {"type": "final", "text": ..., "duration": s, "confidence": c,
                      "words": [{"word", "start", "end", "confidence"}]} and closes (code 1000)
  On bad input or a limit: server -> text {"type": "error", "message": "..."} then closes with
  code 1008 (malformed message, more than max_seconds of audio, or audio arriving under
  min_rate x real time), 1013 (the server already serves max_streams streams), 1001 (idle too
  long, or the server is shutting down and the stream did not end within its grace period).
  A message over the size limit (1 MiB) closes with 1009 and no error message: the server
  answers as soon as the message's header announces its size.

HTTP:
  GET  /                 the page (ds2/serve/static/index.html; its scripts and styles under /static/)
  GET  /health           {"status": "ok", "model", "streaming", "sample_rate", "streams", "max_streams",
                          "batching"}
  POST /api/transcribe   body: an audio file (any format libsndfile reads), raw or as the field
                         `file` of a multipart form -> 200 the transcript as JSON (id, text,
                         duration, words, confidence); 400 {"error": ...} for audio that cannot
                         be read; 413 for a body over the size limit; 408 for one that takes
                         longer than the upload timeout to arrive
"""
