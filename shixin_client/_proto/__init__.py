"""Message classes compiled from the .proto subset beside them; never edit by hand.

The messages keep TF Serving's field numbers but live in the proto package
``shixin.tfs``, so they load beside tensorflow-serving-api without a duplicate symbol.
Regenerate with ``scripts/gen_protos.sh``.
"""
