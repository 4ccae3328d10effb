"""The WSGI entry point for production servers: `gunicorn consensus.wsgi:app`.

After the application is built, everything allocated so far (modules, templates, mappers,
compiled SQL) is moved out of the garbage collector's view with `gc.freeze()`: otherwise
every full collection walks those objects again, which costs milliseconds per request on
long pages (issue 9). A request's own garbage is still collected as usual. The C allocator
is tuned to keep large blocks in the worker's heap, and gives the free heap back to the
kernel at most once a second, after a response (see consensus.ops.allocator).

Unsafe or missing settings (consensus.config.ConfigError) print one line on stderr and end
the process with status 4, which gunicorn reads as "the application failed to load": it
stops instead of starting workers again and again.
"""

from __future__ import annotations

import gc
import sys

from consensus.app import create_app
from consensus.config import ConfigError
from consensus.ops import allocator

APP_LOAD_ERROR = 4  # gunicorn's Arbiter.APP_LOAD_ERROR

allocator.tune()
try:
    app = create_app(migrations=False)  # `flask db` is not run through the workers
except ConfigError as error:
    print(f"Error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(APP_LOAD_ERROR) from None
gc.freeze()
allocator.install_periodic_trim(app)
