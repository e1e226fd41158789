"""What holds back each row that can miss its target, and what would close it.

Printed under the table of docs/benchmarks.md for the rows that missed in that run, so
a reader sees the cause beside the figure; written from profiles of these rows on the
2-core benchmark machine (update the text when a change moves the cause).
"""

from __future__ import annotations

from shixin_client._spec import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT

LIMITS: dict[str, str] = {
    "4a": (
        "About 1.9 ms of client CPU per REST call, against 0.9 ms over gRPC: urllib3 (about 0.7 ms of "
        "Python per call, headers and body in two writes), `json.loads` of the 40 x 37 softmax and "
        "about 0.4 ms of decoding and thresholding the picture. It was 0.100-0.104 of the reference "
        "through a requests.Session; urllib3 directly brought it to about 0.08"
    ),
    "5a": (
        "One image per call: client encode/decode, the gRPC hops and the server's Python handling are "
        "added to the model call the baseline makes, on the same 2 cores: about 2-3 ms on top of the model. "
        "Since phase 9 the model itself is fast (about 2.3 ms in-process at batch 1 against 4.7 ms for the "
        "GRU model), so the same overhead is a larger share: our p50 fell from 8.5 to 4.4-6.5 ms "
        "and the ratio rose from 1.8 to 1.9-2.6. Measured and not kept: one TensorFlow intra-op thread "
        "in the server (the baseline gains more from the same setting); running the model on the "
        "server's event loop (serialises concurrent unbatched requests, 20% less throughput). Inside the "
        "server the model call itself takes about 2.2 ms against 1.8 ms in-process, and the wire, gRPC and "
        "Python hops about 1.1 ms more. Closing it needs the C++ server, or more cores: where Docker runs, "
        f"`serving/run.sh` then `python -m benchmarks --rows 5,6 --server-grpc localhost:{DEFAULT_GRPC_PORT} "
        f"--server-rest http://localhost:{DEFAULT_REST_PORT}` times rows 5 and 6 against TF Serving itself"
    ),
    "5b": (
        "As 5a, plus the REST client's extra CPU (row 4a) and the JSON text of 1,480 floats, which "
        "the local server writes in about 0.5 ms"
    ),
    "6a": (
        "Two CPU cores are shared by 8 client threads (1-3 ms of Python each per request), the local "
        "server's per-request Python (parsing, batching, response) and the model, while the in-process "
        "baseline gives both cores to the model alone. Closing it needs what production has: TF Serving "
        "(C++) on its own cores, clients elsewhere (`--server-grpc`/`--server-rest`, see 5a); or callers "
        "sending batches (`recognize_many`) so the "
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
        "The model is no longer most of it: the int8 companion reads a captcha in about 0.25 ms on one "
        "thread and the float model rereads the 7% it is unsure of. Per call about 0.12-0.17 ms go to "
        "decoding the PNG (zlib alone is 0.1 ms), 0.07 ms to the exact reference gray and threshold, "
        "and about 0.1 ms each to the client and the decoders. Ours is steady at 0.70-0.77 ms; ddddocr "
        "took 3.36-5.55 ms, so in fifteen runs with this code the ratio was 0.14-0.21 (0.19-0.21 with 9 "
        "rounds; 0.190-0.198 in the last four full runs), eleven passing: it sits on the line. "
        "Closing it for good: a smaller model (a 128-wide "
        "head costs about 30% less and needs training and the same accuracy check), or a compiled "
        "preprocessing"
    ),
    "8b": (
        "As 8a without most per-call costs: about 0.55-0.58 ms per image against ddddocr's 3.45-5.3 ms "
        "(0.11-0.16 in six runs), half of it PNG decoding and the exact preprocessing"
    ),
    "9b": (
        "After the same 100,000 images (2 epochs) the default reads 85.16% of the 10,000 test captchas "
        "and the seed preset 86.24%: the bigger network learns a little more per image at first. "
        "After the same 300,000 (6 epochs, row 9d) the default leads, 93.03% against 91.06%, and after "
        "500,000 (10 epochs, row 9e) 95.86% against 91.24%, with an eighth of the parameters at a quarter "
        "of the inference cost. Whether the lead holds once both have converged needs both trained to "
        "convergence (a GPU session)"
    ),
    "9c": (
        "Both runs are far from converged (19-23 minutes of one CPU thread each); see 9b for what "
        "a converged comparison needs"
    ),
}
