"""``python -m shixin_client.server``: the development server with tensorflow_model_server's flags."""

from .cli import main

raise SystemExit(main())
