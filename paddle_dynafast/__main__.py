"""``python -m paddle_dynafast``: the same as the ``paddle-dynafast`` command."""
from .cli import main

raise SystemExit(main())
