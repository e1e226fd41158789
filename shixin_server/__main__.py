"""``python -m shixin_server``: the development server with tensorflow_model_server's flags."""

from .cli import main

raise SystemExit(main())
