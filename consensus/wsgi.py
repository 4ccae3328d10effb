"""The WSGI entry point for production servers: `gunicorn consensus.wsgi:app`.

After the application is built, everything allocated so far (modules, templates, mappers,
compiled SQL) is moved out of the garbage collector's view with `gc.freeze()`: otherwise
every full collection walks those objects again, which costs milliseconds per request on
long pages (issue 9). A request's own garbage is still collected as usual. The C allocator
is tuned to keep large blocks in the worker's heap (see consensus.allocator).
"""

from __future__ import annotations

import gc

from consensus import allocator, create_app

allocator.tune()
app = create_app()
gc.freeze()
