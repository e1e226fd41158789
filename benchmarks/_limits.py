"""What holds back each row that can miss its target, and what would close it.

Printed under the table of docs/benchmarks.md for the rows that missed in that run, so
a reader sees the cause beside the figure; written from profiles of these rows on the
2-core benchmark machine (update the text when a change moves the cause).
"""

from __future__ import annotations

LIMITS: dict[str, str] = {
    "4a": (
        "About 1.9 ms of client CPU per REST call, against 0.9 ms over gRPC: urllib3 (about 0.7 ms of "
        "Python per call, headers and body in two writes), `json.loads` of the 40 x 37 softmax and "
        "about 0.4 ms of decoding and thresholding the picture. It was 0.100-0.104 of the reference "
        "through a requests.Session; urllib3 directly brought it to about 0.08"
    ),
    "5a": (
        "One image per call: client encode/decode, the gRPC hops and the server's Python handling are "
        "added to the model call the baseline makes, on the same 2 cores. Two ways that were measured and "
        "not kept: one TensorFlow intra-op thread in the server takes about 0.5 ms off our p50, but the "
        "same setting takes the in-process baseline from 3.5 to 2.9 ms, so under equal settings the "
        "ratio gets worse; running the model on the server's event loop instead of its executor saves "
        "about 0.3 ms, but serialises concurrent unbatched requests (20% less throughput). Closing it "
        "needs the C++ server, or more cores"
    ),
    "5b": (
        "As 5a, plus the REST client's extra CPU (row 4a) and the JSON text of 1,480 floats, which "
        "the local server now writes in about 0.5 ms (1.7 ms before it was vectorised)"
    ),
    "6a": (
        "Two CPU cores are shared by 8 client threads (1-3 ms of Python each per request), the local "
        "server's per-request Python (parsing, batching, response) and the model, while the in-process "
        "baseline gives both cores to the model alone. Closing it needs what production has: TF Serving "
        "(C++) on its own cores, clients elsewhere; or callers sending batches (`recognize_many`) so the "
        "per-request costs are shared by many images"
    ),
    "6b": "As 6a, with the REST client's extra CPU per request (row 4a)",
    "7a": (
        "numpy's argmax over the 37-wide class axis of 378,880 floats is most of our time: it costs "
        "about 50 ns per frame, one C call per 37 floats. Ten times faster than Keras needs about 0.1 ms "
        "on this machine, below what that argmax alone costs. It would take a compiled kernel (a C "
        "extension or numba), which the light client does not carry; the decoder's Python part is "
        "already only the merge of 256 short rows"
    ),
    "8a": (
        "One image now goes to the batch-1 companion model, whose GRUs run as LiteRT WHILE loops: about "
        "1.2 ms of model per image instead of 2.1 ms for the 2,976 unrolled ops, plus about 0.3 ms to "
        "decode and threshold the PNG. Measured on this model's architecture with untrained weights, a "
        "recurrent-free head (two 1-D convolutions over the 40 steps instead of the BiGRUs) runs in "
        "0.2 ms at batch 1, which would meet the target; it means retraining the default preset"
    ),
    "8b": (
        "As 8a: per-op overhead, which larger batches amortise (ours is about 0.9 ms per image on "
        "every machine so far). The verdict follows ddddocr's speed: 0.17 where it took 7.6 ms per "
        "image, 0.20-0.22 at 4.1 ms, 0.27 at 3.5 ms"
    ),
    "9b": (
        "Per image seen, the seed preset learns faster: after the same 100,000 images (50,000 x 2 "
        "epochs) it reads 86% against 66%, with twelve times the parameters (GRUs of 512, no dropout). "
        "Per minute of training the default preset wins (row 9c: six epochs in the time of the seed "
        "preset's two). Whether the default matches the seed preset once both have converged needs "
        "both trained to convergence, which takes a GPU session"
    ),
    "9c": (
        "Both runs are far from converged (about 23 minutes of one CPU thread each); see 9b for what "
        "a converged comparison needs"
    ),
}
