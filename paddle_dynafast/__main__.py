"""``python -m paddle_dynafast``: the same as the ``paddle-dynafast`` command."""
from .console import main

raise SystemExit(main())
