"""TF Serving's defaults that the server's flags share, in a module light enough for flag parsing."""

#: --max_num_load_retries and --load_retry_interval_micros (docs/tf-serving-compat.md §3.1).
DEFAULT_MAX_NUM_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_INTERVAL_S = 60.0
